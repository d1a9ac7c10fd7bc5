"""The evaluation protocol's reuse of CREMBO's search for CREMBO-1SE."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from crembo.evaluation.protocol import generalization


@pytest.fixture(scope="module")
def iris_shuffled():
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    return X[order], y[order]


@pytest.mark.parametrize("params", [{"cv": None}, None, {"cv": 2}, {"refit": True}, {"search_subsample": 60}])
def test_one_se_variant_runs_with_any_crembo_parameters(iris_shuffled, params):
    # CREMBO-1SE reuses CREMBO's search only when the estimator says it can;
    # otherwise it is fitted on its own (cv used to crash the protocol here).
    X, y = iris_shuffled
    res = generalization(X, y, methods=("CREMBO", "CREMBO-1SE"), n_splits=3, crembo_params=params)
    for m in ("CREMBO", "CREMBO-1SE"):
        assert res.scores[m].shape == (3,) and np.all(res.scores[m] > 0.7)
    if params == {"cv": None}:  # one validation split, the same search: the same fit time for both
        assert res.summary["CREMBO-1SE"]["seconds"] == res.summary["CREMBO"]["seconds"]
