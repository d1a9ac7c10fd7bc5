"""The data-parallel histogram tree.

Each partition keeps its bin codes, its rows' targets and weights, and the
node each row sits in. A level of the tree costs one pass over the rows:
every partition builds the histograms of the level's open nodes (native,
``_core.hist_node_histograms``), the histograms are summed across the
partitions, and the splits are chosen once, from the sums, by the same
native split search as the in-memory ``HistTreeClassifier``
(``_core.hist_split_nodes``); then every partition moves its rows to their
children (and sums the children's totals). Nodes are grown level by level
and numbered at the end in the in-memory tree's order (preorder, left child
first), so on the same bins the tree is the in-memory one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from .. import _native
from ..trees.hist import HistTree, HistTreeClassifier, _int_param

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from distributed import Future

#: Open nodes whose histograms one task builds at once (bounds the memory
#: of a level's histograms: nodes x features x bins x (classes + 2) doubles).
NODE_BATCH = 64


# ------------------------------------------------------- partition kernels


def init_state(
    codes: np.ndarray, targets: np.ndarray, w: np.ndarray | None, lookup: np.ndarray, cw: np.ndarray | None
) -> dict[str, np.ndarray]:
    """A partition's fit state: compact labels (``lookup`` maps global label
    indices to the tree's classes), row weights ``w * cw[label]`` and every
    kept row at the root (node 0); rows without a target, or of zero weight,
    sit nowhere (-1)."""
    keep = targets >= 0
    lab = np.where(keep, lookup[np.where(keep, targets, 0)], -1).astype(np.int32)
    om = np.ones(len(targets)) if w is None else np.asarray(w, dtype=np.float64).copy()
    if cw is not None:
        om = om * cw[np.maximum(lab, 0)]
    om[~keep] = 0.0
    node = np.where(keep & (om > 0), 0, -1).astype(np.int32)
    return dict(labels=lab, omega=om, node=node)


def node_totals(state: Mapping[str, np.ndarray], n_nodes: int, n_classes: int) -> dict[str, Any]:
    """(W, rows, class mass) of each node over this partition's rows."""
    node, lab, om = state["node"], state["labels"], state["omega"]
    sel = node >= 0
    nd, lb, w = node[sel], lab[sel], om[sel]
    W = np.bincount(nd, weights=w, minlength=n_nodes)
    cnt = np.bincount(nd, minlength=n_nodes).astype(np.float64)
    ch = np.bincount(nd * n_classes + lb, weights=w, minlength=n_nodes * n_classes).reshape(n_nodes, n_classes)
    allow = np.bincount(nd * n_classes + lb, minlength=n_nodes * n_classes).reshape(n_nodes, n_classes)
    return dict(W=W, cnt=cnt, channel=ch, allow=allow.astype(np.float64), total=float(om.sum()))


def histograms(
    codes: np.ndarray,
    n_bins: np.ndarray,
    state: Mapping[str, np.ndarray],
    slot_of_node: np.ndarray,
    n_slots: int,
    n_classes: int,
) -> np.ndarray:
    """Histograms of the nodes ``slot_of_node`` maps to a slot (the others
    are skipped): ``(n_slots, sum_j (n_bins[j] + 1) * (n_classes + 2))``."""
    slot = slot_of_node[np.maximum(state["node"], 0)]
    slot = np.where(state["node"] >= 0, slot, -1).astype(np.int32)
    return _native.hist_node_histograms(codes, n_bins, slot, n_slots, state["labels"], state["omega"], n_classes)


def route(
    codes: np.ndarray, state: Mapping[str, np.ndarray], table: np.ndarray, n_next: int, n_classes: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Moves each row to its child: ``table`` holds, per node of this level,
    (split?, feature, bin, missing_left, left id, right id) with ids of the
    next level; rows of leaves leave the fit (-1). Returns the new state and
    the next level's node totals."""
    node = state["node"]
    sel = np.flatnonzero(node >= 0)
    new = np.full(len(node), -1, dtype=np.int32)
    if sel.size:
        nd = node[sel]
        split = table[nd, 0] > 0
        rows, nd = sel[split], nd[split]
        if rows.size:
            f = table[nd, 1]
            code = codes[f, rows].astype(np.int64)
            missing = code == np.asarray(_n_bins_of(table, nd))
            left = np.where(missing, table[nd, 3] > 0, code <= table[nd, 2])
            new[rows] = np.where(left, table[nd, 4], table[nd, 5])
    out = dict(state)
    out["node"] = new
    return out, node_totals(out, n_next, n_classes)


def _n_bins_of(table, nd):
    return table[nd, 6]


# ----------------------------------------------------------- the learner


def _sum_tree(client, futures, add):
    """The sum of the partitions' answers, added up on a worker (one small
    result comes back to the client)."""
    futures = list(futures)
    if len(futures) == 1:
        return futures[0].result()
    return client.submit(_sum_all, add, futures, pure=False).result()


def _sum_all(add, parts):
    total = parts[0]
    for p in parts[1:]:
        total = add(total, p)
    return total


def _add_dicts(a, b):
    return {k: a[k] + b[k] for k in a}


def _add(a, b):
    return a + b


class TreeFitter:
    """Fits ``HistTreeClassifier`` students on partitioned, binned rows.

    ``template`` is a ``HistTreeClassifier`` (its parameters are used;
    ``max_leaf_nodes`` and categorical features are not supported here).
    """

    def __init__(self, client, template, bins, codes, n_classes_global):
        if not isinstance(template, HistTreeClassifier):
            raise TypeError("the distributed tree needs a HistTreeClassifier student")
        if template.max_leaf_nodes is not None:
            raise ValueError("max_leaf_nodes: the distributed tree grows level by level; leave it None")
        self.client = client
        self.template = template
        self.opts = template._check_params()
        if template.class_weight is not None and not (
            isinstance(template.class_weight, str) and template.class_weight == "balanced"
        ):
            raise ValueError("class_weight: the distributed tree supports None or 'balanced'")
        _int_param(template.max_bins, "max_bins", 2)
        self.bins = bins
        self.codes = codes  # futures, one per partition (d x n_p uint8)
        self.C_global = int(n_classes_global)

    def fit(self, targets: Sequence[Future], weights: Sequence[Future] | None = None) -> HistTreeClassifier:
        """A tree fit on label indices ``targets`` (futures; -1: no target)
        weighted by ``weights`` (futures or None) -- the in-memory
        ``StudentTrainer.fit_labels``: rows without a target are left out,
        equal weights are no weights, the tree's classes are the labels
        present."""
        client = self.client
        Cg = self.C_global
        stats = [
            client.submit(_target_stats, t, w, Cg, pure=False)
            for t, w in zip(targets, weights or [None] * len(targets))
        ]
        st = _sum_tree(client, stats, _add_stats)
        counts = st["counts"]
        if counts.sum() == 0:
            raise ValueError("student: no point has an allowed label at this threshold; nothing to fit")
        equal = weights is None or st["wmin"] == st["wmax"]
        present = np.flatnonzero(counts > 0)
        C = len(present)
        lookup = np.full(Cg, -1, dtype=np.int64)
        lookup[present] = np.arange(C)
        cw = None
        if self.template.class_weight is not None:  # "balanced" over the kept rows
            c = counts[present].astype(np.float64)
            cw = c.sum() / (C * c)
        ws = [None] * len(targets) if equal else weights
        states = [
            client.submit(init_state, cf, t, w, lookup, cw, pure=False) for cf, t, w in zip(self.codes, targets, ws)
        ]
        tot0 = _sum_tree(client, [client.submit(node_totals, s, 1, C, pure=False) for s in states], _add_dicts)
        arrays = self._grow(states, tot0, C)
        est = clone(self.template)
        est.classes_ = present.copy()  # label indices into the global classes; mapped by the caller
        est.n_features_in_ = self.bins.n_features
        est.is_categorical_, est.categories_ = None, None
        est.fitted_on_allowed_ = False
        est.tree_ = HistTree(arrays, self.bins.n_features, C)
        est.n_classes_ = C
        est.n_outputs_ = 1
        return est

    def _grow(self, states, tot, C):
        client, opts, bins = self.client, self.opts, self.bins
        total = tot["total"]
        nodes = []  # level-order records
        level = [dict(parent=-1, is_left=False, depth=0, tot=_node_tot(tot, 0))]
        while level:
            base = len(nodes)
            k = len(level)
            depth = level[0]["depth"]
            for rec in level:
                nodes.append(rec)
            W = np.array([r["tot"]["W"] for r in level])
            cnt = np.array([r["tot"]["cnt"] for r in level], dtype=np.int64)
            ch = np.array([r["tot"]["channel"] for r in level]).reshape(k, C)
            allow = np.array([r["tot"]["allow"] for r in level], dtype=np.int64).reshape(k, C)
            dep = np.full(k, depth, dtype=np.int32)

            def split_nodes(hist, rows, W=W, cnt=cnt, ch=ch, allow=allow, dep=dep):
                return _native.hist_split_nodes(
                    hist,
                    W[rows],
                    cnt[rows],
                    np.ascontiguousarray(ch[rows]),
                    np.ascontiguousarray(allow[rows]),
                    dep[rows],
                    bins.n_bins,
                    bins.lo,
                    bins.hi,
                    C,
                    criterion=opts["criterion"],
                    max_depth=opts["max_depth"],
                    min_samples_split=opts["min_samples_split"],
                    min_samples_leaf=opts["min_samples_leaf"],
                    min_weight_fraction_leaf=opts["min_weight_fraction_leaf"],
                    total_weight=total,
                    n_threads=opts["n_threads"],
                )

            info = split_nodes(None, np.arange(k))
            need = info["splittable"].astype(bool)
            imp = info["impurity"]
            found = np.zeros(k, dtype=bool)
            feat = np.full(k, -2, dtype=np.int64)
            sbin = np.full(k, -1, dtype=np.int64)
            mleft = np.zeros(k, dtype=np.uint8)
            thr = np.full(k, -2.0)
            open_ids = np.flatnonzero(need)
            for b0 in range(0, open_ids.size, NODE_BATCH):
                batch = open_ids[b0 : b0 + NODE_BATCH]
                slot = np.full(k, -1, dtype=np.int32)
                slot[batch] = np.arange(batch.size, dtype=np.int32)
                parts = [
                    client.submit(histograms, cf, bins.n_bins, s, slot, batch.size, C, pure=False)
                    for cf, s in zip(self.codes, states)
                ]
                hist = _sum_tree(client, parts, _add)
                res = split_nodes(hist, batch)
                found[batch] = res["found"].astype(bool)
                feat[batch] = res["feature"]
                sbin[batch] = res["bin"]
                mleft[batch] = res["missing_left"]
                thr[batch] = res["threshold"]
            nxt = []
            table = np.zeros((k, 7), dtype=np.int64)
            for i, rec in enumerate(level):
                rec.update(impurity=float(imp[i]), found=bool(found[i]))
                if not found[i]:
                    continue
                rec.update(feature=int(feat[i]), bin=int(sbin[i]), missing_left=int(mleft[i]), threshold=float(thr[i]))
                li, ri = len(nxt), len(nxt) + 1
                rec["kids"] = (base + k + li, base + k + ri)
                nxt.append(dict(parent=base + i, is_left=True, depth=depth + 1))
                nxt.append(dict(parent=base + i, is_left=False, depth=depth + 1))
                table[i] = (1, feat[i], sbin[i], mleft[i], li, ri, bins.n_bins[feat[i]])
            if not nxt:
                break
            routed = [client.submit(route, cf, s, table, len(nxt), C, pure=False) for cf, s in zip(self.codes, states)]
            states = [client.submit(_first, r, pure=False) for r in routed]
            tots = _sum_tree(client, [client.submit(_second, r, pure=False) for r in routed], _add_dicts)
            for i, rec in enumerate(nxt):
                rec["tot"] = _node_tot(tots, i)
            level = nxt
        return _preorder(nodes, C)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _node_tot(t, i):
    return dict(
        W=float(t["W"][i]), cnt=int(round(t["cnt"][i])), channel=t["channel"][i].copy(), allow=t["allow"][i].copy()
    )


def _target_stats(targets, w, C):
    keep = targets >= 0
    counts = np.bincount(targets[keep], minlength=C)
    if w is None or not keep.any():
        wmin = wmax = 1.0
    else:
        wk = np.asarray(w)[keep]
        wmin, wmax = float(wk.min()), float(wk.max())
    return dict(counts=counts, wmin=wmin, wmax=wmax)


def _add_stats(a, b):
    return dict(counts=a["counts"] + b["counts"], wmin=min(a["wmin"], b["wmin"]), wmax=max(a["wmax"], b["wmax"]))


def _preorder(nodes, C):
    """The level-order records as the in-memory tree's arrays (preorder
    numbering, left child first)."""
    order = []
    stack = [0]
    while stack:
        i = stack.pop()
        order.append(i)
        if nodes[i].get("found"):
            left, right = nodes[i]["kids"]
            stack.append(right)
            stack.append(left)
    new_id = {old: new for new, old in enumerate(order)}
    n = len(order)
    out = dict(
        children_left=np.full(n, -1, dtype=np.int64),
        children_right=np.full(n, -1, dtype=np.int64),
        feature=np.full(n, -2, dtype=np.int64),
        threshold=np.full(n, -2.0),
        missing_go_to_left=np.zeros(n, dtype=np.uint8),
        split_bin=np.full(n, -1, dtype=np.int32),
        value=np.zeros((n, 1, C)),
        n_node_samples=np.zeros(n, dtype=np.int64),
        weighted_n_node_samples=np.zeros(n),
        impurity=np.zeros(n),
        max_depth=0,
    )
    for old in order:
        k = new_id[old]
        rec = nodes[old]
        mass = rec["tot"]["channel"]
        s = mass.sum()
        out["value"][k, 0] = mass / s if s > 0 else 1.0 / C
        out["n_node_samples"][k] = rec["tot"]["cnt"]
        out["weighted_n_node_samples"][k] = rec["tot"]["W"]
        out["impurity"][k] = rec["impurity"]
        out["max_depth"] = max(out["max_depth"], rec["depth"])
        if rec.get("found"):
            out["children_left"][k] = new_id[rec["kids"][0]]
            out["children_right"][k] = new_id[rec["kids"][1]]
            out["feature"][k] = rec["feature"]
            out["threshold"][k] = rec["threshold"]
            out["missing_go_to_left"][k] = rec["missing_left"]
            out["split_bin"][k] = rec["bin"]
    return out
