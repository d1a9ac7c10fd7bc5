"""How good are the students' probabilities? Log loss and Brier score.

For each data set, 5 stratified folds: a forest teacher (the paper's), then
on the training part

* a plain depth-4 tree (scikit-learn, balanced classes) on the labels;
* the same tree calibrated by ``CalibratedClassifierCV`` (isotonic, 3 folds);
* CREMBO with leaves that keep the student's own shares
  (``leaf_values="student"``);
* CREMBO with leaves that predict the teacher's mean belief
  (``leaf_values="belief"``, today's default for tree students);

and their log loss, multiclass Brier score (mean squared distance of the
probability vector to the one-hot label) and accuracy on the test part.

    python bench/proba_quality.py [--datasets breast_cancer,heart,dermatology,synthetic]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

from crembo import CREMBOClassifier
from crembo.evaluation.datasets import load_dataset
from crembo.compress.estimators import default_teacher


def data(name):
    if name == "synthetic":
        return make_classification(
            6000, 20, n_informative=8, n_classes=4, n_clusters_per_class=2, flip_y=0.1, random_state=0
        )
    d = load_dataset(name)
    return d.X, d.y


def brier(y, P, classes):
    onehot = (y[:, None] == classes[None, :]).astype(float)
    return float(np.mean(np.sum((P - onehot) ** 2, axis=1)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="breast_cancer,heart,dermatology,synthetic")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    tree = DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=0)
    models = {
        "plain tree": lambda t: tree,
        "calibrated tree (isotonic)": lambda t: CalibratedClassifierCV(tree, method="isotonic", cv=3),
        "CREMBO, student leaves": lambda t: CREMBOClassifier(t, leaf_values="student", random_state=0),
        "CREMBO, belief leaves (default)": lambda t: CREMBOClassifier(t, random_state=0),
    }
    print(f"{args.folds}-fold test log loss / Brier / accuracy (mean over folds); forest teacher, depth-4 students\n")
    print("| data set | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    for name in args.datasets.split(","):
        X, y = data(name)
        classes = np.unique(y)
        scores = {m: [] for m in models}
        for k, (tr, te) in enumerate(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y)):
            teacher = default_teacher(k).fit(X[tr], y[tr])
            for m, make in models.items():
                est = make(teacher).fit(X[tr], y[tr])
                P = np.zeros((len(te), len(classes)))
                P[:, np.searchsorted(classes, est.classes_)] = est.predict_proba(X[te])
                scores[m].append(
                    (
                        log_loss(y[te], P, labels=classes),
                        brier(y[te], P, classes),
                        float(np.mean(est.predict(X[te]) == y[te])),
                    )
                )
        cells = []
        for m in models:
            ll, br, acc = np.mean(scores[m], axis=0)
            cells.append(f"{ll:.3f} / {br:.3f} / {acc:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
