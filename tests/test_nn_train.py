"""Trainer, models and network teachers on tiny problems."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from crembo.nn import (  # noqa: E402
    MLP,
    CrossEntropyLoss,
    LeNet,
    ResNet18,
    SmallCNN,
    TorchTeacher,
    Trainer,
    count_parameters,
    enable_mc_dropout,
    load_digits_images,
    predict_logits,
    torch_beliefs,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    tr, te = idx[:1300], idx[1300:]
    return X[tr], y[tr], X[te], y[te]


def _accuracy(module, X, y):
    return float((predict_logits(module, X).argmax(1).numpy() == y).mean())


@pytest.mark.parametrize(
    "make", [lambda: MLP(64, 10, hidden=(32,)), lambda: LeNet(64, 10, channels=(4, 8), hidden=(32,))]
)
def test_training_beats_chance_on_digits(digits, make):
    Xtr, ytr, Xte, yte = digits
    torch.manual_seed(0)
    net = make()
    res = Trainer(epochs=6, lr=1e-2, batch_size=64, seed=0, device="cpu").fit(
        net, CrossEntropyLoss(), dict(x=Xtr, y=ytr)
    )
    assert res.n_epochs == 6 and len(res.history) == 6
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert _accuracy(net, Xte, yte) > 0.8  # chance is 0.1


def test_trainer_is_seeded_and_leaves_global_rng_alone(digits):
    Xtr, ytr = digits[0][:300], digits[1][:300]
    nets = []
    for _ in range(2):
        torch.manual_seed(1)
        net = MLP(64, 10, hidden=(8,), dropout=0.2)
        state = torch.random.get_rng_state()
        Trainer(epochs=2, seed=7, device="cpu").fit(net, CrossEntropyLoss(), dict(x=Xtr, y=ytr))
        assert torch.equal(torch.random.get_rng_state(), state)
        nets.append(net)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


def test_early_stopping_restores_the_best_epoch(digits):
    Xtr, ytr, Xte, yte = digits
    torch.manual_seed(0)
    net = MLP(64, 10, hidden=(64,))
    # A huge constant learning rate makes validation loss bounce; the best weights are kept.
    tr = Trainer(epochs=30, lr=0.05, lr_schedule=None, early_stopping=True, patience=3, seed=0, device="cpu")
    res = tr.fit(net, CrossEntropyLoss(), dict(x=Xtr[:800], y=ytr[:800]), val_data=dict(x=Xte, y=yte))
    best = min(r["val_loss"] for r in res.history)
    assert res.history[res.best_epoch - 1]["val_loss"] == best
    assert tr.evaluate(
        net, CrossEntropyLoss(), {"x": torch.as_tensor(Xte), "y": torch.as_tensor(yte)}
    ) == pytest.approx(best, rel=1e-5)
    if res.stopped_early:
        assert res.n_epochs == res.best_epoch + 3
    with pytest.raises(ValueError, match="val_data"):
        Trainer(early_stopping=True).fit(net, CrossEntropyLoss(), dict(x=Xtr, y=ytr))


def test_trainer_options_and_errors(digits):
    Xtr, ytr = digits[0][:129], digits[1][:129]  # a last batch of one row is folded into the previous one
    net = SmallCNN(64, 10, width=4, head=8)
    for opt, sched in [("sgd", "step"), ("adamw", "onecycle"), ("adam", "constant")]:
        res = Trainer(epochs=2, optimizer=opt, lr_schedule=sched, lr=1e-2, device="cpu", seed=0, progress=True).fit(
            net, CrossEntropyLoss(), dict(x=Xtr, y=ytr)
        )
        assert np.isfinite(res.history[-1]["loss"])
    with pytest.raises(ValueError, match="needs"):
        Trainer(epochs=1).fit(net, CrossEntropyLoss(), dict(x=Xtr))
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer(lr_schedule="warm")
    with pytest.raises(FloatingPointError, match="epoch 1"):  # any callable loss; a NaN stops training
        Trainer(epochs=3, device="cpu").fit(
            MLP(64, 10, hidden=(8,)), lambda z, batch: z.sum() * float("nan"), dict(x=Xtr)
        )


def test_models_shapes():
    x = torch.randn(3, 3 * 32 * 32)
    lenet5 = LeNet(
        3 * 32 * 32, 10, input_shape=(3, 32, 32), channels=(6, 16), hidden=(120, 84), kernel_size=5, padding=0
    )
    assert lenet5(x).shape == (3, 10)
    assert count_parameters(lenet5) == 62006  # the classic LeNet-5 on CIFAR-10
    resnet = ResNet18(n_classes=10, width=8)
    assert resnet(x).shape == (3, 10)
    assert resnet(x.reshape(3, 3, 32, 32)).shape == (3, 10)
    assert count_parameters(ResNet18()) == 11173962  # ResNet-18 for CIFAR-10
    assert SmallCNN(64, 10)(torch.randn(2, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match="in_features"):
        LeNet(100, 10)
    with pytest.raises(ValueError, match="too small"):
        LeNet(64, 10, channels=(4, 4, 4, 4, 4), kernel_size=5, padding=0)


@pytest.fixture(scope="module")
def tiny_teacher(digits):
    Xtr, ytr = digits[0], digits[1]
    torch.manual_seed(0)
    net = SmallCNN(64, 10, width=8, head=32, dropout=0.3)
    Trainer(epochs=3, lr=3e-3, seed=0, device="cpu").fit(net, CrossEntropyLoss(), dict(x=Xtr, y=ytr))
    return net


def test_softmax_teacher(digits, tiny_teacher):
    X = digits[2][:50]
    P = torch_beliefs(tiny_teacher, X, batch_size=16)
    want = torch.softmax(predict_logits(tiny_teacher, X).double(), 1).numpy()
    assert P.shape == (50, 10) and np.allclose(P, want, atol=1e-6)
    assert np.allclose(P.sum(1), 1.0)
    t = TorchTeacher(tiny_teacher, classes=np.arange(10) * 3)
    assert np.allclose(t.predict_proba(X), P) and np.allclose(t(X), P)
    assert np.array_equal(t.predict(X), np.argmax(P, 1) * 3)
    assert np.allclose(t.predict_logits(X), predict_logits(tiny_teacher, X).numpy(), atol=1e-6)
    assert not tiny_teacher.training  # left as it was


def test_mc_dropout_teacher(digits, tiny_teacher):
    X = digits[2][:40]
    tiny_teacher.eval()
    P1 = torch_beliefs(tiny_teacher, X, method="mc_dropout", n_passes=8, seed=3)
    P2 = torch_beliefs(tiny_teacher, X, method="mc_dropout", n_passes=8, seed=3)
    P3 = torch_beliefs(tiny_teacher, X, method="mc_dropout", n_passes=8, seed=4)
    soft = torch_beliefs(tiny_teacher, X)
    assert np.array_equal(P1, P2) and not np.allclose(P1, P3)  # seeded, and really stochastic
    assert not np.allclose(P1, soft) and np.allclose(P1.sum(1), 1)
    V = torch_beliefs(tiny_teacher, X, method="mc_dropout", n_passes=8, vote="votes", seed=3)
    assert np.allclose(V * 8, np.round(V * 8))  # shares of 8 votes
    # Batch norm stays in evaluation mode during the passes.
    enable_mc_dropout(tiny_teacher)
    assert all(m.training == isinstance(m, nn.Dropout) for m in tiny_teacher.modules() if m is not tiny_teacher)
    tiny_teacher.eval()
    with pytest.raises(ValueError, match="no dropout"):
        torch_beliefs(MLP(64, 10), X, method="mc_dropout")


def test_ensemble_teacher(digits):
    X = digits[2][:30]
    torch.manual_seed(0)
    members = [MLP(64, 4, hidden=(8,)).eval() for _ in range(5)]
    probs = [torch.softmax(predict_logits(m, X).double(), 1).numpy() for m in members]
    P = torch_beliefs(members, X)
    assert np.allclose(P, np.mean(probs, axis=0))
    V = TorchTeacher(members, vote="votes").predict_proba(X)
    votes = np.stack([p.argmax(1) for p in probs], 1)
    want = np.stack([(votes == c).mean(1) for c in range(4)], 1)
    assert np.allclose(V, want)
    with pytest.raises(ValueError, match="ensemble"):
        torch_beliefs(members, X, method="softmax")
    with pytest.raises(TypeError):
        torch_beliefs([], X)
