"""One validation style: declared parameter constraints, one error type."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import crembo
from crembo import CREMBOClassifier, HistTreeClassifier, LabelDistiller
from crembo._validation import (
    InvalidParameterError,
    Interval,
    Options,
    check_int,
    check_param,
    check_positive_int,
    validate_params,
)
from crembo.compress.regression import CREMBORegressor, LabelDistillerRegressor, regression_memo
from crembo.trees.hist_regression import HistTreeRegressor

ESTIMATORS = [CREMBOClassifier, LabelDistiller, CREMBORegressor, LabelDistillerRegressor, HistTreeClassifier]
ESTIMATORS += [HistTreeRegressor]
try:
    from crembo.nn import KDClassifier, NetClassifier

    ESTIMATORS += [NetClassifier, KDClassifier]
except ImportError:  # torch is optional
    pass


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_is_declared_once(cls):
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(cls._parameter_constraints) == params


class BadType:
    def __repr__(self):
        return "<BadType>"


def _fit(est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    if isinstance(est, (CREMBORegressor, LabelDistillerRegressor, HistTreeRegressor)):
        return est.fit(X, X[:, 0] + rng.normal(scale=0.1, size=40))
    return est.fit(X, (X[:, 0] > 0).astype(int))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_a_value_of_no_allowed_type_is_an_invalid_parameter_naming_it(cls):
    for name, spec in cls._parameter_constraints.items():
        if isinstance(spec, str):  # "no_validation": checked where it is used
            continue
        est = cls(**{name: BadType()})
        with pytest.raises(InvalidParameterError, match=rf"^{name}: expected .*, got <BadType>$"):
            _fit(est)


def test_invalid_parameter_error_is_both_value_and_type_error():
    assert issubclass(InvalidParameterError, ValueError) and issubclass(InvalidParameterError, TypeError)


def _memo_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    P = np.c_[rng.uniform(0.2, 0.8, 30), np.zeros(30)]
    P[:, 1] = 1 - P[:, 0]
    return X, P


@pytest.mark.parametrize("eta", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_the_same_fault_is_the_same_error_everywhere(eta):
    # eta was a TypeError or a ValueError in the estimator, a ValueError in
    # memo() and a TypeError in regression: one declaration, one error now.
    X, P = _memo_data()
    y = (X[:, 0] > 0).astype(int)
    calls = [
        lambda: crembo.memo(X, P, eta=eta),
        lambda: regression_memo(X, np.c_[X[:, 0], X[:, 0] + 1], eta=eta),
        lambda: CREMBOClassifier(eta=eta).fit(X, y),
        lambda: CREMBORegressor(eta=eta).fit(X, X[:, 0]),
    ]
    messages = set()
    for call in calls:
        with pytest.raises(InvalidParameterError, match="^eta: expected a positive number, got ") as info:
            call()
        messages.add(str(info.value))
    assert len(messages) == 1


def test_messages_name_the_range_of_the_number_given():
    spec = [None, Options("auto"), Interval("integer", 2, 100)]
    with pytest.raises(InvalidParameterError, match=r"^cv: expected an integer >= 2, got 1$"):
        check_param(1, "cv", spec)
    with pytest.raises(InvalidParameterError, match=r"^cv: expected an integer in \[2, 100\], got 101$"):
        check_param(101, "cv", spec)
    with pytest.raises(InvalidParameterError, match=r"^cv: expected None, one of 'auto' or an integer >= 2, got 'x'$"):
        check_param("x", "cv", spec)
    with pytest.raises(InvalidParameterError, match=r"^f: expected a value in \(0.0, 1.0\], got nan$"):
        check_param(float("nan"), "f", [Interval("real", 0.0, 1.0, closed="right")])
    assert check_param(np.str_("auto"), "cv", spec) == "auto"
    assert check_param(np.int64(5), "cv", spec) == 5
    with pytest.raises(InvalidParameterError, match="got True"):
        check_param(True, "cv", spec)  # a bool is not a number here
    with pytest.raises(InvalidParameterError, match=r"^f: expected a value in \(0.0, 0.4\], got 0.5$"):
        check_param(0.5, "f", [Interval("integer", 0, 1), Interval("real_not_int", 0.0, 0.4, closed="right")])


def test_validate_params_skips_no_validation_and_refuses_undeclared():
    validate_params({"a": object(), "b": 3}, {"a": "no_validation", "b": [Interval("integer", 0, None)]})
    with pytest.raises(RuntimeError, match="'c' has no declared constraints"):
        validate_params({"c": 1}, {})


def test_counts_that_may_be_zero_use_check_int():
    assert check_int(0, "patience", minimum=0) == 0
    with pytest.raises(InvalidParameterError, match="patience: expected an integer >= 0, got -1"):
        check_int(-1, "patience", minimum=0)
    with pytest.raises(ValueError, match="use check_int"):
        check_positive_int(0, "patience", minimum=0)
    assert check_positive_int(3, "max_rounds") == 3
    assert check_int(None, "n", minimum=1, allow_none=True) is None
