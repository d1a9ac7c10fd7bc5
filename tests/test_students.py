"""StudentTrainer, AllowedLabelStudent and proba_in_classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_blobs
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from crembo.compress.students import AllowedLabelStudent, StudentTrainer, proba_in_classes, supports_multioutput

CLASSES = np.array(["ant", "bee", "cat"])


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, cluster_std=0.6, random_state=0)
    return X, y


def test_fit_labels_trains_on_real_labels(blobs):
    X, y = blobs
    trainer = StudentTrainer(DecisionTreeClassifier(max_depth=3), CLASSES)
    est = trainer.fit_labels(X, y)
    np.testing.assert_array_equal(est.classes_, CLASSES)
    np.testing.assert_array_equal(est.predict(X), CLASSES[y])
    np.testing.assert_array_equal(trainer.predict_index(est, X), y)
    assert trainer.predict_index(est, X).dtype == np.int32
    assert trainer.fit_labels(X, y) is not est  # a fresh clone every fit


def test_fit_labels_drops_unallowed_rows(blobs):
    X, y = blobs
    targets = y.copy()
    targets[::3] = -1  # no allowed label there
    trainer = StudentTrainer(DecisionTreeClassifier(max_depth=2), CLASSES)
    est = trainer.fit_labels(X, targets)
    kept = int((targets >= 0).sum())
    assert est.tree_.n_node_samples[0] == kept
    # dropping a whole class: the student never sees it
    targets = y.copy()
    targets[y == 2] = -1
    est = trainer.fit_labels(X, targets)
    np.testing.assert_array_equal(est.classes_, CLASSES[:2])
    # weights follow the kept rows
    w = np.linspace(1, 2, len(X))
    est = trainer.fit_labels(X, targets, w)
    assert est.tree_.weighted_n_node_samples[0] == pytest.approx(w[targets >= 0].sum())
    with pytest.raises(ValueError, match="no point has an allowed label"):
        trainer.fit_labels(X, np.full(len(X), -1))


def test_sample_weight_support(blobs):
    X, y = blobs
    knn = StudentTrainer(KNeighborsClassifier(n_neighbors=1), CLASSES)
    assert not knn.accepts_weights
    # equal weights need no sample_weight support
    est = knn.fit_labels(X, y, np.full(len(X), 2.5))
    np.testing.assert_array_equal(est.predict(X), CLASSES[y])
    with pytest.raises(TypeError, match="KNeighborsClassifier.fit does not accept sample_weight"):
        knn.fit_labels(X, y, np.arange(len(X), dtype=float) + 1)
    tree = StudentTrainer(DecisionTreeClassifier(max_depth=1), CLASSES)
    assert tree.accepts_weights
    # heavy weights on one class move a stump towards it
    w = np.where(y == 2, 100.0, 1.0)
    est = tree.fit_labels(X, y, w)
    assert (est.predict(X) == "cat").sum() >= (y == 2).sum()


def test_single_class_falls_back_to_dummy(blobs):
    X, _ = blobs
    trainer = StudentTrainer(LogisticRegression(), CLASSES)
    targets = np.full(len(X), 1)
    targets[:5] = -1
    est = trainer.fit_labels(X, targets)
    assert isinstance(est, DummyClassifier)
    assert set(est.predict(X)) == {"bee"}
    np.testing.assert_array_equal(trainer.predict_index(est, X), np.ones(len(X)))
    proba = proba_in_classes(est, X, CLASSES)
    np.testing.assert_array_equal(proba, np.tile([0.0, 1.0, 0.0], (len(X), 1)))
    # a tree takes a single class without help
    est = StudentTrainer(DecisionTreeClassifier(), CLASSES).fit_labels(X, targets)
    assert isinstance(est, DecisionTreeClassifier)


def test_seed_and_template_untouched(blobs):
    X, y = blobs
    template = DecisionTreeClassifier(max_depth=3, max_features=1)
    trainer = StudentTrainer(template, CLASSES, seed=11)
    est = trainer.fit_labels(X, y)
    assert est.random_state == 11
    assert template.random_state is None and not hasattr(template, "tree_")
    a = trainer.fit_labels(X, y)
    np.testing.assert_array_equal(a.predict(X), est.predict(X))
    fixed = StudentTrainer(DecisionTreeClassifier(random_state=3), CLASSES, seed=11).fit_labels(X, y)
    assert fixed.random_state == 3
    assert StudentTrainer(DecisionTreeClassifier(), CLASSES).fit_labels(X, y).random_state is None


def test_trainer_rejects_bad_templates():
    with pytest.raises(TypeError, match="student: expected a scikit-learn classifier, got StandardScaler"):
        StudentTrainer(StandardScaler(), CLASSES)
    with pytest.raises(ValueError, match="student_target='multioutput': LogisticRegression does not support"):
        StudentTrainer(LogisticRegression(), CLASSES, target="multioutput")
    with pytest.raises(ValueError, match="student_target: expected one of"):
        StudentTrainer(DecisionTreeClassifier(), CLASSES, target="soft")


def test_supports_multioutput():
    assert supports_multioutput(DecisionTreeClassifier())
    assert supports_multioutput(KNeighborsClassifier())
    assert not supports_multioutput(LogisticRegression())
    assert not supports_multioutput(object())


def test_allowed_label_student(blobs):
    X, y = blobs
    mask = np.zeros((len(X), 3), dtype=bool)
    mask[np.arange(len(X)), y] = True
    mask[y == 0, 1] = True  # class 0 rows also allow class 1
    mask[:4] = False  # rows with an empty allowed set are left out
    trainer = StudentTrainer(DecisionTreeClassifier(random_state=0), CLASSES, target="multioutput")
    est = trainer.fit_mask(X, mask)
    assert isinstance(est, AllowedLabelStudent)
    assert est.estimator.tree_.n_node_samples[0] == len(X) - 4
    np.testing.assert_array_equal(est.classes_, CLASSES)
    scores = est.allowed_scores(X)
    assert scores.shape == (len(X), 3)
    np.testing.assert_allclose(scores[4:], mask[4:].astype(float))
    pred = est.predict(X)
    # every prediction is allowed (first allowed label on ties: "ant" where both allowed)
    idx = trainer.predict_index(est, X)
    assert mask[np.arange(4, len(X)), idx[4:]].all()
    np.testing.assert_array_equal(pred[4:], CLASSES[y[4:]])
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(CLASSES[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(proba[y == 0][:, 2], 0.0)
    assert proba_in_classes(est, X, CLASSES) is not None
    np.testing.assert_allclose(proba_in_classes(est, X, CLASSES), proba)
    assert trainer.fit_mask(X, mask).__class__ is AllowedLabelStudent
    with pytest.raises(ValueError, match="no point has an allowed label"):
        trainer.fit_mask(X, np.zeros_like(mask))


def test_allowed_label_student_constant_columns(blobs):
    X, y = blobs
    mask = np.zeros((len(X), 3), dtype=bool)
    mask[:, 2] = True  # "cat" always allowed; "ant" never
    mask[y == 1, 1] = True
    est = StudentTrainer(DecisionTreeClassifier(random_state=0), CLASSES, target="multioutput").fit_mask(X, mask)
    scores = est.allowed_scores(X)
    np.testing.assert_allclose(scores[:, 0], 0.0)  # the column's only fitted class is 0
    np.testing.assert_allclose(scores[:, 2], 1.0)  # the column's only fitted class is 1
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba[:, 0], 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(est.predict(X)) <= {"bee", "cat"}


def test_allowed_label_student_uniform_when_nothing_allowed():
    class Nothing:
        classes_ = [np.array([0]), np.array([0])]

        def predict_proba(self, X):
            return [np.ones((len(X), 1)), np.ones((len(X), 1))]

    est = AllowedLabelStudent(Nothing(), ["x", "y"])
    X = np.zeros((3, 2))
    np.testing.assert_allclose(est.predict_proba(X), 0.5)
    np.testing.assert_array_equal(est.predict(X), ["x", "x", "x"])


def test_predict_index_rejects_unknown_labels(blobs):
    X, y = blobs
    trainer = StudentTrainer(DecisionTreeClassifier(), CLASSES)
    stranger = DecisionTreeClassifier().fit(X, np.array(["ant", "bee", "dog"])[y])
    with pytest.raises(ValueError, match="predicted a label outside the teacher's classes"):
        trainer.predict_index(stranger, X)


def test_proba_in_classes_layout(blobs):
    X, y = blobs
    keep = y > 0
    est = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X[keep], CLASSES[y[keep]])
    out = proba_in_classes(est, X, CLASSES)
    assert out.shape == (len(X), 3) and out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], 0.0)
    np.testing.assert_allclose(out[:, 1:], est.predict_proba(X))
    # classes given out of the estimator's own order still land in the right columns
    est2 = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, CLASSES[y])
    out2 = proba_in_classes(est2, X, CLASSES)
    np.testing.assert_allclose(out2, est2.predict_proba(X))
    # no predict_proba: one-hot on the predicted class
    svc = LinearSVC().fit(X[keep], CLASSES[y[keep]])
    assert not hasattr(svc, "predict_proba")
    onehot = proba_in_classes(svc, X, CLASSES)
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)
    np.testing.assert_array_equal(CLASSES[onehot.argmax(axis=1)], svc.predict(X))
    np.testing.assert_array_equal(onehot[:, 0], 0.0)


def test_iris_multioutput_knn():
    X, y = load_iris(return_X_y=True)
    mask = np.zeros((150, 3), dtype=bool)
    mask[np.arange(150), y] = True
    trainer = StudentTrainer(KNeighborsClassifier(n_neighbors=5), np.array([0, 1, 2]), target="multioutput")
    est = trainer.fit_mask(X, mask)
    assert (est.predict(X) == y).mean() > 0.9
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0)


def test_fit_is_deprecated_for_fit_labels_and_fit_mask(blobs):
    X, y = blobs
    labels = StudentTrainer(DecisionTreeClassifier(random_state=0), CLASSES)
    with pytest.warns(DeprecationWarning, match="fit_labels"):
        est = labels.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), labels.fit_labels(X, y).predict(X))
    multi = StudentTrainer(DecisionTreeClassifier(random_state=0), CLASSES, target="multioutput")
    mask = np.eye(3, dtype=bool)[y]
    with pytest.warns(DeprecationWarning, match="fit_mask"):
        assert isinstance(multi.fit(X, mask=mask), AllowedLabelStudent)


def test_trainer_pickles_without_its_lock_or_bin_cache(blobs):
    import pickle

    from crembo import HistTreeClassifier

    X, y = blobs
    trainer = StudentTrainer(HistTreeClassifier(max_depth=3), CLASSES, seed=5)
    first = trainer.fit_labels(X, y)
    assert trainer._bins is not None  # X binned once, cached
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy._bins is None and copy.seed == 5 and copy.target == "labels"
    with copy._bins_lock:  # a working lock of its own
        pass
    again = copy.fit_labels(X, y)
    np.testing.assert_array_equal(again.predict(X), first.predict(X))
    assert trainer._bins is not None  # pickling left the original's cache alone


def test_trainer_walks_the_array_it_binned_without_checking_it_again():
    """A histogram-tree student predicts the rows the trainer binned through
    their leaves (no second check of X); the labels and leaves are those of
    ``predict``/``apply``, on another array too."""
    from crembo import HistTreeClassifier

    X, y = make_blobs(3000, 6, centers=5, random_state=2)
    classes = np.arange(5)
    tr = StudentTrainer(HistTreeClassifier(max_depth=4), classes)
    est = tr.fit_labels(X, y)
    assert tr._checked(X) and not tr._checked(X.copy())
    np.testing.assert_array_equal(tr.predict_index(est, X), est.predict(X))
    np.testing.assert_array_equal(tr.apply(est, X), est.apply(X))
    np.testing.assert_array_equal(tr.predict_index(est, X[:10].copy()), est.predict(X[:10]))
    # a student fitted on fewer classes maps its labels into the trainer's
    est = tr.fit_labels(X, np.where(y == 3, 2, y))
    np.testing.assert_array_equal(tr.predict_index(est, X), est.predict(X))


def test_marked_arrays_walk_unchecked_with_the_same_predictions(blobs):
    # The sweep marks its validation rows as checked: a histogram tree then
    # walks them without validate_data, with the same predictions; another
    # array of equal content is still checked, and a pickled copy forgets.
    import pickle

    from crembo import HistTreeClassifier

    X, y = blobs
    tr = StudentTrainer(HistTreeClassifier(max_depth=3), np.unique(y), seed=0)
    est = tr.fit_labels(X, np.searchsorted(np.unique(y), y))
    X_val = X[::3].copy()
    before = tr.predict_index(est, X_val)
    assert tr.mark_checked(X_val) is X_val
    assert tr._checked(X_val) and not tr._checked(X_val.copy())
    np.testing.assert_array_equal(tr.predict_index(est, X_val), before)
    bad = X_val.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        tr.predict_index(est, bad)  # not marked: checked
    assert not pickle.loads(pickle.dumps(tr))._checked(X_val)
    ints = X_val.astype(np.int64)
    tr.mark_checked(ints)  # not a float matrix: never marked
    assert not tr._checked(ints)
