"""crembo.dask on a real distributed.LocalCluster (two worker processes)."""

import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from crembo import CREMBOClassifier as LocalCREMBO  # noqa: E402
from crembo.dask import BinEdges, CREMBOClassifier  # noqa: E402
from crembo.dask import _bins  # noqa: E402
from crembo.dask._tree import TreeFitter  # noqa: E402
from crembo.trees.hist import HistTreeClassifier, tree_student  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=50
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _data(n=1500, d=4, seed=0, decimals=2):
    """Features with at most 101 distinct values (so the in-memory and the
    distributed binning are both exact and agree) and a fitted teacher."""
    rng = np.random.RandomState(seed)
    X = np.round(rng.rand(n, d), decimals)
    y = (X[:, 0] > 0.5).astype(int) + (X[:, 2] > 0.7).astype(int)
    flip = rng.rand(n) < 0.05
    y[flip] = rng.randint(0, 3, flip.sum())
    teacher = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(X, y)
    return X, y, teacher


def _same_tree(a, b):
    ta, tb = a.tree_, b.tree_
    for name in ("children_left", "children_right", "feature", "split_bin", "missing_go_to_left", "n_node_samples"):
        np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name), err_msg=name)
    np.testing.assert_array_equal(ta.threshold, tb.threshold)
    # Sums taken in another order: equal to rounding.
    np.testing.assert_allclose(ta.value, tb.value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ta.weighted_n_node_samples, tb.weighted_n_node_samples, rtol=1e-12)
    np.testing.assert_allclose(ta.impurity, tb.impurity, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ta.node_class, tb.node_class)


def _fitter(client, X, template, chunk, n_classes):
    Xd = da.from_array(X, chunks=(chunk, X.shape[1]))
    parts = client.compute(list(Xd.to_delayed().ravel()))
    sk = client.submit(_bins.sketch, parts[0], 64).result()
    for p in parts[1:]:
        sk = _bins.merge_sketches(sk, client.submit(_bins.sketch, p, 64).result())
    edges = _bins.edges_from_sketch(sk, template.max_bins)
    coded = [client.submit(_bins.code_partition, p, edges) for p in parts]
    lohi = [c.result()[1:] for c in coded]
    lo, hi = lohi[0]
    for a in lohi[1:]:
        lo, hi = _bins.merge_lohi((lo, hi), a)
    bins = BinEdges(edges, lo, hi, template.max_bins)
    codes = [client.submit(lambda c: c[0], c) for c in coded]
    return TreeFitter(client, template, bins, codes, n_classes), bins, Xd


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_tree_equals_in_memory_tree_on_the_same_bins(client, class_weight):
    # Continuous features and a sketch smaller than the data: the bins are
    # the sketch's, and the in-memory tree fits on those same bins.
    rng = np.random.RandomState(1)
    X = rng.rand(2400, 5)
    X[rng.rand(2400) < 0.05, 3] = np.nan
    y = (X[:, 0] * 3).astype(int) + (np.nan_to_num(X[:, 3]) > 0.5)
    w = rng.rand(2400) + 0.5
    template = HistTreeClassifier(max_depth=5, class_weight=class_weight, max_bins=32, min_samples_leaf=3)
    fitter, bins, Xd = _fitter(client, X, template, 800, 4)
    assert np.all(bins.n_bins == 32)
    targets = client.compute(list(da.from_array(y.astype(np.int32), chunks=800).to_delayed()))
    weights = client.compute(list(da.from_array(w, chunks=800).to_delayed()))
    dist = fitter.fit(targets, weights)
    local = HistTreeClassifier(**template.get_params()).fit(bins.binned(X), y, sample_weight=w)
    assert dist.tree_.node_count > 15
    _same_tree(dist, local)


def test_memo_equals_in_memory(client):
    X, y, teacher = _data()
    Xd, yd = da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500)
    est = CREMBOClassifier(teacher, "tree:3", mode="memo", random_state=0, client=client).fit(Xd, yd)
    ref = LocalCREMBO(teacher, tree_student(3), mode="memo", augment=0, cv=None, random_state=0).fit(X, y)
    assert est.memo_threshold_ == ref.memo_threshold_
    assert est.threshold_ == ref.threshold_
    assert est.depth_ == pytest.approx(ref.depth_)
    assert est.n_student_fits_ == ref.n_student_fits_
    assert [(r["threshold"], r["consistent"], r["violations"], r["rounds"]) for r in est.trace_] == [
        (r["threshold"], r["consistent"], r["violations"], r["rounds"]) for r in ref.trace_
    ]
    _same_tree(est.student_, ref.student_)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


@pytest.mark.parametrize("delta", [0.0, 0.02])
def test_gallop_memo_equals_in_memory(client, delta):
    X, y, teacher = _data(seed=6)
    Xd, yd = da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500)
    kw = dict(mode="memo", search="gallop", delta=delta, random_state=0)
    est = CREMBOClassifier(teacher, "tree:3", client=client, **kw).fit(Xd, yd)
    ref = LocalCREMBO(teacher, tree_student(3), augment=0, cv=None, **kw).fit(X, y)
    assert est.memo_threshold_ == ref.memo_threshold_ is not None
    assert est.n_student_fits_ == ref.n_student_fits_
    assert [(r["threshold"], r["consistent"], r["violations"], r["rounds"]) for r in est.trace_] == [
        (r["threshold"], r["consistent"], r["violations"], r["rounds"]) for r in ref.trace_
    ]
    _same_tree(est.student_, ref.student_)


def test_hopeless_first_probe_given_up_as_in_memory(client):
    # Labels unrelated to X: MEMO's first probe is hopeless and gives up
    # before max_rounds, on the cluster as in memory.
    rng = np.random.RandomState(2)
    X, y = np.round(rng.rand(3000, 4), 2), rng.randint(0, 6, 3000)
    teacher = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(X, y)
    Xd, yd = da.from_array(X, chunks=(1000, 4)), da.from_array(y, chunks=1000)
    with pytest.warns(RuntimeWarning, match="no consistent student"):
        est = CREMBOClassifier(teacher, "tree:3", mode="memo", random_state=0, client=client).fit(Xd, yd)
    with pytest.warns(RuntimeWarning, match="no consistent student"):
        ref = LocalCREMBO(teacher, tree_student(3), mode="memo", augment=0, cv=None, random_state=0).fit(X, y)
    assert ref.memo_threshold_ is None and ref.trace_[0]["rounds"] < ref.max_rounds
    assert est.memo_threshold_ is None and est.n_student_fits_ == ref.n_student_fits_
    assert [(r["threshold"], r["consistent"], r["violations"], r["rounds"]) for r in est.trace_] == [
        (r["threshold"], r["consistent"], r["violations"], r["rounds"]) for r in ref.trace_
    ]


def _dask_split(n, chunk, random_state=0, fraction=0.15):
    """The transfer and validation rows crembo.dask draws with
    ``random_state`` on ``n`` rows in partitions of ``chunk`` (labelled rows
    only): per partition, ``fraction`` of its rows from its own seed."""
    rng = np.random.RandomState(random_state)
    rng.randint(np.iinfo(np.int32).max)  # the student seed
    split_seed = int(rng.randint(np.iinfo(np.int32).max))
    val = np.zeros(n, dtype=bool)
    for i, lo in enumerate(range(0, n, chunk)):
        size = min(chunk, n - lo)
        r = np.random.RandomState(split_seed + i)
        val[lo + np.sort(r.permutation(np.arange(size))[: int(np.ceil(fraction * size))])] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


def test_crembo_equals_in_memory_on_the_same_split(client):
    X, y, teacher = _data(seed=2)
    Xd, yd = da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500)
    est = CREMBOClassifier(teacher, "tree:3", n_thresholds=6, random_state=0, client=client).fit(Xd, yd)
    # The in-memory estimator on the same transfer rows (in the same order)
    # and validation rows: the dask estimator's split, drawn per partition.
    fit_rows, val_rows = _dask_split(len(y), 500)
    assert est.n_validation_ == len(val_rows) and est.n_transfer_ == len(fit_rows)
    ref = LocalCREMBO(teacher, tree_student(3), augment=0, cv=None, n_thresholds=6, random_state=0)
    ref._split = lambda labels, rng: (fit_rows, val_rows)
    ref.fit(X, y)
    assert est.memo_threshold_ == ref.memo_threshold_
    assert est.threshold_ == ref.threshold_
    assert est.validation_score_ == ref.validation_score_
    assert [(r["stage"], r["threshold"], r["violations"], r["validation_score"]) for r in est.trace_] == [
        (r["stage"], r["threshold"], r["violations"], r["validation_score"]) for r in ref.trace_
    ]
    _same_tree(est.student_, ref.student_)
    assert est.depth_ == pytest.approx(ref.depth_)


def test_weighted_crembo_equals_in_memory_on_the_same_split(client):
    X, y, teacher = _data(seed=3)
    w = np.random.RandomState(3).choice([0.0, 0.5, 1.0, 3.0], size=len(y))
    Xd, yd = da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500)
    wd = da.from_array(w, chunks=500)
    est = CREMBOClassifier(teacher, "tree:3", n_thresholds=6, random_state=0, client=client)
    est.fit(Xd, yd, sample_weight=wd)
    fit_rows, val_rows = _dask_split(len(y), 500)
    ref = LocalCREMBO(teacher, tree_student(3), augment=0, cv=None, n_thresholds=6, random_state=0)
    ref._split = lambda labels, rng: (fit_rows, val_rows)
    ref.fit(X, y, sample_weight=w)
    assert est.memo_threshold_ == ref.memo_threshold_
    assert est.threshold_ == ref.threshold_
    assert est.validation_score_ == pytest.approx(ref.validation_score_, rel=1e-12)
    assert [(r["stage"], r["threshold"], r["violations"]) for r in est.trace_] == [
        (r["stage"], r["threshold"], r["violations"]) for r in ref.trace_
    ]
    np.testing.assert_allclose(
        [r["validation_score"] or 0 for r in est.trace_], [r["validation_score"] or 0 for r in ref.trace_], rtol=1e-12
    )
    _same_tree(est.student_, ref.student_)
    # The weights matter: unweighted, another fit.
    plain = CREMBOClassifier(teacher, "tree:3", n_thresholds=6, random_state=0, client=client).fit(Xd, yd)
    assert [r["validation_score"] for r in plain.trace_] != [r["validation_score"] for r in est.trace_]


def test_bad_sample_weight(client):
    X, y, teacher = _data(n=600)
    Xd, yd = da.from_array(X, chunks=(300, 4)), da.from_array(y, chunks=300)
    est = CREMBOClassifier(teacher, "tree:3", n_thresholds=4, random_state=0, client=client)
    with pytest.raises(ValueError, match="partitions do not match"):
        est.fit(Xd, yd, sample_weight=da.ones(600, chunks=200))
    with pytest.raises(ValueError, match="expected 600 weights"):
        est.fit(Xd, yd, sample_weight=np.ones(599))
    with pytest.raises(ValueError, match="non-negative"):
        est.fit(Xd, yd, sample_weight=da.from_array(-np.ones(600), chunks=300))
    with pytest.raises(ValueError, match="every weight is zero"):
        est.fit(Xd, yd, sample_weight=da.zeros(600, chunks=300))
    with pytest.raises(TypeError, match="sample_weight"):
        est.fit(Xd, yd, sample_weight="heavy")


def test_dataframe_input_pickle_and_predict(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y, _ = _data(n=900, seed=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    teacher = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, y)
    Xf = dd.from_pandas(frame, npartitions=3)
    yf = dd.from_pandas(pd.Series(y), npartitions=3)
    est = CREMBOClassifier(teacher, "tree:2", n_thresholds=3, random_state=0, client=client).fit(Xf, yf)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    clone = pickle.loads(pickle.dumps(est))
    assert clone.client is None
    local = clone.predict(frame)
    np.testing.assert_array_equal(local, est.student_.predict(X))
    lazy = clone.predict(Xf)
    np.testing.assert_array_equal(lazy.compute(), local)
    Xa = da.from_array(X, chunks=(300, 4))
    np.testing.assert_array_equal(clone.predict(Xa).compute(), local)
    proba = clone.predict_proba(Xa).compute()
    assert proba.shape == (900, 3)
    np.testing.assert_allclose(proba, clone.predict_proba(frame))


def test_unknown_chunks_and_mismatched_partitions(client):
    X, y, teacher = _data(n=300)
    est = CREMBOClassifier(teacher, client=client)
    Xd = da.from_array(X, chunks=(100, 4))
    unknown = Xd[Xd[:, 0] >= 0]  # boolean indexing: row counts unknown
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        est.fit(unknown, da.from_array(y, chunks=100))
    with pytest.raises(ValueError, match="partitions do not match"):
        est.fit(Xd, da.from_array(y, chunks=150))
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match="X has 3 partitions but y has 2"):
        est.fit(dd.from_pandas(pd.DataFrame(X), npartitions=3), dd.from_pandas(pd.Series(y), npartitions=2))
    with pytest.raises(TypeError, match="fitted teacher|fit it first"):
        CREMBOClassifier(RandomForestClassifier(), client=client).fit(Xd, da.from_array(y, chunks=100))


def test_sklearn_student_subsampled_with_a_warning(client):
    X, y, teacher = _data(n=1200, seed=4)
    Xd, yd = da.from_array(X, chunks=(400, 4)), da.from_array(y, chunks=400)
    est = CREMBOClassifier(
        teacher, DecisionTreeClassifier(max_depth=3), n_thresholds=4, max_local_rows=600, random_state=0, client=client
    )
    with pytest.warns(UserWarning, match="subsample"), distributed.get_task_stream(client) as stream:
        est.fit(Xd, yd)
    # The sweep's fits ran on the cluster, through joblib's Dask backend.
    assert any(str(r["key"]).startswith("batch_of_") for r in stream.data)
    assert isinstance(est.student_, DecisionTreeClassifier)
    assert 400 < est.n_transfer_ < 800
    assert est.predict(X).shape == (1200,)


def test_sklearn_student_takes_the_weights_along(client):
    X, y, teacher = _data(n=900, seed=5)
    w = np.where(y == 0, 5.0, 1.0)
    Xd, yd, wd = da.from_array(X, chunks=(300, 4)), da.from_array(y, chunks=300), da.from_array(w, chunks=300)
    kw = dict(n_thresholds=4, max_local_rows=600, random_state=0, client=client)
    with pytest.warns(UserWarning, match="subsample"):
        weighted = CREMBOClassifier(teacher, DecisionTreeClassifier(max_depth=2, random_state=0), **kw)
        weighted.fit(Xd, yd, sample_weight=wd)
    with pytest.warns(UserWarning, match="subsample"):
        plain = CREMBOClassifier(teacher, DecisionTreeClassifier(max_depth=2, random_state=0), **kw).fit(Xd, yd)
    # The same subsample (same seed), other weights: class 0 weighs more.
    assert weighted.n_transfer_ == plain.n_transfer_
    assert weighted.student_.tree_.weighted_n_node_samples[0] != plain.student_.tree_.weighted_n_node_samples[0]


def test_worker_killed_mid_fit_is_retried_or_reported(client):
    X, y, teacher = _data(n=1500, seed=5)
    Xd, yd = da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500)
    ref = CREMBOClassifier(teacher, "tree:3", mode="memo", random_state=0, client=client).fit(Xd, yd)
    out = {}

    def run():
        try:
            out["est"] = CREMBOClassifier(teacher, "tree:3", mode="memo", random_state=0, client=client).fit(Xd, yd)
        except Exception as exc:  # a clear error is an acceptable outcome
            out["error"] = exc

    th = threading.Thread(target=run, daemon=True)
    th.start()
    time.sleep(1.0)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    th.join(timeout=120)
    assert not th.is_alive(), "the fit hung after a worker was killed"
    if "error" in out:
        assert str(out["error"])
    else:
        assert out["est"].threshold_ == ref.threshold_
        _same_tree(out["est"].student_, ref.student_)
    client.wait_for_workers(2, timeout=60)
