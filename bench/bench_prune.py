"""Model-preserving compression by interpolative decomposition: ID against magnitude pruning.

No fine-tuning anywhere. For each data set and seed (the seed draws the
train/test split, the network's initialisation and the calibration rows):

1. train a network teacher (digits: ``crembo.nn.models.SmallCNN``, a
   VGG-style CNN with batch norm, max pooling and dropout, on the 8x8 images;
   tabular: ``crembo.nn.models.MLP`` with two hidden layers of 256 ReLUs and
   dropout, on standardised features);
2. compress it with ``compress_network`` at each tolerance of a grid, on a
   calibration set of at most 256 training rows;
3. prune it to the *same* per-layer sizes with the baselines: magnitude
   pruning (``method="magnitude"``: keep the largest-L1 neurons/channels,
   drop the rest) and centred ID (``center=True``);
4. measure on the held-out test rows the accuracy and the agreement
   (share of test rows where the compressed network predicts the same class
   as the original), against the fraction of parameters kept.

Then, on digits, distil the compressed CNN with CREMBO into a depth-4
decision tree (``crembo.CREMBOClassifier(teacher=TorchTeacher(compressed))``)
and compare with CREMBO on the original CNN and on the magnitude-pruned one.
The compression level for that part is chosen on calibration data only: the
largest tolerance of the grid whose calibration agreement is at least 99%.

Usage::

    python bench/bench_prune.py                  # 3 seeds, digits + breast_cancer + dermatology
    python bench/bench_prune.py --quick          # 1 seed, fewer epochs: smoke test
    python bench/bench_prune.py --tabular breast_cancer --seeds 0 1

Writes ``bench/results/prune.md`` (the tables), ``bench/results/prune.json``
and the plot ``docs/img/pruning.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from torch import nn

import crembo
from crembo.evaluation.datasets import load_dataset
from crembo.nn import prune
from crembo.nn.accounting import count_parameters
from crembo.nn.models import MLP, SmallCNN

ROOT = Path(__file__).resolve().parents[1]
#: Tolerance grids: the CNN's activations decay more slowly than the tabular MLPs'.
TOLERANCES = {
    "digits": (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    "tabular": (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3),
}
N_CALIBRATION = 256


def _train(model, X, y, *, epochs, lr, batch_size, weight_decay, seed):
    """Plain Adam + cosine schedule, cross-entropy."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(X) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for idx in torch.split(order, batch_size):
            if len(idx) < 2:
                continue
            opt.zero_grad()
            loss_fn(model(X[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def _predict(model, X):
    model.eval()
    return model(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()


def _data(name, seed):
    if name == "digits":
        from crembo.nn.data import load_digits_images

        X, y = load_digits_images(flatten=True)
    else:
        X, y = load_dataset(name)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=1 / 3, stratify=y, random_state=seed)
    if name != "digits":
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    return (
        X_tr.astype(np.float32),
        X_te.astype(np.float32),
        np.asarray(y_tr, dtype=np.int64),
        np.asarray(y_te, dtype=np.int64),
    )


def _teacher(name, X_tr, y_tr, seed, quick):
    torch.manual_seed(seed)
    n_classes = int(y_tr.max()) + 1
    if name == "digits":
        model = SmallCNN(64, n_classes)  # width 32/64, head 128, dropout 0.3
        return _train(
            model, X_tr, y_tr, epochs=8 if quick else 30, lr=2e-3, batch_size=64, weight_decay=1e-4, seed=seed
        )
    model = MLP(X_tr.shape[1], n_classes, hidden=(256, 256), dropout=0.2)
    return _train(model, X_tr, y_tr, epochs=40 if quick else 150, lr=1e-3, batch_size=32, weight_decay=1e-4, seed=seed)


def _grid(name):
    return TOLERANCES["digits" if name == "digits" else "tabular"]


def _evaluate(model, X_te, y_te, ref_pred):
    pred = _predict(model, X_te)
    return float(np.mean(pred == y_te)), float(np.mean(pred == ref_pred))


def run_dataset(name, seeds, quick, log):
    rows = []
    teachers = {}
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = _data(name, seed)
        t0 = time.perf_counter()
        teacher = _teacher(name, X_tr, y_tr, seed, quick)
        t_train = time.perf_counter() - t0
        ref_pred = _predict(teacher, X_te)
        base_acc = float(np.mean(ref_pred == y_te))
        rng = np.random.default_rng(seed)
        calib = X_tr[rng.choice(len(X_tr), size=min(N_CALIBRATION, len(X_tr)), replace=False)]
        log(
            f"[{name} seed {seed}] teacher trained in {t_train:.1f}s, test accuracy {base_acc:.4f}, "
            f"{count_parameters(teacher, trainable_only=False)} parameters"
        )
        teachers[seed] = (teacher, calib, (X_tr, X_te, y_tr, y_te))
        for tol in _grid(name):
            t0 = time.perf_counter()
            small, rep = prune.compress_network(teacher, calib, tolerance=tol)
            t_id = time.perf_counter() - t0
            acc, agree = _evaluate(small, X_te, y_te, ref_pred)
            mag, rep_mag = prune.compress_network(teacher, calib, sizes=rep.sizes, method="magnitude")
            acc_m, agree_m = _evaluate(mag, X_te, y_te, ref_pred)
            cen, rep_cen = prune.compress_network(teacher, calib, sizes=rep.sizes, center=True)
            acc_c, agree_c = _evaluate(cen, X_te, y_te, ref_pred)
            assert rep_mag.params_after == rep.params_after == rep_cen.params_after
            rows.append(
                dict(
                    dataset=name,
                    seed=seed,
                    tolerance=tol,
                    sizes=rep.sizes,
                    totals={x.name: x.total for x in rep.layers},
                    param_fraction=rep.param_fraction,
                    flop_fraction=rep.flop_fraction,
                    params_before=rep.params_before,
                    params_after=rep.params_after,
                    teacher_accuracy=base_acc,
                    calib_agreement=rep.agreement,
                    id_accuracy=acc,
                    id_agreement=agree,
                    id_seconds=t_id,
                    magnitude_accuracy=acc_m,
                    magnitude_agreement=agree_m,
                    centered_accuracy=acc_c,
                    centered_agreement=agree_c,
                )
            )
            log(
                f"  tol {tol:<6} params {rep.param_fraction:6.1%}  acc ID {acc:.3f} mag {acc_m:.3f} "
                f"cen {acc_c:.3f} | agree ID {agree:.3f} mag {agree_m:.3f} cen {agree_c:.3f}  ({t_id:.1f}s)"
            )
    return rows, teachers


def _proba_teacher(module, n_classes):
    """A predict_proba teacher for CREMBO: TorchTeacher when available, else a small wrapper."""
    try:
        from crembo.nn.teachers import TorchTeacher

        return TorchTeacher(module, method="softmax", classes=np.arange(n_classes))
    except ImportError:  # pragma: no cover

        class _Softmax:
            classes_ = np.arange(n_classes)

            def predict_proba(self, X):
                with torch.no_grad():
                    module.eval()
                    return torch.softmax(module(torch.as_tensor(X, dtype=torch.float32)), 1).double().numpy()

            __call__ = predict_proba

        return _Softmax()


def run_crembo(teachers, rows, log):
    """Compress the digits CNN, then distil each version into a depth-4 tree with CREMBO."""
    out = []
    for seed, (teacher, calib, (X_tr, X_te, y_tr, y_te)) in teachers.items():
        mine = [r for r in rows if r["dataset"] == "digits" and r["seed"] == seed]
        ok = [r for r in mine if r["calib_agreement"] >= 0.99]
        chosen = max(ok, key=lambda r: r["tolerance"]) if ok else min(mine, key=lambda r: r["tolerance"])
        small, rep = prune.compress_network(teacher, calib, tolerance=chosen["tolerance"])
        mag, _ = prune.compress_network(teacher, calib, sizes=rep.sizes, method="magnitude")
        n_classes = int(y_tr.max()) + 1
        record = dict(
            seed=seed, tolerance=chosen["tolerance"], param_fraction=rep.param_fraction, flop_fraction=rep.flop_fraction
        )
        bm = DecisionTreeClassifier(max_depth=4, random_state=seed).fit(X_tr, y_tr)
        record["bm_tree_accuracy"] = float(bm.score(X_te, y_te))
        for label, net in (("original", teacher), ("id", small), ("magnitude", mag)):
            t0 = time.perf_counter()
            model = crembo.CREMBOClassifier(
                teacher=_proba_teacher(net, n_classes), student=DecisionTreeClassifier(max_depth=4), random_state=seed
            )
            model.fit(X_tr, y_tr)
            record[f"{label}_teacher_accuracy"] = float(np.mean(_predict(net, X_te) == y_te))
            record[f"{label}_crembo_accuracy"] = float(model.score(X_te, y_te))
            record[f"{label}_crembo_seconds"] = time.perf_counter() - t0
        log(
            f"[crembo seed {seed}] tol {chosen['tolerance']} params {rep.param_fraction:.1%}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k.endswith("accuracy"))
        )
        out.append(record)
    return out


def _mean_std(values):
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _aggregate(rows):
    agg = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for tol in _grid(name):
            sel = [r for r in rows if r["dataset"] == name and r["tolerance"] == tol]
            if not sel:
                continue
            item = dict(dataset=name, tolerance=tol, n_seeds=len(sel))
            for key in (
                "param_fraction",
                "flop_fraction",
                "teacher_accuracy",
                "id_accuracy",
                "magnitude_accuracy",
                "centered_accuracy",
                "id_agreement",
                "magnitude_agreement",
                "centered_agreement",
                "calib_agreement",
            ):
                item[key], item[key + "_std"] = _mean_std([r[key] for r in sel])
            layers = list(sel[0]["sizes"])
            item["kept"] = {n: float(np.mean([r["sizes"][n] for r in sel])) for n in layers}
            item["totals"] = sel[0]["totals"]
            agg.append(item)
    return agg


def _markdown(agg, crembo_rows, meta):
    lines = [
        f"Measured {meta['date']} on {meta['machine']} (torch {meta['torch']}, {meta['threads']} threads); "
        f"seeds {meta['seeds']}; mean over seeds (± std where shown); no fine-tuning.",
        "",
    ]
    for name in dict.fromkeys(a["dataset"] for a in agg):
        sel = [a for a in agg if a["dataset"] == name]
        lines.append(
            f"**{name}** (teacher test accuracy {sel[0]['teacher_accuracy']:.3f}"
            f" ± {sel[0]['teacher_accuracy_std']:.3f})"
        )
        lines.append("")
        lines.append(
            "| tolerance | kept per layer | params kept | FLOPs kept | accuracy ID | accuracy magnitude "
            "| accuracy ID centred | agreement ID | agreement magnitude | agreement ID centred |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for a in sel:
            kept = " / ".join(f"{a['kept'][n]:.0f}" for n in a["kept"])
            lines.append(
                f"| {a['tolerance']:g} | {kept} | {a['param_fraction']:.1%} | {a['flop_fraction']:.1%} "
                f"| {a['id_accuracy']:.3f} ± {a['id_accuracy_std']:.3f} "
                f"| {a['magnitude_accuracy']:.3f} ± {a['magnitude_accuracy_std']:.3f} "
                f"| {a['centered_accuracy']:.3f} | {a['id_agreement']:.3f} ± {a['id_agreement_std']:.3f} "
                f"| {a['magnitude_agreement']:.3f} ± {a['magnitude_agreement_std']:.3f} "
                f"| {a['centered_agreement']:.3f} |"
            )
        totals = " / ".join(str(v) for v in sel[0]["totals"].values())
        lines += ["", f"Layer widths before compression: {totals}.", ""]
    if crembo_rows:
        lines.append(
            "**Compress, then distil (digits)**: test accuracy of the CNN teacher and of the depth-4 tree "
            "that `CREMBOClassifier` distils from it."
        )
        lines.append("")
        lines.append(
            "| seed | tolerance | params kept | teacher: original / ID / magnitude | "
            "CREMBO tree from: original / ID / magnitude | tree on true labels (BM) |"
        )
        lines.append("|---|---|---|---|---|---|")
        for r in crembo_rows:
            lines.append(
                f"| {r['seed']} | {r['tolerance']:g} | {r['param_fraction']:.1%} "
                f"| {r['original_teacher_accuracy']:.3f} / {r['id_teacher_accuracy']:.3f} / "
                f"{r['magnitude_teacher_accuracy']:.3f} "
                f"| {r['original_crembo_accuracy']:.3f} / {r['id_crembo_accuracy']:.3f} / "
                f"{r['magnitude_crembo_accuracy']:.3f} | {r['bm_tree_accuracy']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _plot(agg, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(a["dataset"] for a in agg))
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7), squeeze=False)
    styles = (
        ("id", "ID (pivoted QR)", "C0", "o"),
        ("centered", "ID, centred", "C2", "^"),
        ("magnitude", "magnitude (L1)", "C3", "s"),
    )
    for j, name in enumerate(names):
        sel = sorted((a for a in agg if a["dataset"] == name), key=lambda a: a["param_fraction"])
        x = [a["param_fraction"] for a in sel]
        for i, metric in enumerate(("accuracy", "agreement")):
            ax = axes[i, j]
            for key, label, color, marker in styles:
                y = [a[f"{key}_{metric}"] for a in sel]
                e = [a[f"{key}_{metric}_std"] for a in sel]
                ax.errorbar(x, y, yerr=e, label=label, color=color, marker=marker, ms=4, capsize=2)
            if metric == "accuracy":
                ax.axhline(sel[0]["teacher_accuracy"], color="k", ls="--", lw=1, label="original")
            ax.set_xscale("log")
            ax.set_xlabel("fraction of parameters kept")
            ax.set_ylabel(f"test {metric}" + (" with the original" if metric == "agreement" else ""))
            ax.set_title(f"{name}: {metric}")
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.suptitle("Structured compression without fine-tuning: ID vs magnitude pruning at the same sizes")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--tabular",
        default="breast_cancer,dermatology",
        help="comma-separated crembo.evaluation.datasets names for the MLP",
    )
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs")
    parser.add_argument("--no-crembo", action="store_true", help="skip the compress-then-distil part")
    parser.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "prune"), help="prefix of the .md and .json outputs"
    )
    parser.add_argument("--plot", default=str(ROOT / "docs" / "img" / "pruning.png"))
    args = parser.parse_args(argv)
    seeds = args.seeds[:1] if args.quick else args.seeds
    warnings.filterwarnings("ignore", category=UserWarning)

    def log(msg):
        print(msg, flush=True)

    t_start = time.perf_counter()
    rows, teachers = run_dataset("digits", seeds, args.quick, log)
    for name in [n for n in args.tabular.split(",") if n]:
        try:
            more, _ = run_dataset(name, seeds, args.quick, log)
        except FileNotFoundError as exc:
            log(f"[{name}] skipped: {exc}")
            continue
        rows += more
    crembo_rows = [] if args.no_crembo else run_crembo(teachers, rows, log)
    agg = _aggregate(rows)
    meta = dict(
        date=time.strftime("%Y-%m-%d"),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        seeds=seeds,
        python=sys.version.split()[0],
        tolerances=TOLERANCES,
        n_calibration=N_CALIBRATION,
        quick=args.quick,
        seconds=time.perf_counter() - t_start,
    )
    md = _markdown(agg, crembo_rows, meta)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md + "\n")
    out.with_suffix(".json").write_text(
        json.dumps(dict(meta=meta, rows=rows, aggregate=agg, crembo=crembo_rows), indent=1)
    )
    _plot(agg, Path(args.plot))
    print()
    print(md)
    log(f"wrote {out.with_suffix('.md')}, {out.with_suffix('.json')}, {args.plot} in {meta['seconds']:.0f}s")


if __name__ == "__main__":
    main()
