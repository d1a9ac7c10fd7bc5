"""scikit-learn-style estimators around network students.

* :class:`NetClassifier` (alias ``TorchClassifier``): a network built from a
  module class (or factory) and keyword arguments, trained by
  :class:`~crembo.nn.train.Trainer`. ``fit(X, y, sample_weight)`` is the BM
  baseline (cross-entropy on the labels); ``fit_allowed(X, allowed,
  classes)`` is CREMBO's allowed-label loss, which makes it a student that
  :class:`crembo.CREMBOClassifier` drives with ``student_target="multioutput"``
  exactly as it drives trees; ``fit_with_loss`` takes any loss.
* :class:`KDClassifier`: distils a teacher into a ``NetClassifier`` student
  with Hinton KD or noisy-teacher distillation.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .._validation import (
    BOOLEAN,
    POSITIVE,
    VERBOSE,
    Interval,
    Options,
    ParamsValidationMixin,
    is_fitted,
    seed_from,
    seeded_clone,
)
from .losses import AllowedLabelLoss, CrossEntropyLoss, KDLoss, NoisyTeacherLoss, logits_from_proba
from .models import MLP
from .train import LR_SCHEDULES, OPTIMIZERS, Trainer, eval_mode, predict_logits, resolve_device

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["NetClassifier", "TorchClassifier", "KDClassifier", "teacher_logits", "KD_METHODS"]

KD_METHODS = ("kd", "noisy", "noisy_kd", "logits")


class NetClassifier(ParamsValidationMixin, ClassifierMixin, BaseEstimator):
    """A PyTorch network as a scikit-learn classifier.

    Parameters
    ----------
    module : class, callable, nn.Module or None, default=None
        A class or factory called as ``module(in_features=d, n_classes=C,
        **module_kwargs)`` (the models of :mod:`crembo.nn.models` take these),
        or a module instance, deep-copied at every fit (its weights are the
        starting point). None: :class:`~crembo.nn.models.MLP` with one hidden
        layer of 64 units.
    module_kwargs : dict or None
        Extra arguments of ``module``.
    epochs, batch_size, optimizer, lr, weight_decay, lr_schedule, patience, augment :
        Training settings, see :class:`~crembo.nn.train.Trainer`.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows, stop when their
        loss stops improving for ``patience`` epochs, keep the best weights.
    validation_fraction : float, default=0.1
    prior_init : bool, default=True
        Start the output layer's bias at the label prior: ``log`` of the class
        frequencies for cross-entropy, the log-odds of each class being
        allowed for ``fit_allowed`` (one sigmoid per class learns much faster
        from there, as in Lin et al.'s focal-loss initialization). Applies to
        networks built from a class or factory whose last ``nn.Linear`` has
        one output per class; a module instance keeps its weights.
    device : "auto", "cpu", "cuda" or torch.device, default="auto"
        crembo's one default: ``"auto"`` runs where the work lives best. The
        network is built here, so it trains on CUDA when PyTorch sees a GPU,
        else on the CPU (the nn teachers' ``"auto"`` keeps a given module
        where it is; the native kernels' ``"auto"`` is the CPU, where NumPy
        inputs live).
    random_state : int, RandomState or None
        Seeds the initial weights, shuffling, dropout and the validation split.
    verbose : int, default=0
        A progress bar over epochs when > 0.

    Attributes
    ----------
    module_ : nn.Module, the trained network (in evaluation mode)
    classes_ : ndarray of shape (C,)
    n_features_in_ : int
    history_ : list of dict, one per epoch (loss, val_loss, lr, seconds)
    n_epochs_ : int
    loss_ : the loss object it was trained with
    """

    def __init__(
        self,
        module=None,
        module_kwargs=None,
        *,
        epochs=30,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        lr_schedule="cosine",
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        prior_init=True,
        augment=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.module = module
        self.module_kwargs = module_kwargs
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.prior_init = prior_init
        self.augment = augment
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    #: The parameters, declared once (see :mod:`crembo._validation`); the
    #: module, augmentation and device are checked where they are resolved.
    _parameter_constraints: dict = {
        "module": "no_validation",
        "module_kwargs": [None, dict],
        "epochs": [Interval("integer", 1, None)],
        "batch_size": [Interval("integer", 1, None)],
        "optimizer": [Options(*OPTIMIZERS), "callable"],
        "lr": [POSITIVE],
        "weight_decay": [Interval("real", 0.0, np.inf, closed="left")],
        "lr_schedule": [Options(*(s for s in LR_SCHEDULES if s is not None)), None, "callable"],
        "early_stopping": BOOLEAN,
        "validation_fraction": [Interval("real_not_int", 0.0, 1.0, closed="neither")],
        "patience": [Interval("integer", 0, None)],
        "prior_init": BOOLEAN,
        "augment": "no_validation",
        "device": "no_validation",
        "random_state": "no_validation",
        "verbose": VERBOSE,
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------- building
    def _build(self, n_features, n_classes):
        kwargs = dict(self.module_kwargs or {})
        if isinstance(self.module, nn.Module):
            if kwargs:
                raise ValueError("module_kwargs: not used with a module instance; pass its class instead")
            return copy.deepcopy(self.module)
        factory = MLP if self.module is None else self.module
        if not callable(factory):
            raise TypeError(f"module: expected an nn.Module class, a factory or an instance, got {factory!r}")
        if self.module is None:
            kwargs.setdefault("hidden", (64,))
        net = factory(in_features=n_features, n_classes=n_classes, **kwargs)
        if not isinstance(net, nn.Module):
            raise TypeError(f"module: the factory returned {type(net).__name__}, expected an nn.Module")
        return net

    def _trainer(self, seed):
        return Trainer(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule,
            early_stopping=self.early_stopping,
            patience=self.patience,
            augment=self.augment,
            device=self.device,
            seed=seed,
            progress=bool(self.verbose),
            desc=type(self).__name__,
        )

    def _check_out_features(self, module, n_features, n_classes, device):
        with torch.no_grad(), eval_mode(module):
            out = module(torch.zeros((2, n_features), device=device))
        if out.dim() != 2 or out.shape[1] != n_classes:
            raise ValueError(
                f"module: outputs shape {tuple(out.shape)} for 2 rows, expected (2, {n_classes}) (one logit per class)"
            )

    def _set_output_bias(self, module, bias):
        """Set the bias of the last ``nn.Linear`` when it has one output per class."""
        last = [m for m in module.modules() if isinstance(m, nn.Linear)]
        if not last or last[-1].bias is None or last[-1].out_features != len(bias):
            return False
        with torch.no_grad():
            last[-1].bias.copy_(torch.as_tensor(bias, dtype=last[-1].bias.dtype))
        return True

    def _train(self, X, loss, classes, targets, bias_prior=None):
        """Build and train a fresh network; sets every fitted attribute."""
        self._validate_params()
        self.classes_ = np.asarray(classes)
        n, d = X.shape
        seed = seed_from(self.random_state)
        device = resolve_device(self.device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            module = self._build(d, len(self.classes_)).to(device)
        if self.prior_init and bias_prior is not None and not isinstance(self.module, nn.Module):
            self._set_output_bias(module, bias_prior)
        self._check_out_features(module, d, len(self.classes_), device)
        data = dict(x=X, **targets)
        val = None
        if self.early_stopping:
            rng = np.random.default_rng(seed)
            n_val = int(np.ceil(self.validation_fraction * n))
            if n - n_val < 1 or n_val < 1:
                raise ValueError(
                    f"early_stopping: {n} rows are too few for validation_fraction={self.validation_fraction}"
                )
            perm = rng.permutation(n)
            val_rows, fit_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            val = {k: np.asarray(v)[val_rows] for k, v in data.items()}
            data = {k: np.asarray(v)[fit_rows] for k, v in data.items()}
        result = self._trainer(seed).fit(module, loss, data, val)
        self.module_ = module
        self.history_ = result.history
        self.n_epochs_ = result.n_epochs
        self.loss_ = loss
        return self

    # ------------------------------------------------------------------- fit
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> NetClassifier:
        """Train on the labels with cross-entropy (the BM baseline).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_min_samples=1)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        targets = dict(y=y_idx.astype(np.int64))
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (len(X),):
                raise ValueError(f"sample_weight: expected shape ({len(X)},), got {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("sample_weight: expected finite non-negative weights")
            if w.sum() <= 0:
                raise ValueError("sample_weight: the weights sum to zero")
            targets["weight"] = w
        freq = np.bincount(y_idx, weights=targets.get("weight"), minlength=len(classes))
        freq = np.clip(freq / freq.sum(), 1e-4, None)
        return self._train(X, CrossEntropyLoss(), classes, targets, bias_prior=np.log(freq))

    def fit_allowed(self, X: ArrayLike, allowed: ArrayLike, classes: ArrayLike) -> NetClassifier:
        """Train on an allowed-label matrix with CREMBO's loss (one sigmoid per class, BCE).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        allowed : bool array of shape (n_samples, C)
            ``allowed[i, y]``: label ``classes[y]`` is allowed at ``X[i]``.
        classes : array-like of shape (C,)
            The labels ``predict`` will return.

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=1)
        allowed = np.asarray(allowed)
        classes = np.asarray(classes)
        if allowed.shape != (len(X), len(classes)):
            raise ValueError(
                f"allowed: expected shape ({len(X)}, {len(classes)}) (rows of X, classes), got {allowed.shape}"
            )
        allowed = allowed.astype(bool)
        rate = np.clip(allowed.mean(axis=0), 1e-4, 1 - 1e-4)
        return self._train(X, AllowedLabelLoss(), classes, dict(allowed=allowed), bias_prior=np.log(rate / (1 - rate)))

    def fit_with_loss(self, X: ArrayLike, loss: Any, *, classes: ArrayLike, **targets: ArrayLike) -> NetClassifier:
        """Train with any loss of :mod:`crembo.nn.losses` (or a callable ``loss(logits, batch)``).

        ``targets`` are the per-row arrays the loss needs (``y`` as indices
        into ``classes``, ``allowed``, ``beliefs``, ``teacher_logits``,
        ``weight``).
        """
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=1)
        for k, v in targets.items():
            if len(v) != len(X):
                raise ValueError(f"{k}: expected {len(X)} rows (one per row of X), got {len(v)}")
        return self._train(X, loss, classes, targets)

    # ------------------------------------------------------------- predict
    def predict_logits(self, X: ArrayLike) -> np.ndarray:
        """Logits ``(n, C)`` of the trained network (float64 array)."""
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return predict_logits(self.module_, X).double().numpy()

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Softmax of the logits, columns ordered as ``classes_``."""
        z = self.predict_logits(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Label of the largest logit."""
        z = self.predict_logits(X)
        return self.classes_[np.argmax(z, axis=1)]

    def __getstate__(self):
        state = self.__dict__.copy()
        if "module_" in state:  # pickle on the CPU so that a GPU-trained model loads anywhere
            state["module_"] = copy.deepcopy(state["module_"]).cpu()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if state.get("module_") is not None:
            try:
                dev = resolve_device(self.device)
            except (ValueError, RuntimeError):  # trained on a GPU, loaded where there is none
                dev = torch.device("cpu")
            self.module_.to(dev)


TorchClassifier = NetClassifier


def teacher_logits(teacher: Any, X: ArrayLike) -> np.ndarray:
    """Logits of a teacher on ``X``: ``predict_logits`` when it has it, else
    the row-centered log of its probabilities (``predict_proba`` or a callable)."""
    if callable(getattr(teacher, "predict_logits", None)):
        return np.asarray(teacher.predict_logits(X), dtype=np.float64)
    if hasattr(teacher, "predict_proba"):
        P = teacher.predict_proba(X)
    elif callable(teacher):
        P = teacher(X)
    else:
        raise TypeError(
            f"teacher: {type(teacher).__name__} has neither predict_logits nor predict_proba and is not callable"
        )
    return logits_from_proba(torch.as_tensor(np.asarray(P, dtype=np.float64))).numpy()


class KDClassifier(ParamsValidationMixin, ClassifierMixin, BaseEstimator):
    """Distil a teacher into a network student: Hinton KD or a noisy teacher.

    Parameters
    ----------
    teacher : classifier, TorchTeacher, callable or None
        A fitted classifier is used as it is; an unfitted one is cloned and
        fitted on ``(X, y)``; a callable maps ``X`` to probabilities. Logits
        come from ``predict_logits`` when the teacher has it (NetClassifier,
        TorchTeacher), else from the log of its probabilities. Default: an
        MLP NetClassifier with two hidden layers of 256 units.
    student : NetClassifier or None
        Cloned, never modified. Default: ``NetClassifier()`` (one hidden layer of 64 units).
    method : {"kd", "noisy", "noisy_kd", "logits"}, default="kd"
        "kd": Hinton's loss; "noisy": L2 regression of noisy teacher logits
        (Sau and Balasubramanian); "noisy_kd": KD on noisy teacher logits;
        "logits": plain L2 logit regression (Ba and Caruana).
    temperature : float, default=4.0
    alpha : float, default=0.9
        Weight of the soft term in KD (the rest goes to cross-entropy on ``y``).
    sigma : float, default=0.5
        Standard deviation of the multiplicative logit noise ``z (1 + xi)``.
    noise_fraction : float, default=0.5
        Fraction of each mini-batch whose teacher logits are perturbed (the
        noisy-teacher paper's alpha).
    random_state : int, RandomState or None
        Seeds the teacher fit and the student (when their own random_state is None).

    Attributes
    ----------
    teacher_, student_ (a fitted NetClassifier), classes_, n_features_in_
    """

    def __init__(
        self,
        teacher=None,
        student=None,
        *,
        method="kd",
        temperature=4.0,
        alpha=0.9,
        sigma=0.5,
        noise_fraction=0.5,
        random_state=None,
    ):
        self.teacher = teacher
        self.student = student
        self.method = method
        self.temperature = temperature
        self.alpha = alpha
        self.sigma = sigma
        self.noise_fraction = noise_fraction
        self.random_state = random_state

    #: The parameters, declared once (see :mod:`crembo._validation`).
    _parameter_constraints: dict = {
        "teacher": "no_validation",
        "student": "no_validation",
        "method": [Options(*KD_METHODS)],
        "temperature": [POSITIVE],
        "alpha": [Interval("real", 0.0, 1.0)],
        "sigma": [Interval("real", 0.0, np.inf, closed="left")],
        "noise_fraction": [Interval("real", 0.0, 1.0)],
        "random_state": "no_validation",
    }

    def _loss(self):
        self._validate_params()
        if self.method == "kd":
            return KDLoss(self.temperature, self.alpha)
        if self.method == "logits":
            return NoisyTeacherLoss(sigma=0.0, fraction=0.0, mode="l2")
        return NoisyTeacherLoss(
            sigma=self.sigma,
            fraction=self.noise_fraction,
            mode="l2" if self.method == "noisy" else "kd",
            temperature=self.temperature,
            alpha=self.alpha,
        )

    def fit(self, X: ArrayLike, y: ArrayLike, X_unlabeled: ArrayLike | None = None) -> KDClassifier:
        """Fit the teacher if needed, then the student on the teacher's logits of ``X`` and ``X_unlabeled``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Used for the teacher fit and KD's cross-entropy term.
        X_unlabeled : array-like of shape (m, n_features), optional
            Extra transfer rows; they get only the teacher term.

        Returns
        -------
        self
        """
        loss = self._loss()
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_min_samples=2)
        check_classification_targets(y)
        X_unl = X[:0] if X_unlabeled is None else validate_data(self, X_unlabeled, reset=False, dtype=np.float32)
        seed = seed_from(self.random_state)
        teacher = self.teacher
        if teacher is None:
            teacher = NetClassifier(MLP, dict(hidden=(256, 256)), epochs=40)
        if hasattr(teacher, "fit") and not is_fitted(teacher):
            teacher = seeded_clone(teacher, seed).fit(X, y)
        elif not (hasattr(teacher, "predict_proba") or hasattr(teacher, "predict_logits") or callable(teacher)):
            raise TypeError(
                f"teacher: expected a classifier, a TorchTeacher or a callable, got {type(teacher).__name__}"
            )
        self.teacher_ = teacher
        classes = getattr(teacher, "classes_", None)
        classes = np.unique(y) if classes is None else np.asarray(classes)
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(
                f"y: labels {unknown[:5].tolist()} are not among the teacher's classes {classes[:10].tolist()}"
            )
        X_all = np.concatenate([X, X_unl]) if len(X_unl) else X
        Z = teacher_logits(teacher, X_all)
        if Z.shape != (len(X_all), len(classes)):
            raise ValueError(f"teacher: logits of shape {Z.shape}, expected {(len(X_all), len(classes))}")
        y_idx = np.concatenate([np.searchsorted(classes, y), np.full(len(X_unl), -1)]).astype(np.int64)
        student = NetClassifier() if self.student is None else self.student
        if not hasattr(student, "fit_with_loss"):
            raise TypeError(f"student: expected a NetClassifier (with fit_with_loss), got {type(student).__name__}")
        self.student_ = seeded_clone(student, seed).fit_with_loss(
            X_all, loss, classes=classes, y=y_idx, teacher_logits=Z
        )
        self.classes_ = classes
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "student_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.student_.predict_proba(X)

    def predict(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "student_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.student_.predict(X)
