"""``crembo.dask.CREMBOClassifier``: MEMO and CREMBO on a Dask cluster."""

from __future__ import annotations

import copy
import logging
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._validation import MAX_INT, Interval, Options, ParamsValidationMixin, seed_from
from ..compress.memo import MEMO_PARAMETERS, hopeless_rule
from ..compress.students import LEAF_VALUES
from ..compress.teachers import BELIEF_METHODS, teacher_classes, unwrap_teacher
from ..trees.hist import MAX_BINS, HistTreeClassifier, resolve_student
from . import _bins, _kernels as K
from ._tree import TreeFitter, _add, _sum_tree

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["CREMBOClassifier"]

log = logging.getLogger("crembo")

#: Bytes of worker memory per row a local (scikit-learn) student's fit may
#: take, as a multiple of the row's own bytes (copies, the student's work).
LOCAL_OVERHEAD = 8


def _is_dask_frame(X):
    try:
        import dask.dataframe as dd
    except ImportError:  # dask without its DataFrame part
        return False
    return isinstance(X, dd.DataFrame)


def _is_dask_series(y):
    try:
        import dask.dataframe as dd
    except ImportError:
        return False
    return isinstance(y, dd.Series)


def _is_dask_array(X):
    import dask.array as da

    return isinstance(X, da.Array)


def _check_chunks(a, name):
    if any(np.isnan(c) for c in a.chunks[0]):
        raise ValueError(
            f"{name}: the dask array has unknown chunk sizes (rows per partition); call "
            f"{name}.compute_chunk_sizes() first, or build it with to_dask_array(lengths=True)"
        )


def _as_arrays(X, y):
    """Dask ``X`` (array or DataFrame) and ``y`` (array or Series) as dask
    arrays with known, matching row chunks; plus the column names."""
    import dask.array as da

    names = None
    if _is_dask_frame(X):
        import pandas as pd

        bad = [
            c for c, t in X.dtypes.items() if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))
        ]
        if bad:
            raise ValueError(f"X: column {bad[0]!r} is not numeric; crembo.dask takes numeric columns only")
        names = np.asarray([str(c) for c in X.columns], dtype=object)
        if y is not None and (_is_dask_series(y) or _is_dask_frame(y)) and y.npartitions != X.npartitions:
            raise ValueError(
                f"X and y: X has {X.npartitions} partitions but y has {y.npartitions}; "
                "they must be partitioned alike (row i of X with row i of y)"
            )
        X = X.to_dask_array(lengths=True)
    elif isinstance(X, np.ndarray):
        X = da.from_array(X, chunks=(max(1, -(-len(X) // 2)), -1))
    elif not _is_dask_array(X):
        raise TypeError(f"X: expected a dask array or dask DataFrame, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array, got {X.ndim} dimension(s)")
    _check_chunks(X, "X")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X: expected numbers, got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if y is None:
        return X, None, names
    if _is_dask_series(y) or _is_dask_frame(y):
        if _is_dask_frame(y):
            if len(y.columns) != 1:
                raise ValueError("y: expected one column of labels")
            y = y[y.columns[0]]
        y = y.to_dask_array(lengths=True)
    elif isinstance(y, np.ndarray):
        if len(y) != X.shape[0]:
            raise ValueError(f"y: expected {X.shape[0]} labels (one per row of X), got {len(y)}")
        y = da.from_array(y, chunks=(X.chunks[0],))
    elif not _is_dask_array(y):
        raise TypeError(f"y: expected a dask array or dask Series, got {type(y).__name__}")
    _check_column(y, X, "y", "labels")
    return X, y, names


def _check_column(a, X, name, what):
    """``a`` (a dask array) is one column partitioned like ``X``."""
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of {what}, got {a.ndim} dimension(s)")
    _check_chunks(a, name)
    if tuple(a.chunks[0]) != tuple(X.chunks[0]):
        raise ValueError(
            f"X and {name}: their partitions do not match (rows per partition: X {list(X.chunks[0])[:6]}, "
            f"{name} {list(a.chunks[0])[:6]}); rechunk {name} like X, e.g. {name}.rechunk({{0: X.chunks[0]}})"
        )


def _as_weights(sample_weight, X):
    """``sample_weight`` as a dask array partitioned like ``X`` (None stays None)."""
    import dask.array as da

    if sample_weight is None:
        return None
    w = sample_weight
    if _is_dask_series(w):
        w = w.to_dask_array(lengths=True)
    elif isinstance(w, np.ndarray) or isinstance(w, (list, tuple)):
        w = np.asarray(w)
        if w.ndim != 1 or len(w) != X.shape[0]:
            raise ValueError(f"sample_weight: expected {X.shape[0]} weights (one per row of X), got shape {w.shape}")
        w = da.from_array(w, chunks=(X.chunks[0],))
    elif not _is_dask_array(w):
        raise TypeError(f"sample_weight: expected a dask array or dask Series, got {type(w).__name__}")
    _check_column(w, X, "sample_weight", "weights")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight: expected real numbers, got dtype {w.dtype}")
    return w


def _default_client(client):
    if client is not None:
        return client
    try:
        from distributed import default_client

        return default_client()
    except ValueError:
        raise ValueError(
            "crembo.dask needs a dask.distributed Client: start one (e.g. Client(LocalCluster())) or pass client=..."
        ) from None


class CREMBOClassifier(ParamsValidationMixin, ClassifierMixin, BaseEstimator):
    """MEMO and CREMBO on a Dask cluster, the data staying on the workers.

    The semantics are those of :class:`crembo.CREMBOClassifier` with one
    held-out validation split (``cv=None``) and no synthetic rows
    (``augment=0``): MEMO's binary search with the reweighting oracle, then
    the threshold sweep at and above MEMO's threshold, the student of best
    validation score kept. With the histogram tree student (the default)
    every step runs on the workers: beliefs per partition (the teacher sent
    once), thresholds, depth and violation counts as reductions, allowed
    labels per partition, and the tree itself data-parallel (histograms
    summed per level, splits chosen once, rows moved where they live). Any
    other scikit-learn student is fit on a subsample of the rows that one
    worker can hold (with a warning), its sweep's fits spread over the
    cluster by joblib's Dask backend.

    Parameters
    ----------
    teacher : fitted classifier or callable
        Sent to every worker once. A scikit-learn forest is counted by
        crembo's native vote counter.
    student : "tree:D", HistTreeClassifier or scikit-learn classifier, default="tree:4"
    mode : {"crembo", "memo"}
    max_rounds, eta, patience, probe_lowest, warm_start, adaptive_eta, search, delta
        MEMO's options, as in :class:`crembo.CREMBOClassifier`.
    validation_fraction : float, default=0.15
        Share of each partition's labelled rows held out to choose the
        threshold (drawn per partition from ``random_state``).
    n_thresholds : int or None, default=32
    scoring : {"accuracy", "balanced_accuracy"}
    selection : {"best", "one_se"}
    leaf_values : {"auto", "student", "belief"}
    belief : {"auto", "votes", "proba"}
    max_bins : int, default=255
        Value bins per feature of the tree student (its own ``max_bins``
        when it is a ``HistTreeClassifier``).
    sketch_size : int, default=2048
        Values each partition keeps per feature for the bin edges (exact
        when a partition has at most this many distinct values).
    max_local_rows : int or None
        Rows a scikit-learn student is fit on at most (None: what the
        smallest worker's memory limit allows).
    random_state : int, RandomState or None
    client : distributed.Client or None
        None: the default client.

    Attributes
    ----------
    student_, memo_student_, teacher_, classes_, n_features_in_,
    threshold_, memo_threshold_, memo_depth_, depth_, validation_score_,
    trace_, n_student_fits_, timings_, bins_ (``BinEdges`` of the tree
    student), n_transfer_, n_validation_
    """

    def __init__(
        self,
        teacher=None,
        student="tree:4",
        *,
        mode="crembo",
        max_rounds=8,
        eta=1.0,
        patience=0,
        probe_lowest=True,
        warm_start=True,
        adaptive_eta=True,
        search="binary",
        delta=0.0,
        validation_fraction=0.15,
        n_thresholds=32,
        scoring="accuracy",
        selection="best",
        leaf_values="auto",
        belief="auto",
        max_bins=MAX_BINS,
        sketch_size=2048,
        max_local_rows=None,
        random_state=None,
        client=None,
    ):
        self.teacher = teacher
        self.student = student
        self.mode = mode
        self.max_rounds = max_rounds
        self.eta = eta
        self.patience = patience
        self.probe_lowest = probe_lowest
        self.warm_start = warm_start
        self.adaptive_eta = adaptive_eta
        self.search = search
        self.delta = delta
        self.validation_fraction = validation_fraction
        self.n_thresholds = n_thresholds
        self.scoring = scoring
        self.selection = selection
        self.leaf_values = leaf_values
        self.belief = belief
        self.max_bins = max_bins
        self.sketch_size = sketch_size
        self.max_local_rows = max_local_rows
        self.random_state = random_state
        self.client = client

    def __getstate__(self):
        state = dict(self.__dict__)
        state["client"] = None  # a client does not pickle; the fitted model needs none
        state.pop("_client", None)
        return state

    # ---------------------------------------------------------------- checks
    #: The parameters, declared once (see :mod:`crembo._validation`); MEMO's
    #: are the in-memory estimator's.
    _parameter_constraints: dict = {
        "teacher": "no_validation",  # checked at fit (a fitted classifier or a callable)
        "student": "no_validation",  # resolved at fit
        "mode": [Options("crembo", "memo")],
        "max_rounds": MEMO_PARAMETERS["max_rounds"],
        "eta": MEMO_PARAMETERS["eta"],
        "patience": MEMO_PARAMETERS["patience"],
        "probe_lowest": MEMO_PARAMETERS["probe_lowest"],
        "warm_start": MEMO_PARAMETERS["warm_start"],
        "adaptive_eta": MEMO_PARAMETERS["adaptive_eta"],
        "search": MEMO_PARAMETERS["search"],
        "delta": MEMO_PARAMETERS["delta"],
        "validation_fraction": [Interval("real", 0.0, 1.0, closed="neither")],
        "n_thresholds": [None, Interval("integer", 1, MAX_INT)],
        "scoring": [Options("accuracy", "balanced_accuracy")],
        "selection": [Options("best", "one_se")],
        "leaf_values": [Options(*LEAF_VALUES)],
        "belief": [Options(*BELIEF_METHODS)],
        "sketch_size": [Interval("integer", 2, MAX_INT)],
        "max_local_rows": [None, Interval("integer", 2, MAX_INT)],
        "max_bins": [Interval("integer", 2, MAX_BINS)],
        "random_state": "no_validation",  # check_random_state at fit
        "client": "no_validation",  # a distributed.Client or None
    }

    def _check_params(self):
        self._validate_params()

    # ------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CREMBOClassifier:
        """Compress the teacher on dask ``X`` (array or DataFrame, numeric
        columns) and labels ``y`` (array or Series partitioned like ``X``;
        ``-1`` marks an unlabelled row unless the labels are {-1, 1}).
        ``sample_weight`` (array or Series partitioned like ``X``, finite and
        non-negative) weighs the rows as in :class:`crembo.CREMBOClassifier`:
        MEMO's starting weights, the student fits, the belief leaves and the
        validation score."""
        t_start = time.perf_counter()
        self._check_params()
        client = _default_client(self.client)
        X, y, names = _as_arrays(X, y)
        w = _as_weights(sample_weight, X)
        teacher = self.teacher
        if teacher is None or not (hasattr(teacher, "predict_proba") or callable(teacher)):
            raise TypeError(
                "teacher: crembo.dask needs a fitted teacher (a classifier with predict_proba, or a "
                f"callable returning probabilities), got {type(teacher).__name__}"
            )
        if hasattr(teacher, "fit") and hasattr(teacher, "get_params"):
            from .._validation import is_fitted

            if not is_fitted(unwrap_teacher(teacher)):
                raise TypeError("teacher: fit it first (crembo.dask does not fit teachers on dask data)")
        template = resolve_student(self.student)
        rng = check_random_state(self.random_state)
        seed = seed_from(rng)
        split_seed = int(rng.randint(np.iinfo(np.int32).max))
        timings = {}

        y_parts = client.compute(list(y.to_delayed().ravel()))
        infos = client.gather(client.map(K.label_info, y_parts, pure=False))
        labels = np.unique(np.concatenate([i["labels"] for i in infos]))
        unl_value = -1 if (-1 in labels and not np.array_equal(labels, [-1, 1])) else None
        y_classes = labels[labels != unl_value] if unl_value is not None else labels
        if y_classes.size < 2:
            raise ValueError(f"y: expected at least two classes, got {y_classes.size}")
        inner = unwrap_teacher(teacher)
        classes = teacher_classes(inner)
        classes = y_classes if classes is None else classes
        unknown = np.setdiff1d(y_classes, classes)
        if unknown.size:
            raise ValueError(
                f"y: labels {unknown[:5].tolist()} are not among the teacher's classes {classes[:10].tolist()}"
            )
        self.classes_ = classes
        self.n_features_in_ = int(X.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.teacher_ = teacher
        C = len(classes)
        # Sent once: a task holding the teacher, so a worker that is lost
        # gets it back by recomputation (scattered data would be gone).
        t_teacher = client.submit(K.identity, inner, pure=False)

        w_parts = None if w is None else list(w.to_delayed().ravel())
        if not isinstance(template, HistTreeClassifier):
            X_parts = client.compute(list(X.to_delayed().ravel()))
            w_parts = None if w_parts is None else client.compute(w_parts)
            return self._fit_local(
                client, template, X_parts, y_parts, w_parts, t_teacher, names, infos, unl_value, seed, t_start
            )

        # Per partition, in one task as the partition is read: its transfer
        # and validation rows, and the teacher's beliefs on the transfer
        # rows (the teacher was sent once). The partition itself is dropped
        # once its task is done; the student compares values as float32, so
        # the rows are kept so (half the memory, the same predictions).
        t0 = time.perf_counter()
        from dask import delayed

        frac = self.validation_fraction if self.mode == "crembo" else 0.0
        prep = delayed(K.prepare_partition, pure=False)
        prepared = client.compute(
            [
                prep(
                    xd,
                    yp,
                    t_teacher,
                    classes=classes,
                    unlabelled_value=unl_value,
                    val_fraction=frac,
                    seed=(split_seed + i) % (2**32),
                    method=self.belief,
                    names=names,
                    sample_weight=None if w_parts is None else w_parts[i],
                )
                for i, (xd, yp) in enumerate(zip(X.to_delayed().ravel(), y_parts))
            ]
        )
        X_tr = client.map(K.get, prepared, field="X_tr", pure=False)
        X_val = client.map(K.get, prepared, field="X_val", pure=False)
        y_val = client.map(K.get, prepared, field="y_val", pure=False)
        P = client.map(K.get, prepared, field="P", pure=False)
        del y_parts
        sizes = np.array(client.gather(client.map(K.n_rows, X_tr, pure=False)))
        n_val = int(sum(client.gather(client.map(K.n_rows, y_val, pure=False))))
        W = W_val = None
        if w_parts is not None:
            W = client.map(K.get, prepared, field="w_tr", pure=False)
            W_val = client.map(K.get, prepared, field="w_val", pure=False)
            total = sum(client.gather(client.map(K.weight_sum, W + W_val, pure=False)))
            if not total > 0:
                raise ValueError("sample_weight: every weight is zero; expected at least one positive weight")
            # Mean weight one over every row, as in memory.
            factor = float(sizes.sum() + n_val) / total
            W = client.map(K.scale, W, factor=factor, pure=False)
            W_val = client.map(K.scale, W_val, factor=factor, pure=False)
        del prepared
        n = int(sizes.sum())
        if n < 2:
            raise ValueError(f"X: {n} transfer rows; at least 2 are needed")
        if self.mode == "crembo" and n_val == 0:
            raise ValueError("validation_fraction leaves no validation rows; use more data or mode='memo'")
        self.n_transfer_, self.n_validation_ = n, n_val
        timings["beliefs"] = time.perf_counter() - t0

        # Bins: a mergeable sketch, then codes and each bin's value range where the rows live.
        t0 = time.perf_counter()
        max_bins = int(template.max_bins)
        sk = _sum_tree(
            client, client.map(_bins.sketch, X_tr, sketch_size=int(self.sketch_size), pure=False), _bins.merge_sketches
        )
        edges = _bins.edges_from_sketch(sk, max_bins)
        coded = client.map(_bins.code_partition, X_tr, edges=edges, pure=False)
        codes = client.map(K.get, coded, field=0, pure=False)
        lohi = _sum_tree(client, client.map(_lohi, coded, pure=False), _bins.merge_lohi)
        del coded
        self.bins_ = bins = _bins.BinEdges(edges, lohi[0], lohi[1], max_bins)
        timings["bins"] = time.perf_counter() - t0

        self._client = client
        self._parts = dict(X=X_tr, P=P, X_val=X_val, y_val=y_val, W=W, W_val=W_val, n=n, n_val=n_val)
        self._fitter = TreeFitter(client, template, bins, codes, C)
        try:
            self._search(timings)
        finally:
            for k in ("_client", "_parts", "_fitter"):
                self.__dict__.pop(k, None)
        timings["total"] = time.perf_counter() - t_start
        self.timings_ = timings
        return self

    # -------------------------------------------------- distributed pieces
    def _map(self, fn, *iterables, **kw):
        return self._client.map(fn, *iterables, pure=False, **kw)

    def _sum(self, futures, add=_add):
        return _sum_tree(self._client, futures, add)

    def _fit(self, targets, weights=None):
        return self._fitter.fit(targets, weights)

    def _predict(self, est, which="X"):
        parts = self._parts[which]
        return self._map(K.predict_index, [est] * len(parts), parts, lookup=np.asarray(est.classes_))

    def _violations(self, pred, t):
        return int(self._sum(self._map(K.count_violations, self._parts["P"], pred, t=t)))

    def _depth(self, pred, delta=0.0):
        """Empirical depth: the smallest belief in the predicted labels, or
        the k-th smallest with ``delta`` (a reduction)."""
        k = int(np.floor(delta * self._parts["n"]))
        if k == 0:
            return float(min(self._client.gather(self._map(K.depth_min, self._parts["P"], pred))))
        parts = self._client.gather(self._map(K.depth_smallest, self._parts["P"], pred, k=k))
        return float(np.sort(np.concatenate(parts))[k])

    def _entries(self, lo, hi):
        return self._sum(self._map(K.entry_counts, self._parts["P"], lo=lo, hi=hi), _merge_pair)

    def _leaf_beliefs(self, est):
        """``set_leaf_beliefs`` with the sums reduced over the partitions."""
        est = copy.deepcopy(est)
        cols = np.asarray(est.classes_)
        parts = self._parts
        sums = self._sum(
            self._map(
                K.leaf_sums,
                [est] * len(parts["X"]),
                parts["X"],
                parts["P"],
                parts["W"] or [None] * len(parts["X"]),
                cols=cols,
            )
        )
        tree = est.tree_
        mass = sums.sum(axis=1)
        reached = mass > 0
        tree.value[reached, 0, :] = sums[reached] / mass[reached, None]
        tree.node_class[reached] = np.argmax(tree.value[reached, 0, :], axis=1)
        tree.__dict__.pop("_fast", None)
        return est

    def _score(self, est):
        parts = self._parts
        pred = self._predict(est, "X_val")
        weights = parts["W_val"] or [None] * len(pred)
        counts = self._sum(self._map(K.score_counts, pred, parts["y_val"], weights, n_classes=len(self.classes_)))
        correct, total = counts
        if self.scoring == "accuracy":
            return float(correct.sum() / total.sum())
        present = total > 0
        return float(np.mean(correct[present] / total[present]))

    def _oracle(self, t, base, prefer, feasibility=False):
        """The reweighting consistency oracle at ``t`` (``consistency_oracle``;
        ``feasibility``: the search's first probe, which gives up when hopeless)."""
        n, P = self._parts["n"], self._parts["P"]
        tolerated = int(np.floor(self.delta * n))
        te = self._map(K.allowed_targets, P, [t] * len(P), prefer or [None] * len(P))
        empty = int(sum(self._client.gather(self._map(_second, te))))
        res = dict(consistent=False, violations=empty, rounds=0, pred=None, weights=None, student=None)
        if empty > tolerated:
            return res
        targets = self._map(_first, te)
        if empty:
            targets = self._map(K.fill_empty_targets, targets, P)
        w = base
        grow, best_viol, stalled, first_viol = 1.0 + self.eta, n + 1, 0, 0
        hopeless_from, hopeless_count = hopeless_rule(n, self.max_rounds)
        for r in range(self.max_rounds):
            t0 = time.perf_counter()
            est = self._fit(targets, w)
            pred = self._predict(est)
            self._fit_seconds += time.perf_counter() - t0
            self._n_fits += 1
            res.update(rounds=r + 1, student=est, pred=pred)
            li = self._map(K.lock_in, P, targets, pred, t=t)
            targets = self._map(_first, li)
            viol = int(sum(self._client.gather(self._map(_second, li))))
            res["violations"] = viol
            if viol <= tolerated:
                res.update(consistent=True, weights=w)
                return res
            if r == 0:
                first_viol = viol
            if feasibility and r >= hopeless_from and viol >= first_viol and viol > hopeless_count:
                res["weights"] = w
                return res
            progress = viol < best_viol
            if progress:
                best_viol, stalled = viol, 0
            else:
                stalled += 1
                if self.patience > 0 and stalled >= self.patience:
                    res["weights"] = w
                    return res
            if self.adaptive_eta:
                grow = 1.0 + self.eta if progress else min(grow * (1.0 + self.eta), 1e6)
            w = self._map(K.grow_weights, P, pred, w or [None] * len(P), t=t, grow=grow)
            total = self._sum(self._map(K.weight_sum, w))
            if total > 0:
                w = self._map(K.scale, w, factor=float(n) / total)
        res["weights"] = w
        return res

    def _memo(self):
        """MEMO's search over the candidate thresholds (``memo_search``)."""
        n, P = self._parts["n"], self._parts["P"]
        k = min(int(np.floor(self.delta * n)), n - 1)
        if k == 0:
            ceiling = float(min(self._client.gather(self._map(K.row_max_min, P))))
        else:
            parts = self._client.gather(self._map(K.row_max_smallest, P, k=k))
            ceiling = float(np.sort(np.concatenate(parts))[k])
        cands = self._entries(0.0, ceiling)[0]
        trace = []
        best = dict(threshold=None, pred=None, student=None)
        carried = None
        k = len(cands)
        gallop = self.search == "gallop"
        # Binary search: [lo, hi]; galloping: the best index, the step, the
        # first failed index (docs/ALGORITHMS.md, section 2; level_search.hpp).
        lo, hi, best_idx, step, upper = 0, k - 1, -1, 1, k
        first = (gallop or bool(self.probe_lowest)) and k > 0
        prefer_best = False
        while True:
            if gallop:
                mid = 0 if best_idx < 0 else min(best_idx + step, upper - 1)
                if k == 0 or mid <= best_idx:
                    break
                first = best_idx < 0
            elif lo > hi:
                break
            else:
                mid = 0 if first else lo + (hi - lo) // 2
            secs0 = self._fit_seconds
            base = carried if carried is not None else self._parts["W"]
            r = self._oracle(float(cands[mid]), base, best["pred"] if prefer_best else None, feasibility=first)
            if self.warm_start and r["consistent"] and r["weights"] is not None:
                carried = r["weights"]
            trace.append(
                dict(
                    stage="memo",
                    threshold=float(cands[mid]),
                    consistent=r["consistent"],
                    violations=r["violations"],
                    rounds=r["rounds"],
                    validation_score=None,
                    fit_seconds=self._fit_seconds - secs0,
                )
            )
            if r["consistent"] and gallop:
                # The deepest candidate the student is consistent at.
                level = self._depth(r["pred"], self.delta)
                best_idx = max(mid, int(np.searchsorted(cands, level, side="right")) - 1)
                best = dict(threshold=float(cands[best_idx]), pred=r["pred"], student=r["student"])
                prefer_best = True
                step = k if step > k else 2 * step
            elif r["consistent"]:
                best = dict(threshold=float(cands[mid]), pred=r["pred"], student=r["student"])
                prefer_best = not first
                lo = mid + 1
            elif gallop:
                if best_idx < 0:
                    break
                upper = mid
                step = max(1, (upper - best_idx) // 2)
            else:
                hi = mid - 1
            first = False
        return best, trace

    def _fit_at(self, t, prefer):
        """A student on the allowed labels at ``t`` (rows without one left
        out), with belief leaves when asked: (student, violations, pred)."""
        P = self._parts["P"]
        te = self._map(K.allowed_targets, P, [t] * len(P), prefer or [None] * len(P))
        t0 = time.perf_counter()
        est = self._fit(self._map(_first, te), self._parts["W"])
        if self._leaf_mode == "belief":
            est = self._leaf_beliefs(est)
        pred = self._predict(est)
        self._fit_seconds += time.perf_counter() - t0
        self._n_fits += 1
        return est, self._violations(pred, t), pred

    def _search(self, timings):
        self._fit_seconds, self._n_fits = 0.0, 0
        self._leaf_mode = "belief" if self.leaf_values in ("auto", "belief") else "student"
        t0 = time.perf_counter()
        memo, trace = self._memo()
        timings["memo"] = time.perf_counter() - t0
        self.memo_threshold_ = memo["threshold"]
        self.memo_student_ = None if memo["student"] is None else self._labelled(memo["student"])
        self.memo_depth_ = None if memo["pred"] is None else self._depth(memo["pred"])
        memo_student, memo_pred = memo["student"], memo["pred"]
        if memo_student is None:
            warnings.warn(
                "MEMO found no consistent student at any threshold; the sweep starts from the smallest belief value",
                RuntimeWarning,
                stacklevel=3,
            )
        elif self._leaf_mode == "belief":
            memo_student = self._leaf_beliefs(memo_student)
            memo_pred = self._predict(memo_student)
        t0 = time.perf_counter()
        smallest = float(self._entries(0.0, 1.0)[0][0])
        student, score = None, None
        if self.mode == "memo":
            threshold = memo["threshold"] if memo_student is not None else smallest
            student, pred = memo_student, memo_pred
        else:
            lo = memo["threshold"] if memo["threshold"] is not None else smallest
            vals, cnts = self._entries(lo, 1.0)
            cands = vals if self.n_thresholds is None else K.budgeted_from_counts(vals, cnts, int(self.n_thresholds))
            # (student, threshold, score, None, violations, rounds): the
            # candidates' predictions are not kept (the chosen one's are
            # made again), so the workers hold one set at a time.
            results = []
            if memo_student is not None:
                results.append((memo_student, memo["threshold"], self._score(memo_student), None, 0, 0))
                cands = [t for t in cands if t > memo["threshold"]]
            for t in cands:
                est, viol, _ = self._fit_at(float(t), memo["pred"])
                results.append((est, float(t), self._score(est), None, viol, 1))
            trace += [
                dict(
                    stage="sweep",
                    threshold=t,
                    consistent=v == 0,
                    violations=v,
                    rounds=r,
                    validation_score=s,
                    fit_seconds=None,
                )
                for (_, t, s, _, v, r) in results
            ]
            best = _select([(t, s) for (_, t, s, *_r) in results], self.selection, self._parts["n_val"])
            student, threshold, score = results[best][0], results[best][1], results[best][2]
            pred = self._predict(student)
        timings["sweep"] = time.perf_counter() - t0
        if student is None:  # mode="memo" without a consistent student
            student, viol, pred = self._fit_at(threshold, None)
            trace.append(
                dict(
                    stage="refit",
                    threshold=threshold,
                    consistent=viol == 0,
                    violations=viol,
                    rounds=1,
                    validation_score=None,
                    fit_seconds=None,
                )
            )
        self.student_ = self._labelled(student)
        self.threshold_ = float(threshold)
        self.validation_score_ = score
        self.depth_ = self._depth(pred)
        self.trace_ = trace
        self.n_student_fits_ = int(self._n_fits)
        timings["student_fits"] = self._fit_seconds

    def _labelled(self, est):
        """A fitted tree whose classes are label indices, with real labels."""
        out = copy.deepcopy(est)
        out.classes_ = self.classes_[np.asarray(est.classes_, dtype=np.int64)]
        return out

    # ------------------------------------------- scikit-learn students
    def _fit_local(
        self, client, template, X_parts, y_parts, w_parts, t_teacher, names, infos, unl_value, seed, t_start
    ):
        """A scikit-learn student: the in-memory estimator on a subsample of
        the rows one worker can hold; the sweep's fits on the cluster."""
        import joblib

        from ..compress.estimators import CREMBOClassifier as LocalCREMBO

        n_all = int(sum(i["n"] for i in infos))
        C = len(self.classes_)
        row_bytes = 8 * (self.n_features_in_ + C + 1)
        budget = self.max_local_rows
        if budget is None:
            limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
            limits = [m for m in limits if m > 0]
            budget = max(2, int(min(limits) / (LOCAL_OVERHEAD * row_bytes))) if limits else n_all
        P_parts = client.map(
            K.beliefs, [t_teacher] * len(X_parts), X_parts, method=self.belief, n_classes=C, names=names, pure=False
        )
        if n_all > budget:
            warnings.warn(
                f"crembo.dask: the student {type(template).__name__} is fit in one process; using a random "
                f"subsample of {budget} of the {n_all} rows (max_local_rows)",
                UserWarning,
                stacklevel=3,
            )
            p = budget / n_all
            parts = [
                client.submit(
                    K.sample_rows,
                    [xp, yp, pp] + ([] if w_parts is None else [w_parts[i]]),
                    p,
                    (seed or 0) + i,
                    pure=False,
                )
                for i, (xp, yp, pp) in enumerate(zip(X_parts, y_parts, P_parts))
            ]
            X_parts = client.map(_first, parts, pure=False)
            y_parts = client.map(_second, parts, pure=False)
            P_parts = client.map(_third, parts, pure=False)
            if w_parts is not None:
                w_parts = client.map(_fourth, parts, pure=False)
        Xs = np.concatenate(client.gather(X_parts))
        ys = np.concatenate(client.gather(y_parts))
        Ps = np.concatenate(client.gather(P_parts))
        ws = None if w_parts is None else np.concatenate(client.gather(w_parts))
        if unl_value is not None:
            ys = np.where(ys == unl_value, -1, ys)
        local = LocalCREMBO(
            teacher=Ps,
            student=template,
            mode=self.mode,
            max_rounds=self.max_rounds,
            eta=self.eta,
            patience=self.patience,
            probe_lowest=self.probe_lowest,
            warm_start=self.warm_start,
            adaptive_eta=self.adaptive_eta,
            search=self.search,
            delta=self.delta,
            validation_fraction=self.validation_fraction,
            cv=None,
            n_thresholds=self.n_thresholds,
            scoring=self.scoring,
            selection=self.selection,
            leaf_values=self.leaf_values,
            augment=0.0,
            n_jobs=-1,
            random_state=seed,
        )
        with joblib.parallel_config(backend="dask"):
            local.fit(Xs, ys, sample_weight=ws)
        for attr in (
            "student_",
            "memo_student_",
            "threshold_",
            "memo_threshold_",
            "memo_depth_",
            "depth_",
            "validation_score_",
            "trace_",
            "n_student_fits_",
            "timings_",
        ):
            setattr(self, attr, getattr(local, attr))
        self.n_transfer_ = len(Xs)
        self.timings_ = dict(self.timings_, total=time.perf_counter() - t_start)
        return self

    # --------------------------------------------------------------- predict
    def _local_X(self, X):
        from sklearn.utils.validation import validate_data

        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")

    def _map_blocks(self, X, fn, *args, proba=False):
        import dask.array as da

        Xd, _, _ = _as_arrays(X, None) if not _is_dask_frame(X) else (X.to_dask_array(), None, None)
        if Xd.ndim != 2 or Xd.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xd.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_}"
            )
        if len(Xd.chunks[1]) > 1:
            Xd = Xd.rechunk({1: -1})
        if proba:
            return da.map_blocks(
                fn, self.student_, Xd, *args, chunks=(Xd.chunks[0], (len(self.classes_),)), dtype=np.float64
            )
        return da.map_blocks(fn, self.student_, Xd, *args, drop_axis=1, dtype=self.classes_.dtype)

    def predict(self, X: Any) -> np.ndarray | da.Array:
        """Labels of ``X``: a NumPy array for NumPy (or pandas) input, a lazy
        dask array for a dask array or DataFrame (computed on the workers)."""
        check_is_fitted(self, "student_")
        if _is_dask_array(X) or _is_dask_frame(X):
            return self._map_blocks(X, K.predict_labels)
        return np.asarray(self.student_.predict(self._local_X(X)))

    def predict_proba(self, X: Any) -> np.ndarray | da.Array:
        """Class probabilities of the student (columns follow ``classes_``)."""
        check_is_fitted(self, "student_")
        if _is_dask_array(X) or _is_dask_frame(X):
            return self._map_blocks(X, K.predict_proba, self.classes_, proba=True)
        return K.predict_proba(self.student_, self._local_X(X), self.classes_)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _third(t):
    return t[2]


def _fourth(t):
    return t[3]


def _lohi(coded):
    return coded[1], coded[2]


def _merge_pair(a, b):
    return K.merge_counts([a, b])


def _select(cands, selection, n_val):
    """``CREMBOClassifier._select`` on (threshold, score) pairs."""
    best = max(range(len(cands)), key=lambda k: (cands[k][1], -cands[k][0]))
    if selection == "one_se":
        top = cands[best][1]
        floor = top - np.sqrt(max(top * (1.0 - top), 0.0) / max(n_val, 1))
        best = min((k for k in range(len(cands)) if cands[k][1] >= floor - 1e-12), key=lambda k: cands[k][0])
    return best
