"""Reproduce the CREMBO paper's tabular experiments, and go beyond them.

For every data set (heart, dermatology, arrhythmia, breast cancer, iris) and
both teachers (a random forest of 100 trees, depth 12, balanced; an MLP whose
``predict_proba`` is the belief), with depth-4 balanced tree students:

* **generalization**: 10-fold cross-validation (unshuffled folds), repeated
  ``R`` times; mean and std test accuracy and folds won, per method;
* **robustness**: the agreement of the ten fold-trained students on a fixed
  15% test split (repeated ``R`` times with new splits);
* **label noise**: both, with 10% and 20% of the training labels flipped;
* **feature noise**: test accuracy under Gaussian input noise (scaled by each
  feature's training standard deviation) of the students of the clean run.

Methods: BM, VT, MEMO, CREMBO (validation-best threshold) and CREMBO-1SE (the
one-standard-error selection rule), plus the teacher for reference.

Run ``crembo paper`` / ``python bench/paper.py`` (``--quick`` for a run of a
few minutes); the outputs are a markdown report, a JSON file and a figure of
accuracy against agreement per data set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from typing import Any, Callable, Sequence

from .. import specs
from .datasets import DATASETS, load_dataset
from .protocol import generalization, stability
from ..specs import mlp_teacher

__all__ = ["run", "main", "TEACHERS", "PAPER_METHODS", "mlp_teacher"]

PAPER_METHODS = ("teacher", "BM", "VT", "MEMO", "CREMBO", "CREMBO-1SE")
STUDENT_METHODS = PAPER_METHODS[1:]
FEATURE_NOISE = (0.1, 0.25, 0.5)
LABEL_NOISE = (0.1, 0.2)


def teacher_label(name: str) -> str:
    """The label a teacher carries in the reports: its name in
    :mod:`crembo.specs` with underscores (``random-forest`` ->
    ``random_forest``). Raises :class:`crembo.specs.SpecError` for a name
    the registry does not know."""
    return specs.lookup(name, "teacher", "classification")[0].name.replace("-", "_")


def _teacher_factory(name: str) -> Callable[[Any], Any]:
    def factory(random_state: int | None = None) -> Any:
        return specs.make(name, "teacher", "classification", seed=random_state)

    factory.__name__ = factory.__qualname__ = f"make_{teacher_label(name)}"
    return factory


#: The paper's two teachers (the registry's random-forest and mlp), under the
#: labels of the reports; ``run`` takes any teacher name of the registry.
TEACHERS = {teacher_label(n): _teacher_factory(n) for n in ("random-forest", "mlp")}


def _protocol(X, y, teacher, repeats, label_noise, feature_noise, seed, n_jobs):
    # BM and VT use the paper's student; MEMO and CREMBO run with
    # CREMBOClassifier's defaults (docs/defaults_study.md).
    common = dict(
        methods=PAPER_METHODS, teacher=teacher, student=None, random_state=seed, label_noise=label_noise, n_jobs=n_jobs
    )
    g = generalization(X, y, n_repeats=repeats, feature_noise=feature_noise, **common)
    s = stability(X, y, n_repeats=repeats, **common)
    out = {}
    for m in PAPER_METHODS:
        out[m] = dict(
            mean=g.summary[m]["mean"],
            std=g.summary[m]["std"],
            wins=g.summary[m]["wins"],
            agreement=s.summary[m]["agreement"],
            agreement_std=s.summary[m]["agreement_std"],
            fit_seconds=g.summary[m]["seconds"],
            feature_noise={str(k): v for k, v in g.summary[m]["noisy"].items()},
        )
    return out, g.seconds + s.seconds


def run(
    datasets: Sequence[str] = DATASETS,
    teachers: Sequence[str] = tuple(TEACHERS),
    repeats: int = 20,
    label_noise: Sequence[float] = LABEL_NOISE,
    feature_noise: Sequence[float] = FEATURE_NOISE,
    noise_repeats: int | None = None,
    seed: int = 0,
    n_jobs: int | None = -1,
    data_dir: str | os.PathLike | None = None,
    progress: Callable[[str], Any] | None = print,
) -> dict[str, Any]:
    """Run the whole reproduction and return its results as a dict.

    Parameters
    ----------
    datasets : sequence of str, default=DATASETS
    teachers : sequence of str, default=tuple(TEACHERS)
        Teacher names of :mod:`crembo.specs` (any spelling); the results
        label them as :func:`teacher_label` does.
    repeats : int, default=20
        Repeats of the clean generalization and robustness protocols.
    label_noise : sequence of float, default=LABEL_NOISE
        Label-noise levels, each run with ``noise_repeats`` repeats.
    noise_repeats : int or None, default=None
        Default ``max(1, repeats // 4)``.
    n_jobs : int, default=-1
        Parallel folds (processes).
    """
    noise_repeats = max(1, repeats // 4) if noise_repeats is None else noise_repeats
    results = dict(
        settings=dict(
            datasets=list(datasets),
            teachers=[teacher_label(t) for t in teachers],
            repeats=repeats,
            label_noise=list(label_noise),
            noise_repeats=noise_repeats,
            feature_noise=list(feature_noise),
            seed=seed,
            machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        ),
        runs=[],
    )
    start = time.perf_counter()
    for ds in datasets:
        data = load_dataset(ds, data_dir=data_dir)
        for tname in teachers:
            teacher = specs.make(tname, "teacher", "classification", seed=seed)
            tname = teacher_label(tname)
            for noise in (0.0, *label_noise):
                reps = repeats if noise == 0 else noise_repeats
                fnoise = feature_noise if noise == 0 else ()
                methods, secs = _protocol(data.X, data.y, teacher, reps, noise, fnoise, seed, n_jobs)
                results["runs"].append(
                    dict(dataset=ds, teacher=tname, label_noise=noise, repeats=reps, seconds=secs, methods=methods)
                )
                if progress:
                    c = methods["CREMBO"]
                    progress(
                        f"{ds:13s} {tname:13s} noise {noise:.1f}: CREMBO {c['mean']:.3f} "
                        f"agreement {c['agreement']:.3f} ({secs:.1f} s)"
                    )
    results["seconds"] = time.perf_counter() - start
    return results


def _fmt(v, std=None):
    return f"{v:.3f}" if std is None else f"{v:.3f} ± {std:.3f}"


def markdown(results: dict[str, Any]) -> str:
    """The report: one table per (label noise) setting, and the feature-noise table."""
    st = results["settings"]
    lines = [
        f"Settings: {st['repeats']} repeats of 10-fold CV and of the robustness protocol "
        f"(label-noise runs: {st['noise_repeats']}), seed {st['seed']}; {st['machine']}; "
        f"total {results['seconds'] / 60:.1f} min.",
        "",
    ]
    for noise in sorted({r["label_noise"] for r in results["runs"]}):
        title = "clean labels" if noise == 0 else f"{int(round(noise * 100))}% of training labels flipped"
        lines += [
            f"### Accuracy and agreement, {title}",
            "",
            "Accuracy: mean ± std over folds (folds won among the students). Agreement: mean pairwise "
            "agreement of the 10 fold students on the held-out split. Best student per row in bold.",
            "",
            "| data set | teacher | teacher acc. | "
            + " | ".join(STUDENT_METHODS)
            + " | "
            + " | ".join(f"agr. {m}" for m in STUDENT_METHODS)
            + " |",
            "|---|---|---|" + "---|" * (2 * len(STUDENT_METHODS)),
        ]
        for r in results["runs"]:
            if r["label_noise"] != noise:
                continue
            ms = r["methods"]
            best_acc = max(ms[m]["mean"] for m in STUDENT_METHODS)
            best_agr = max(ms[m]["agreement"] for m in STUDENT_METHODS)
            accs = [
                (
                    ("**" if ms[m]["mean"] == best_acc else "") + f"{_fmt(ms[m]['mean'], ms[m]['std'])} "
                    f"({ms[m]['wins']})" + ("**" if ms[m]["mean"] == best_acc else "")
                )
                for m in STUDENT_METHODS
            ]
            agrs = [
                ("**" if ms[m]["agreement"] == best_agr else "")
                + _fmt(ms[m]["agreement"])
                + ("**" if ms[m]["agreement"] == best_agr else "")
                for m in STUDENT_METHODS
            ]
            lines.append(
                f"| {r['dataset']} | {r['teacher']} | {_fmt(ms['teacher']['mean'])} | "
                + " | ".join(accs)
                + " | "
                + " | ".join(agrs)
                + " |"
            )
        lines.append("")
    clean = [r for r in results["runs"] if r["label_noise"] == 0]
    if clean and clean[0]["methods"]["CREMBO"]["feature_noise"]:
        levels = list(clean[0]["methods"]["CREMBO"]["feature_noise"])
        lines += [
            "### Test accuracy under feature noise (clean training labels)",
            "",
            "Gaussian noise of `level x` each feature's training standard deviation added to the test rows.",
            "",
            "| data set | teacher | level | " + " | ".join(STUDENT_METHODS) + " |",
            "|---|---|---|" + "---|" * len(STUDENT_METHODS),
        ]
        for r in clean:
            for lv in levels:
                vals = [r["methods"][m]["feature_noise"][lv] for m in STUDENT_METHODS]
                best = max(vals)
                lines.append(
                    f"| {r['dataset']} | {r['teacher']} | {lv} | "
                    + " | ".join(("**" if v == best else "") + _fmt(v) + ("**" if v == best else "") for v in vals)
                    + " |"
                )
        lines.append("")
    return "\n".join(lines)


def figure(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Accuracy against agreement, one panel per data set (clean labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean = [r for r in results["runs"] if r["label_noise"] == 0]
    datasets = list(dict.fromkeys(r["dataset"] for r in clean))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.4), squeeze=False)
    markers = {"random_forest": "o", "mlp": "s"}
    colors = dict(zip(STUDENT_METHODS, ["tab:gray", "tab:blue", "tab:orange", "tab:red", "tab:purple"]))
    for ax, ds in zip(axes[0], datasets):
        for r in (r for r in clean if r["dataset"] == ds):
            for m in STUDENT_METHODS:
                v = r["methods"][m]
                ax.scatter(
                    v["agreement"],
                    v["mean"],
                    marker=markers.get(r["teacher"], "^"),
                    color=colors[m],
                    label=f"{m} ({r['teacher']})",
                )
        ax.set_title(ds)
        ax.set_xlabel("agreement")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("CV accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crembo paper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, feature noise only (a few minutes)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 20, quick 1)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--teachers",
        default=",".join(TEACHERS),
        help=f"comma-separated teachers of crembo.specs: {', '.join(specs.names('teacher'))} "
        f"(default {','.join(TEACHERS)})",
    )
    parser.add_argument("--no-label-noise", action="store_true")
    parser.add_argument(
        "--noise-repeats", type=int, default=None, help="repeats of the label-noise runs (default repeats // 4)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="bench/results", help="output folder")
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    teachers = [t for t in args.teachers.split(",") if t]  # any name of crembo.specs (random-forest, ...)
    for d in datasets:
        if d not in DATASETS:
            parser.error(f"unknown data set {d!r}; choose from {', '.join(DATASETS)}")
    for t in teachers:
        try:
            teacher_label(t)
        except specs.SpecError:
            parser.error(f"unknown teacher {t!r}; choose from {', '.join(specs.names('teacher'))}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 20)
    label_noise = () if (args.no_label_noise or args.quick) else LABEL_NOISE
    try:
        results = run(
            datasets,
            teachers,
            repeats=repeats,
            label_noise=label_noise,
            seed=args.seed,
            noise_repeats=args.noise_repeats,
            n_jobs=args.jobs,
            data_dir=args.data_dir,
            progress=lambda s: print(s, flush=True),
        )
    except FileNotFoundError as exc:
        print(f"crembo paper: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "paper_quick" if args.quick else f"paper_r{repeats}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    report = markdown(results)
    (out / f"{stem}.md").write_text(report + "\n")
    try:
        figure(results, out / f"{stem}.png")
        fig_note = f", {out / (stem + '.png')}"
    except ImportError:
        fig_note = " (matplotlib not installed: no figure)"
    print("\n" + report)
    print(f"written: {out / (stem + '.md')}, {out / (stem + '.json')}{fig_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
