"""The scikit-learn-style network estimators, and CREMBO driving a network student."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from crembo import CREMBOClassifier  # noqa: E402
from crembo.nn import (  # noqa: E402
    MLP,
    KDClassifier,
    NetClassifier,
    SmallCNN,
    TorchTeacher,
    load_digits_images,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def cnn_teacher(digits):
    Xtr, Xte, ytr, yte = digits
    t = NetClassifier(SmallCNN, dict(width=8, head=32), epochs=6, lr=3e-3, device="cpu", random_state=0)
    return t.fit(Xtr, ytr)


def test_import_crembo_without_torch():
    code = "import sys, crembo; assert 'torch' not in sys.modules, 'crembo imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_net_classifier_fits_labels_of_any_type(digits):
    Xtr, Xte, ytr, yte = digits
    names = np.array([f"digit-{k}" for k in range(10)])
    clf = NetClassifier(MLP, dict(hidden=(32,)), epochs=8, lr=1e-2, device="cpu", random_state=0)
    clf.fit(Xtr.astype(np.float64), names[ytr])
    assert list(clf.classes_) == sorted(names)
    assert clf.n_features_in_ == 64 and clf.n_epochs_ == 8 and len(clf.history_) == 8
    P = clf.predict_proba(Xte)
    assert P.shape == (len(Xte), 10) and np.allclose(P.sum(1), 1)
    assert np.array_equal(clf.predict(Xte), clf.classes_[P.argmax(1)])
    assert clf.score(Xte, names[yte]) > 0.85
    # Same seed, same network.
    again = clone(clf).fit(Xtr, names[ytr])
    assert np.allclose(again.predict_proba(Xte), P, atol=1e-6)
    # Pickles, and the copy predicts the same.
    copy = pickle.loads(pickle.dumps(clf))
    assert np.allclose(copy.predict_proba(Xte), P)


def test_sample_weight_and_early_stopping(digits):
    Xtr, Xte, ytr, yte = digits
    w = np.where(ytr == 3, 0.0, 1.0)
    clf = NetClassifier(MLP, dict(hidden=(16,)), epochs=10, lr=1e-2, device="cpu", random_state=0)
    clf.fit(Xtr, ytr, sample_weight=w)
    # Class 3 never counts in training, so it is (almost) never predicted.
    assert np.mean(clf.predict(Xte) == 3) < 0.03
    es = NetClassifier(
        MLP,
        dict(hidden=(16,)),
        epochs=200,
        lr=3e-2,
        lr_schedule=None,
        early_stopping=True,
        patience=3,
        device="cpu",
        random_state=0,
    ).fit(Xtr, ytr)
    assert es.n_epochs_ < 200 and all(r["val_loss"] is not None for r in es.history_)
    with pytest.raises(ValueError, match="sample_weight"):
        clf.fit(Xtr, ytr, sample_weight=np.ones(3))


def test_fit_allowed_learns_allowed_sets(digits):
    Xtr, Xte, ytr, yte = digits
    # Allowed: the true label, plus label (y + 1) % 10 on half of the rows.
    rng = np.random.default_rng(0)
    A = np.eye(10, dtype=bool)[ytr]
    extra = rng.random(len(ytr)) < 0.5
    A[np.flatnonzero(extra), (ytr[extra] + 1) % 10] = True
    classes = np.arange(10) * 10
    clf = NetClassifier(MLP, dict(hidden=(32,)), epochs=10, lr=1e-2, device="cpu", random_state=0).fit_allowed(
        Xtr, A, classes
    )
    assert np.array_equal(clf.classes_, classes)
    pred = clf.predict(Xtr) // 10
    assert A[np.arange(len(ytr)), pred].mean() > 0.85  # predictions are allowed labels
    # The label every row allows (the true one) wins over the one half of them allow.
    assert clf.score(Xte, yte * 10) > 0.8
    with pytest.raises(ValueError, match="allowed"):
        clf.fit_allowed(Xtr, A[:, :5], classes)


def test_module_instance_and_factory_errors(digits):
    Xtr, ytr = digits[0][:200], digits[2][:200]
    base = MLP(64, 10, hidden=(8,))
    w0 = base[1].weight.detach().clone()
    clf = NetClassifier(base, epochs=1, device="cpu").fit(Xtr, ytr)
    assert torch.equal(base[1].weight, w0)  # the template is never trained
    assert not torch.equal(clf.module_[1].weight.cpu(), w0)
    with pytest.raises(ValueError, match="outputs shape"):
        NetClassifier(MLP(64, 3), epochs=1, device="cpu").fit(Xtr, ytr)
    with pytest.raises(TypeError, match="module"):
        NetClassifier("mlp", epochs=1, device="cpu").fit(Xtr, ytr)


def test_sklearn_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(
            NetClassifier(epochs=30, lr=1e-2, device="cpu", random_state=0),
            expected_failed_checks={
                "check_sample_weight_equivalence_on_dense_data": "float32 training: equal up to ~1e-8, not to the check's 1e-9"
            },
        )


@pytest.mark.parametrize("method", ["kd", "noisy", "noisy_kd", "logits"])
def test_kd_classifier_methods(digits, cnn_teacher, method):
    Xtr, Xte, ytr, yte = digits
    student = NetClassifier(MLP, dict(hidden=(32,)), epochs=10, lr=1e-2, device="cpu")
    kd = KDClassifier(cnn_teacher, student, method=method, temperature=2.0, sigma=0.2, random_state=0)
    kd.fit(Xtr, ytr)
    assert kd.teacher_ is cnn_teacher and kd.student.get_params()["random_state"] is None
    assert kd.score(Xte, yte) > 0.8
    assert np.allclose(kd.predict_proba(Xte).sum(1), 1)


def test_kd_with_unlabelled_rows_and_prob_only_teacher(digits):
    from sklearn.linear_model import LogisticRegression

    Xtr, Xte, ytr, yte = digits
    lr = LogisticRegression(max_iter=300).fit(Xtr, ytr)  # a teacher with probabilities only
    kd = KDClassifier(lr, NetClassifier(MLP, dict(hidden=(16,)), epochs=6, lr=1e-2, device="cpu"), random_state=0).fit(
        Xtr[:300], ytr[:300], X_unlabeled=Xtr[300:]
    )
    assert kd.student_.module_ is not None and kd.score(Xte, yte) > 0.8
    with pytest.raises(ValueError, match="method"):
        KDClassifier(lr, method="dark").fit(Xtr, ytr)


def test_crembo_with_network_student_end_to_end(digits, cnn_teacher):
    Xtr, Xte, ytr, yte = digits
    student = NetClassifier(MLP, dict(hidden=(16,)), epochs=6, lr=1e-2, device="cpu")
    for teacher in (TorchTeacher(cnn_teacher), cnn_teacher):
        cr = CREMBOClassifier(
            teacher, student, oracle="single", student_target="multioutput", n_thresholds=4, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # MEMO may find no consistent network
            cr.fit(Xtr, ytr)
        assert isinstance(cr.student_, NetClassifier)
        assert cr.student_.loss_.__class__.__name__ == "AllowedLabelLoss"
        sweep = [r for r in cr.trace_ if r["stage"] == "sweep"]
        ts = [r["threshold"] for r in sweep]
        assert ts == sorted(set(ts)), "sweep thresholds must be distinct and increasing"
        assert cr.threshold_ in ts
        acc = accuracy_score(yte, cr.predict(Xte))
        assert acc > 0.7, acc
        assert np.allclose(cr.predict_proba(Xte).sum(1), 1)
    # The reweighting oracle drives the same student through fit(X, y, sample_weight).
    cr = CREMBOClassifier(
        TorchTeacher(cnn_teacher), student, oracle="reweight", max_rounds=2, n_thresholds=2, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cr.fit(Xtr[:400], ytr[:400])
    assert cr.student_.loss_.__class__.__name__ == "CrossEntropyLoss"
    assert accuracy_score(yte, cr.predict(Xte)) > 0.6


def test_teacher_device_auto_is_the_modules_own_device():
    # "auto" (the default) keeps a given module where it is; None, the former
    # default, and the module's device named explicitly give the same belief.
    from crembo.nn.teachers import torch_beliefs

    torch.manual_seed(0)
    module = MLP(5, 3, hidden=(8,))
    X = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    P = torch_beliefs(module, X)
    for device in ("auto", None, "cpu", torch.device("cpu")):
        np.testing.assert_array_equal(torch_beliefs(module, X, device=device), P)
        teacher = TorchTeacher(module, device=device)
        np.testing.assert_array_equal(teacher.predict_proba(X), P)
        assert teacher.predict_logits(X).shape == (20, 3)
    assert TorchTeacher(module).device == "auto"
