"""Shared by bench_crembo.py and bench_tree.py: the synthetic compression
problem (make_classification with 20 features and 10 classes, a fitted
50-tree random forest as the teacher, depth-4 tree students) and the run log
helpers."""

from __future__ import annotations

import os
import sys

from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

# Bumped when a change to crembo alters what the cached exhaustive run costs
# or returns, so that an older cache is not reused (2: MEMO probes the
# smallest threshold first).
SEARCH_VERSION = 2


def crembo_data(rows):
    """(Xtr, Xte, ytr, yte): ``rows`` fitting rows and rows // 4 test rows."""
    n_fit, n_test = rows, rows // 4
    X, y = make_classification(
        n_samples=n_fit + n_test,
        n_features=20,
        n_informative=10,
        n_redundant=5,
        n_classes=10,
        n_clusters_per_class=1,
        random_state=0,
    )
    return train_test_split(X, y, train_size=n_fit, random_state=0, stratify=y)


def data_key(rows):
    """What a cached result depends on."""
    return dict(
        rows=rows,
        features=20,
        informative=10,
        redundant=5,
        classes=10,
        clusters_per_class=1,
        random_state=0,
        forest=dict(n_estimators=50, random_state=0),
        student=dict(max_depth=4, random_state=0),
        search_version=SEARCH_VERSION,
    )


def loadavg():
    """The 1, 5 and 15 minute load averages (None where unavailable)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def log(*a):
    print(*a, file=sys.stderr, flush=True)
