"""Losses of the network students: KD, the allowed-label loss, the noisy teacher."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from crembo.nn import losses as L  # noqa: E402


def _logits(n=32, C=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=g, dtype=torch.float64) * scale


def test_kd_t1_alpha1_is_cross_entropy_to_teacher_probabilities():
    zs = _logits(seed=1).requires_grad_(True)
    zt = _logits(seed=2)
    q = torch.softmax(zt, dim=1)
    kd = L.kd_loss(zs, zt, temperature=1.0, alpha=1.0)
    ce = L.soft_cross_entropy(zs, q)
    entropy = -(q * torch.log(q)).sum(dim=1).mean()
    # KL(q || p) = CE(q, p) - H(q): equal up to the teacher's entropy, a constant ...
    assert torch.allclose(kd, ce - entropy, atol=1e-12)
    # ... so the student sees exactly the same gradients.
    (g_kd,) = torch.autograd.grad(kd, zs)
    (g_ce,) = torch.autograd.grad(L.soft_cross_entropy(zs, q), zs)
    assert torch.allclose(g_kd, g_ce, atol=1e-12)
    # And the soft cross-entropy is the usual one with one-hot targets.
    y = torch.randint(0, 5, (32,))
    assert torch.allclose(L.soft_cross_entropy(zs, F.one_hot(y, 5).double()), F.cross_entropy(zs, y))


def test_kd_mixes_soft_and_hard_terms_and_scales_by_t_squared():
    zs, zt = _logits(seed=3), _logits(seed=4)
    y = torch.randint(0, 5, (32,), generator=torch.Generator().manual_seed(0))
    T, a = 3.0, 0.7
    q = torch.softmax(zt / T, 1)
    kl = (q * (torch.log(q) - torch.log_softmax(zs / T, 1))).sum(1).mean()
    want = a * T * T * kl + (1 - a) * F.cross_entropy(zs, y)
    assert torch.allclose(L.kd_loss(zs, zt, y, temperature=T, alpha=a), want, atol=1e-12)
    # Unlabelled rows (y = -1) only get the soft term.
    y2 = y.clone()
    y2[:10] = -1
    want2 = a * T * T * kl + (1 - a) * F.cross_entropy(zs[10:], y[10:])
    assert torch.allclose(L.kd_loss(zs, zt, y2, temperature=T, alpha=a), want2, atol=1e-12)
    with pytest.raises(ValueError, match="needs the true labels"):
        L.kd_loss(zs, zt, None, alpha=0.5)


def test_allowed_label_loss_near_zero_for_confident_exact_student():
    g = torch.Generator().manual_seed(5)
    allowed = torch.rand(64, 6, generator=g) < 0.4
    allowed[torch.arange(64), torch.randint(0, 6, (64,), generator=g)] = True  # every row allows a label
    big = 30.0
    z = torch.where(allowed, big, -big).double()
    assert float(L.allowed_label_loss(z, allowed)) < 1e-10
    # A student that is confidently wrong pays a lot, and the loss is the summed per-class BCE.
    z_wrong = -z
    assert float(L.allowed_label_loss(z_wrong, allowed)) > big
    zr = _logits(64, 6, seed=6)
    want = F.binary_cross_entropy_with_logits(zr, allowed.double(), reduction="sum") / 64
    assert torch.allclose(L.allowed_label_loss(zr, allowed), want)
    # The loss object at a threshold reads the allowed labels off the beliefs.
    P = torch.softmax(_logits(64, 6, seed=7), 1)
    obj = L.AllowedLabelLoss(threshold=0.2)
    assert torch.allclose(obj(zr, {"beliefs": P}), L.allowed_label_loss(zr, P >= 0.2))


def test_weighted_reduction():
    zs = _logits(8, 3, seed=8)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    w = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 3.0, 1.0], dtype=torch.float64)
    per = F.cross_entropy(zs, y, reduction="none")
    got = L.CrossEntropyLoss()(zs, {"y": y, "weight": w})
    assert torch.allclose(got, (per * w).sum() / w.sum())
    # Integer weights equal repeating rows.
    rep = torch.repeat_interleave(torch.arange(8), w.long())
    assert torch.allclose(got, F.cross_entropy(zs[rep], y[rep]))


def test_noisy_teacher_with_zero_sigma_is_logit_regression():
    zs = _logits(seed=9).requires_grad_(True)
    zt = _logits(seed=10)
    plain = L.logit_regression_loss(zs, zt)
    assert torch.allclose(plain, 0.5 * ((zs - zt) ** 2).sum(1).mean())
    for fraction in (0.0, 0.5, 1.0):
        noisy = L.noisy_teacher_loss(
            zs, zt, sigma=0.0, fraction=fraction, mode="l2", generator=torch.Generator().manual_seed(0)
        )
        assert torch.equal(noisy, plain)
    obj = L.NoisyTeacherLoss(sigma=0.0, fraction=1.0)
    assert torch.equal(obj(zs, {"teacher_logits": zt}), plain)


def test_perturb_logits_touches_the_requested_fraction():
    zt = _logits(200, 4, seed=11) + 5.0  # no zero logits
    g = torch.Generator().manual_seed(1)
    out = L.perturb_logits(zt, sigma=0.3, fraction=0.25, generator=g)
    changed = (out != zt).any(dim=1)
    assert int(changed.sum()) == 50
    ratio = (out[changed] / zt[changed]) - 1.0  # the xi of the paper, ~ N(0, 0.3^2)
    assert abs(float(ratio.mean())) < 0.05
    assert 0.25 < float(ratio.std()) < 0.35
    assert torch.equal(out[~changed], zt[~changed])
    # Seeded: the same generator state gives the same noise.
    again = L.perturb_logits(zt, sigma=0.3, fraction=0.25, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    # mode="kd" is KD on the perturbed logits; sigma=0 gives KD itself.
    zs = _logits(200, 4, seed=12)
    y = torch.randint(0, 4, (200,))
    assert torch.allclose(
        L.noisy_teacher_loss(zs, zt, y, sigma=0.0, mode="kd", temperature=2.0, alpha=0.5),
        L.kd_loss(zs, zt, y, temperature=2.0, alpha=0.5),
    )


def test_noisy_loss_validates_arguments():
    with pytest.raises(ValueError, match="mode"):
        L.NoisyTeacherLoss(mode="l1")
    with pytest.raises(ValueError, match="fraction"):
        L.NoisyTeacherLoss(fraction=1.5)
    with pytest.raises(ValueError, match="sigma"):
        L.NoisyTeacherLoss(sigma=-1)


def test_logits_from_proba_round_trip():
    P = torch.softmax(_logits(10, 4, seed=13), 1)
    z = L.logits_from_proba(P)
    assert torch.allclose(torch.softmax(z, 1), P, atol=1e-12)
    assert torch.allclose(z.mean(1), torch.zeros(10, dtype=z.dtype), atol=1e-12)
    assert np.isfinite(L.logits_from_proba(torch.tensor([[1.0, 0.0]])).numpy()).all()
