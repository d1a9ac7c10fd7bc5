"""StudentTrainer pickles (its lock and binned-X cache stay behind), so the
sweep's fits can run on joblib's process and cluster backends."""

import pickle

import joblib
import numpy as np

from crembo import CREMBOClassifier
from crembo.compress.students import StudentTrainer
from crembo.trees.hist import tree_student


def test_trainer_pickles_and_fits_after():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 3)
    y = (X[:, 0] > 0.5).astype(int)
    trainer = StudentTrainer(tree_student(2), np.array([0, 1]))
    trainer.fit_labels(X, y)  # fills the binned-X cache
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy._bins is None
    np.testing.assert_array_equal(
        copy.predict_index(copy.fit_labels(X, y), X), trainer.predict_index(trainer.fit_labels(X, y), X)
    )


def test_sweep_runs_on_the_loky_backend():
    rng = np.random.RandomState(1)
    X = rng.rand(300, 3)
    y = (X[:, 0] + 0.2 * rng.rand(300) > 0.6).astype(int)
    P = np.column_stack([1 - X[:, 0], X[:, 0]])
    kw = dict(teacher=P, cv=None, augment=0, n_thresholds=4, random_state=0)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        est = CREMBOClassifier(n_jobs=2, **kw).fit(X, y)
    ref = CREMBOClassifier(**kw).fit(X, y)
    assert est.threshold_ == ref.threshold_
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
