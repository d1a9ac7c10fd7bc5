"""Network-to-network compression: CREMBO against knowledge distillation.

Two settings share one protocol (the stability protocol of the paper, with
networks):

* ``digits`` -- scikit-learn's 8x8 digits (1797 images, 10 classes). A fixed
  stratified 15% test split; the rest is cut into ``--folds`` folds and every
  method is rebuilt from each fold's training part: a CNN teacher
  (:class:`~crembo.nn.models.SmallCNN`), then four students (an MLP and a
  LeNet-style CNN, each at two sizes) compressed by

  ======== =================================================================
  BM       the student on the true labels (cross-entropy)
  KD       Hinton KD, T = 4, alpha = 0.9
  NoisyT   noisy-teacher distillation (Sau and Balasubramanian): L2 logit
           regression, logits ``z (1 + xi)``, ``xi ~ N(0, 0.5^2)`` on half of
           each mini-batch
  NoisyKD  the same noise under the KD loss (T = 4, alpha = 0.9)
  LMA+KD   the same student with LMA activations (6 segments), KD
  CREMBO   ``CREMBOClassifier(TorchTeacher(teacher), student,
           oracle="single", student_target="multioutput")``: the allowed-label
           loss, MEMO and the budgeted threshold sweep (15% of the fold's
           training part chooses the threshold; the student is trained on
           the other 85%, the paper's protocol)
  CREMBO-  the same threshold, the student then retrained at it on the
  refit    whole training part (CREMBOClassifier's ``refit=True``, an option
           of ours; one more fit)
  ======== =================================================================

  Reported: mean and std test accuracy over folds, and agreement (mean
  pairwise fraction of test points on which the students of two folds
  predict the same label).

* ``cifar`` -- the paper's ResNet-18 -> LeNet-5 setting on CIFAR-10 from the
  standard python pickle batches in ``--data-dir`` (nothing is downloaded).
  ``--folds 1`` trains on the whole training set (accuracy only); ``--folds K``
  trains on the K fold training parts and adds agreement.

Usage::

    python bench/bench_nets.py digits --quick           # < 15 min on 2 CPU cores
    python bench/bench_nets.py digits                   # the full run (10 folds, longer training)
    python bench/bench_nets.py cifar --data-dir ~/data/cifar-10-batches-py --device cuda

Writes a markdown table to stdout and ``bench/results/nets_<setting>.md``,
JSON to ``bench/results/nets_<setting>.json`` and, for digits, a plot to
``docs/img/nets_digits.png`` (``--plot`` to change, ``--no-plot`` to skip).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

METHODS = ("BM", "KD", "NoisyT", "NoisyKD", "LMA+KD", "CREMBO", "CREMBO-refit")


# ------------------------------------------------------------------ settings
def digits_config(quick):
    """Students and training settings of the digits benchmark."""
    mlp = "MLP"
    lenet = "LeNet"
    students = {
        "MLP-16": (mlp, dict(hidden=(16,))),
        "MLP-64": (mlp, dict(hidden=(64,))),
        "LeNet-4-8": (lenet, dict(channels=(4, 8), hidden=(32,))),
        "LeNet-8-16": (lenet, dict(channels=(8, 16), hidden=(64,))),
    }
    return dict(
        setting="digits",
        folds=4 if quick else 10,
        teacher=("SmallCNN", dict(width=16 if quick else 32, head=128, dropout=0.3)),
        teacher_train=dict(epochs=15 if quick else 30, lr=3e-3, batch_size=64),
        students=students,
        student_train=dict(epochs=20 if quick else 40, lr=1e-2, batch_size=64),
        n_thresholds=8 if quick else 16,
        search_subsample=None,
        augment=None,
        kd=dict(temperature=4.0, alpha=0.9),
        noisy=dict(sigma=0.5, noise_fraction=0.5),
    )


def cifar_config(args):
    lenet5 = dict(input_shape=(3, 32, 32), channels=(6, 16), hidden=(120, 84), kernel_size=5, padding=0)
    return dict(
        setting="cifar",
        folds=args.folds,
        teacher=("ResNet18", dict(width=args.teacher_width)),
        teacher_train=dict(epochs=args.teacher_epochs, optimizer="sgd", lr=0.1, weight_decay=5e-4, batch_size=128),
        students={"LeNet-5": ("LeNet", lenet5)},
        student_train=dict(epochs=args.student_epochs, lr=1e-3, batch_size=128),
        n_thresholds=args.n_thresholds,
        search_subsample=args.search_subsample,
        augment="crop_flip",
        kd=dict(temperature=4.0, alpha=0.9),
        noisy=dict(sigma=0.5, noise_fraction=0.5),
    )


# ------------------------------------------------------------------ one fold
def run_fold(fold, X_train, y_train, X_test, y_test, cfg, methods, device, seed, threads):
    """Teacher and every (student, method) of one fold; returns test predictions and timings."""
    import torch

    torch.set_num_threads(threads)
    from sklearn.base import clone

    from crembo import CREMBOClassifier
    from crembo.nn import KDClassifier, NetClassifier, TorchTeacher, models, random_crop_flip

    augment = None
    if cfg["augment"] == "crop_flip":
        augment = functools.partial(random_crop_flip, shape=(3, 32, 32))
    out = {"fold": fold, "students": {}}
    t0 = time.perf_counter()
    tname, tkw = cfg["teacher"]
    teacher = NetClassifier(
        getattr(models, tname), tkw, device=device, random_state=seed, augment=augment, **cfg["teacher_train"]
    ).fit(X_train, y_train)
    out["teacher"] = dict(pred=teacher.predict(X_test).tolist(), seconds=time.perf_counter() - t0)
    for sname, (arch, skw) in cfg["students"].items():
        student = NetClassifier(getattr(models, arch), skw, device=device, augment=augment, **cfg["student_train"])
        lma_student = NetClassifier(
            getattr(models, arch), dict(skw, activation="lma"), device=device, augment=augment, **cfg["student_train"]
        )
        res = {}
        for method in methods:
            t0 = time.perf_counter()
            extra = {}
            if method == "BM":
                est = clone(student).set_params(random_state=seed).fit(X_train, y_train)
            elif method == "KD":
                est = KDClassifier(teacher, student, method="kd", random_state=seed, **cfg["kd"]).fit(X_train, y_train)
            elif method == "NoisyT":
                est = KDClassifier(teacher, student, method="noisy", random_state=seed, **cfg["noisy"]).fit(
                    X_train, y_train
                )
            elif method == "NoisyKD":
                est = KDClassifier(
                    teacher, student, method="noisy_kd", random_state=seed, **cfg["kd"], **cfg["noisy"]
                ).fit(X_train, y_train)
            elif method == "LMA+KD":
                est = KDClassifier(teacher, lma_student, method="kd", random_state=seed, **cfg["kd"]).fit(
                    X_train, y_train
                )
            elif method == "CREMBO-refit":
                if "CREMBO" not in res:
                    raise ValueError("CREMBO-refit needs CREMBO in --methods")
                t_chosen = res["CREMBO"]["threshold"]
                P = TorchTeacher(teacher).predict_proba(X_train)
                mask = P >= t_chosen
                keep = mask.any(axis=1)
                est = (
                    clone(student)
                    .set_params(random_state=seed)
                    .fit_allowed(X_train[keep], mask[keep], teacher.classes_)
                )
                extra = dict(threshold=t_chosen, memo_threshold=res["CREMBO"]["memo_threshold"], n_fits=1)
            elif method == "CREMBO":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # "MEMO found no consistent student"
                    est = CREMBOClassifier(
                        TorchTeacher(teacher),
                        student,
                        oracle="single",
                        student_target="multioutput",
                        n_thresholds=cfg["n_thresholds"],
                        search_subsample=cfg["search_subsample"],
                        random_state=seed,
                    )
                    est.fit(X_train, y_train)
                extra = dict(threshold=est.threshold_, memo_threshold=est.memo_threshold_, n_fits=est.n_student_fits_)
            else:
                raise ValueError(method)
            res[method] = dict(pred=np.asarray(est.predict(X_test)).tolist(), seconds=time.perf_counter() - t0, **extra)
        out["students"][sname] = res
    return out


# ------------------------------------------------------------------ protocol
def stability_protocol(X, y, X_test, y_test, cfg, methods, device, seed, jobs, threads):
    from joblib import Parallel, delayed
    from sklearn.model_selection import KFold

    if cfg["folds"] >= 2:
        splits = list(KFold(cfg["folds"], shuffle=True, random_state=seed).split(X))
        parts = [train for train, _ in splits]
    else:
        parts = [np.arange(len(X))]
    print(
        f"{cfg['setting']}: {len(X)} training rows, {len(X_test)} test rows, {len(parts)} fold(s), "
        f"{len(cfg['students'])} students, methods {', '.join(methods)}; device {device}, {jobs} job(s) x "
        f"{threads} thread(s)",
        flush=True,
    )
    calls = [
        delayed(run_fold)(k, X[p], y[p], X_test, y_test, cfg, methods, device, seed + k, threads)
        for k, p in enumerate(parts)
    ]
    if jobs == 1:
        folds = [c[0](*c[1], **c[2]) for c in calls]
    else:
        folds = Parallel(n_jobs=jobs, backend="loky", verbose=5)(calls)
    return folds


def summarize(folds, y_test, methods):
    from crembo.evaluation.metrics import agreement

    y_test = np.asarray(y_test)

    def stats(preds):
        accs = [float(np.mean(np.asarray(p) == y_test)) for p in preds]
        agr = agreement([np.asarray(p) for p in preds]) if len(preds) > 1 else None
        return dict(acc_mean=float(np.mean(accs)), acc_std=float(np.std(accs)), accs=accs, agreement=agr)

    summary = {"teacher": stats([f["teacher"]["pred"] for f in folds])}
    summary["teacher"]["seconds"] = float(np.mean([f["teacher"]["seconds"] for f in folds]))
    for sname in folds[0]["students"]:
        summary[sname] = {}
        for m in methods:
            recs = [f["students"][sname][m] for f in folds]
            s = stats([r["pred"] for r in recs])
            s["seconds"] = float(np.mean([r["seconds"] for r in recs]))
            if m.startswith("CREMBO"):
                s["thresholds"] = [r["threshold"] for r in recs]
                s["memo_thresholds"] = [r["memo_threshold"] for r in recs]
                s["n_fits"] = [r["n_fits"] for r in recs]
            summary[sname][m] = s
    return summary


def markdown(summary, methods, n_folds):
    def cell(s):
        acc = f"{100 * s['acc_mean']:.1f} ± {100 * s['acc_std']:.1f}"
        return acc if s["agreement"] is None else f"{acc} / {100 * s['agreement']:.1f}"

    head = "test accuracy % (mean ± std over folds)" + (" / agreement %" if n_folds > 1 else "")
    lines = [f"| student | {' | '.join(methods)} |", "|---|" + "---|" * len(methods)]
    for sname, per in summary.items():
        if sname == "teacher":
            continue
        lines.append(f"| {sname} | " + " | ".join(cell(per[m]) for m in methods) + " |")
    t = summary["teacher"]
    lines.append("")
    lines.append(f"Cells: {head}. Teacher: {cell(t)} ({t['seconds']:.1f} s per fit).")
    lines.append("")
    lines.append(
        "Mean seconds per student fit: "
        + "; ".join(
            f"{sname}: " + ", ".join(f"{m} {per[m]['seconds']:.1f}" for m in methods)
            for sname, per in summary.items()
            if sname != "teacher"
        )
    )
    return "\n".join(lines)


def plot(summary, methods, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = [s for s in summary if s != "teacher"]
    has_agr = summary["teacher"]["agreement"] is not None
    fig, axes = plt.subplots(1, 2 if has_agr else 1, figsize=(12 if has_agr else 6.5, 4.2), squeeze=False)
    width = 0.8 / len(methods)
    x = np.arange(len(students))
    panels = [("acc_mean", "test accuracy (%)")] + ([("agreement", "agreement across folds (%)")] if has_agr else [])
    for ax, (key, label) in zip(axes[0], panels):
        lows = []
        for j, m in enumerate(methods):
            vals = [100 * summary[s][m][key] for s in students]
            err = [100 * summary[s][m]["acc_std"] for s in students] if key == "acc_mean" else None
            ax.bar(x + (j - (len(methods) - 1) / 2) * width, vals, width, yerr=err, label=m, capsize=2)
            lows.append(min(vals))
        tv = summary["teacher"][key]
        ax.axhline(100 * tv, color="k", ls="--", lw=1, label="teacher")
        ax.set_xticks(x, students)
        ax.set_ylabel(label)
        ax.set_ylim(max(0, min(lows) - 5), 100)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, bbox_to_anchor=(0.5, 0.93))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save(name, cfg, summary, folds, table, out_dir, seconds, device):
    os.makedirs(out_dir, exist_ok=True)
    import torch

    meta = dict(
        command=" ".join([os.path.basename(sys.executable)] + sys.argv),
        seconds=seconds,
        device=device,
        torch=torch.__version__,
        python=platform.python_version(),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        config={k: (v if k != "students" else {s: [a, kw] for s, (a, kw) in v.items()}) for k, v in cfg.items()},
    )
    with open(os.path.join(out_dir, f"nets_{name}.json"), "w") as f:
        json.dump(dict(meta=meta, summary=summary, folds=folds), f, indent=1, default=str)
    with open(os.path.join(out_dir, f"nets_{name}.md"), "w") as f:
        f.write(f"`{meta['command']}` ({seconds / 60:.1f} min, device {device}, torch {torch.__version__})\n\n")
        f.write(table + "\n")


# ------------------------------------------------------------------ commands
def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="setting", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    common.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument(
        "--jobs", type=int, default=None, help="folds run in parallel processes (default: 2 on CPU, 1 on CUDA)"
    )
    common.add_argument("--threads", type=int, default=1, help="torch threads per job")
    common.add_argument("--plot", default=None, help="plot path (digits default docs/img/nets_digits.png)")
    common.add_argument("--no-plot", action="store_true")
    common.add_argument("--tag", default=None, help="suffix of the result files")
    common.add_argument("--out-dir", default=os.path.join(HERE, "results"), help="where the tables go")

    d = sub.add_parser("digits", parents=[common], help="network-to-network on scikit-learn's digits")
    d.add_argument("--quick", action="store_true", help="4 folds, shorter training (under 15 min on 2 cores)")
    d.add_argument("--folds", type=int, default=None)
    d.add_argument("--epochs", type=int, default=None, help="student epochs")

    c = sub.add_parser("cifar", parents=[common], help="ResNet-18 -> LeNet-5 on CIFAR-10 from --data-dir")
    c.add_argument("--data-dir", required=True, help="folder with data_batch_1..5 and test_batch")
    c.add_argument("--folds", type=int, default=1)
    c.add_argument("--teacher-epochs", type=int, default=60)
    c.add_argument("--student-epochs", type=int, default=30)
    c.add_argument("--teacher-width", type=int, default=64, help="ResNet-18 first-stage width (64 = standard)")
    c.add_argument("--n-thresholds", type=int, default=8)
    c.add_argument(
        "--search-subsample",
        type=int,
        default=10000,
        help="CREMBO searches thresholds on this many transfer rows, then refits on all",
    )
    c.add_argument("--limit", type=int, default=None, help="use only the first N training and test images")
    args = p.parse_args(argv)

    from crembo.nn import load_cifar10, load_digits_images, resolve_device

    device = str(resolve_device(args.device))
    jobs = args.jobs or (1 if device.startswith("cuda") else 2)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {METHODS}")

    t_start = time.perf_counter()
    if args.setting == "digits":
        from sklearn.model_selection import train_test_split

        cfg = digits_config(args.quick)
        if args.folds:
            cfg["folds"] = args.folds
        if args.epochs:
            cfg["student_train"]["epochs"] = args.epochs
        X, y = load_digits_images()
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.15, random_state=args.seed, stratify=y)
        name = "digits_quick" if args.quick else "digits"
        title = f"digits: CNN teacher -> small students, {cfg['folds']} folds" + (" (quick)" if args.quick else "")
        plot_path = args.plot or os.path.join(ROOT, "docs", "img", f"nets_{name}.png")
    else:
        data = load_cifar10(args.data_dir, flatten=True, limit=args.limit)
        cfg = cifar_config(args)
        X, y, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
        if len(X) == 0 or len(X_test) == 0:
            p.error(f"{args.data_dir}: need training batches and test_batch")
        name = "cifar"
        title = f"CIFAR-10: ResNet-18 -> LeNet-5, {cfg['folds']} fold(s)"
        plot_path = args.plot or os.path.join(args.out_dir, "nets_cifar.png")
    if args.tag:
        name = f"{name}_{args.tag}"

    folds = stability_protocol(X, y, X_test, y_test, cfg, methods, device, args.seed, jobs, args.threads)
    summary = summarize(folds, y_test, methods)
    table = markdown(summary, methods, len(folds))
    seconds = time.perf_counter() - t_start
    print()
    print(table)
    print(f"\ntotal {seconds / 60:.1f} min")
    save(name, cfg, summary, folds, table, args.out_dir, seconds, device)
    if not args.no_plot:
        try:
            plot(summary, methods, plot_path, title)
            print(f"plot: {os.path.relpath(plot_path, ROOT)}")
        except ImportError:
            print("matplotlib is not installed: no plot (pip install 'crembo[plot]')")
    return summary


if __name__ == "__main__":
    main()
