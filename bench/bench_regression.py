"""Deep hypotheses for regression: BM, VT, MEMO and CREMBO compared.

    python bench/bench_regression.py                 # the tables in docs/regression.md
    python bench/bench_regression.py --quick         # a smoke run (small, few folds)

Data: scikit-learn's diabetes data (442 rows) and Friedman #1
(``make_friedman1``, noise 1.0) at several sizes. Training targets are
clean, or a fraction (10%, 20%) of them is replaced by outliers
``y_i + s_i * 5 * sd(y_train)`` with a random sign ``s_i``; test targets are
always clean.

Teacher: 100 regression trees with at least 5 rows per leaf (fitted once per
fold and shared by the four methods). Students: depth-4 regression trees.
  BM      the student on the (possibly contaminated) targets y
  VT      the student on the teacher's mean prediction
  MEMO    CREMBORegressor(mode="memo")
  CREMBO  CREMBORegressor(mode="crembo"), validation RMSE picks the level

Accuracy: k-fold cross-validation (repeated), test RMSE and R^2 on the clean
held-out fold, and the students' delta-insensitive depth (delta 0.1) among
the teacher's hypotheses on the test fold. Agreement: a fixed 15% test
split; the rest in k folds; the k students each trained without one fold;
mean pairwise R^2 (1 - mean squared difference / var(y_test)) and
normalised mean absolute difference on the test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import KFold, RepeatedKFold, train_test_split

from crembo.compress.regression import (
    CREMBORegressor,
    default_regression_student,
    default_regression_teacher,
    hypothesis_predictions,
    regression_agreement,
    regression_depth,
)

METHODS = ("BM", "VT", "MEMO", "CREMBO")
DEPTH_DELTA = 0.1


def contaminate(y, fraction, rng):
    """y with ``fraction`` of its entries moved by 5 standard deviations (random sign)."""
    y = np.array(y, dtype=np.float64)
    k = int(round(fraction * len(y)))
    if k:
        idx = rng.choice(len(y), size=k, replace=False)
        y[idx] += rng.choice([-1.0, 1.0], size=k) * 5.0 * np.std(y)
    return y


def fit_methods(X, y, seed):
    """The teacher (fitted once) and the four students, fitted on (X, y)."""
    teacher = default_regression_teacher(seed).fit(X, y)
    out = {}
    out["BM"] = default_regression_student(seed).fit(X, y)
    H = hypothesis_predictions(teacher, X)
    out["VT"] = default_regression_student(seed).fit(X, H.mean(axis=1))
    out["MEMO"] = CREMBORegressor(teacher, mode="memo", random_state=seed).fit(X, y)
    out["CREMBO"] = CREMBORegressor(teacher, mode="crembo", random_state=seed).fit(X, y)
    return teacher, out


def cross_validate(X, y, fraction, folds, repeats, seed):
    rows = {m: {"rmse": [], "r2": [], "depth": []} for m in METHODS + ("teacher",)}
    levels = {"MEMO": [], "CREMBO": []}
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    for k, (tr, te) in enumerate(splitter.split(X)):
        rng = np.random.default_rng(seed + 1000 + k)
        y_tr = contaminate(y[tr], fraction, rng)
        teacher, models = fit_methods(X[tr], y_tr, seed + k)
        H_te = hypothesis_predictions(teacher, X[te])
        for m, model in list(models.items()) + [("teacher", teacher)]:
            p = model.predict(X[te])
            rows[m]["rmse"].append(float(np.sqrt(mean_squared_error(y[te], p))))
            rows[m]["r2"].append(float(r2_score(y[te], p)))
            rows[m]["depth"].append(regression_depth(H_te, p, delta=DEPTH_DELTA))
        for m in levels:
            lv = models[m].memo_level_ if m == "MEMO" else models[m].level_
            levels[m].append(np.nan if lv is None else float(lv))
    summary = {m: {key: (float(np.mean(v)), float(np.std(v))) for key, v in d.items()} for m, d in rows.items()}
    # Folds won (lowest RMSE) among the four students.
    rmse = np.array([rows[m]["rmse"] for m in METHODS])
    wins = np.bincount(np.argmin(rmse, axis=0), minlength=len(METHODS))
    for i, m in enumerate(METHODS):
        summary[m]["wins"] = int(wins[i])
    summary["levels"] = {m: float(np.nanmean(v)) if np.any(np.isfinite(v)) else None for m, v in levels.items()}
    summary["memo_found"] = int(np.sum(np.isfinite(levels["MEMO"])))
    summary["n_folds"] = len(rows["BM"]["rmse"])
    return summary


def agreement(X, y, fraction, folds, seed):
    rest, test = train_test_split(np.arange(len(X)), test_size=0.15, random_state=seed)
    preds = {m: [] for m in METHODS}
    for k, (tr, _) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(rest)):
        rows = rest[tr]
        rng = np.random.default_rng(seed + 2000 + k)
        _, models = fit_methods(X[rows], contaminate(y[rows], fraction, rng), seed + k)
        for m in METHODS:
            preds[m].append(models[m].predict(X[test]))
    return {m: regression_agreement(np.array(preds[m]), y[test]) for m in METHODS}


def datasets(quick):
    d = {"diabetes": load_diabetes(return_X_y=True)}
    sizes = (500,) if quick else (500, 2000, 10000)
    for n in sizes:
        d[f"friedman1-{n}"] = make_friedman1(n_samples=n, noise=1.0, random_state=0)
    return d


def plan(name, quick):
    """(folds, repeats, agreement folds) per data set: fewer for the large ones
    to keep the whole run near 15 minutes on two busy cores."""
    if quick:
        return 3, 1, 3
    if name.endswith("10000"):
        return 5, 1, 5
    if name.endswith("2000"):
        return 10, 1, 10
    return 10, 2, 10


def fmt(mean_sd, digits=3):
    return f"{mean_sd[0]:.{digits}f} ± {mean_sd[1]:.{digits}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/bench_regression.json")
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    results = {}
    for name, (X, y) in datasets(args.quick).items():
        folds, repeats, ag_folds = plan(name, args.quick)
        for fraction in (0.0, 0.1, 0.2):
            t0 = time.perf_counter()
            cv = cross_validate(X, y, fraction, folds, repeats, args.seed)
            ag = agreement(X, y, fraction, ag_folds, args.seed)
            key = f"{name} outliers={int(fraction * 100)}%"
            results[key] = {
                "cv": cv,
                "agreement": ag,
                "folds": folds,
                "repeats": repeats,
                "agreement_folds": ag_folds,
                "seconds": time.perf_counter() - t0,
            }
            print(
                f"\n### {key}  ({folds}-fold x {repeats}; agreement: {ag_folds} fold students; "
                f"{time.perf_counter() - t0:.0f} s; MEMO level found in {cv['memo_found']}/{cv['n_folds']} "
                f"folds, mean MEMO level {cv['levels']['MEMO']}, CREMBO level {cv['levels']['CREMBO']})"
            )
            print("| method | RMSE | R^2 | depth (δ=0.1) | folds won | agreement R^2 | agreement NMAD |")
            print("|---|---|---|---|---|---|---|")
            for m in METHODS + ("teacher",):
                c = cv[m]
                a = ag.get(m)
                won = c.get("wins", "")
                agr = f"{a[0]:.3f} | {a[1]:.3f}" if a else "– | –"
                print(f"| {m} | {fmt(c['rmse'])} | {fmt(c['r2'])} | {fmt(c['depth'])} | {won} | {agr} |")
            sys.stdout.flush()
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "seconds": total, "seed": args.seed, "quick": args.quick}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
