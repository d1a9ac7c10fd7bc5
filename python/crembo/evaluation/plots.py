"""Plots of compressed students (matplotlib: ``pip install crembo[plot]``).

* :func:`plot_depth_profile`: the depth profile of one or more students, the
  teacher's belief in each student's prediction at every point, sorted; its
  left end is the student's empirical depth.
* :func:`plot_threshold_search`: validation score against threshold from a
  fitted ``CREMBOClassifier``'s ``trace_`` (the CREMBO sweep), with MEMO's
  probes and the chosen threshold marked.
* :func:`plot_tree`: a tree student drawn as boxes and edges.

Every function draws on ``ax`` when given (else on a new figure) and returns
the axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

__all__ = ["plot_depth_profile", "plot_threshold_search", "plot_tree"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("crembo's plots need matplotlib: pip install 'crembo[plot]'") from None
    return plt


def _axes(ax, figsize):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def plot_depth_profile(
    beliefs: ArrayLike,
    predictions: Mapping[str, ArrayLike] | ArrayLike,
    *,
    classes: ArrayLike | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Depth profiles of students.

    Parameters
    ----------
    beliefs : array of shape (n, C)
        The teacher's belief ``p(y|x)`` (columns ordered as ``classes``).
    predictions : dict name -> array of shape (n,), or one array
        Each student's predictions on the same ``n`` points: labels from
        ``classes`` or, when ``classes`` is None, class indices ``0..C-1``.
    classes : array of shape (C,), optional
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    ax : the axes. Each curve is the point depth ``p(h(x_i)|x_i)`` sorted
    ascending against the fraction of points; the legend gives each
    student's empirical depth (the minimum) and mean point depth.
    """
    P = np.asarray(beliefs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0:
        raise ValueError(f"beliefs: expected a non-empty 2-d array (n, C), got shape {P.shape}")
    if not isinstance(predictions, dict):
        predictions = {"student": predictions}
    if not predictions:
        raise ValueError("predictions: expected at least one student")
    ax = _axes(ax, (6, 4))
    n = P.shape[0]
    frac = (np.arange(n) + 0.5) / n
    styles = ["-", "--", ":", "-."]
    for k, (name, pred) in enumerate(predictions.items()):
        pred = np.asarray(pred)
        if pred.shape != (n,):
            raise ValueError(f"predictions[{name!r}]: expected {n} predictions, got shape {pred.shape}")
        if classes is not None:
            cls = np.asarray(classes)
            idx = np.searchsorted(cls, pred)
            idx = np.clip(idx, 0, len(cls) - 1)
            if not np.all(cls[idx] == pred):
                raise ValueError(f"predictions[{name!r}]: labels outside classes")
        else:
            idx = pred.astype(np.int64)
            if np.any(idx < 0) or np.any(idx >= P.shape[1]):
                raise ValueError(f"predictions[{name!r}]: class indices outside [0, {P.shape[1]})")
        d = np.sort(P[np.arange(n), idx])
        ax.step(
            frac,
            d,
            where="mid",
            ls=styles[k % len(styles)],
            lw=1.6,
            label=f"{name} (depth {d[0]:.2f}, mean {d.mean():.2f})",
        )
    ax.set_xlabel("fraction of points (sorted by depth)")
    ax.set_ylabel("teacher's belief in the prediction")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title or "Depth profile")
    return ax


def plot_threshold_search(model_or_trace: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Validation score against threshold from CREMBO's search.

    Parameters
    ----------
    model_or_trace : fitted CREMBOClassifier, or its ``trace_`` (list of dict)
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : the axes. Sweep thresholds with their validation score (line),
    MEMO's probes along the bottom (filled: a consistent student was found,
    hollow: none), MEMO's threshold and the chosen one as vertical lines.
    """
    trace = getattr(model_or_trace, "trace_", model_or_trace)
    if not isinstance(trace, (list, tuple)) or not all(isinstance(r, dict) for r in trace):
        raise TypeError("model_or_trace: expected a fitted CREMBOClassifier or its trace_ (a list of dicts)")
    chosen = getattr(model_or_trace, "threshold_", None)
    memo_t = getattr(model_or_trace, "memo_threshold_", None)
    ax = _axes(ax, (6, 4))
    # The sweep scored on one validation split ("sweep") or by
    # cross-validation over the labelled rows ("cv").
    sweep = sorted(
        (r["threshold"], r["validation_score"])
        for r in trace
        if r.get("stage") in ("sweep", "cv") and r.get("validation_score") is not None
    )
    cv = any(r.get("stage") == "cv" for r in trace)
    if sweep:
        t, s = zip(*sweep)
        ax.plot(
            t, s, marker="o", ms=3, label="CREMBO sweep: " + ("cross-validated score" if cv else "validation score")
        )
        lo = min(s)
    else:
        lo = 0.0
    probes = [r for r in trace if r.get("stage") == "memo"]
    if probes:
        y0 = lo - 0.02
        ok = [r["threshold"] for r in probes if r["consistent"]]
        bad = [r["threshold"] for r in probes if not r["consistent"]]
        if ok:
            ax.plot(ok, [y0] * len(ok), "v", color="tab:green", label="MEMO probe: consistent")
        if bad:
            ax.plot(bad, [y0] * len(bad), "v", mfc="none", color="tab:red", label="MEMO probe: not consistent")
    if memo_t is not None:
        ax.axvline(memo_t, color="tab:green", ls=":", label=f"MEMO threshold {memo_t:.3g}")
    if chosen is not None:
        ax.axvline(chosen, color="tab:orange", ls="--", label=f"chosen threshold {chosen:.3g}")
    ax.set_xlabel("threshold t (allowed labels: p(y|x) >= t)")
    ax.set_ylabel("validation score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title(title or "CREMBO threshold search")
    return ax


def plot_tree(
    model: Any,
    *,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    max_depth: int | None = None,
    decimals: int = 3,
    fontsize: float = 7,
    title: str | None = None,
) -> Axes:
    """Draw a tree student (any model :func:`crembo.trees.representation.flatten_tree` reads).

    Splits show ``feature <= threshold`` (left: yes); leaves show the
    predicted class and its probability, coloured by class. ``max_depth``
    cuts the drawing (cut subtrees are drawn as "...").
    """
    from ..trees.representation import flatten_tree

    flat = flatten_tree(model)
    names = feature_names if feature_names is not None else flat.feature_names
    labels = class_names if class_names is not None else [str(c) for c in flat.classes]
    limit = flat.depth() if max_depth is None else int(max_depth)

    # Leaves (and cut nodes) take consecutive x slots left to right; a split
    # sits above the middle of its children.
    pos, edges, order = {}, [], []
    slot = [0]

    def place(i, depth):
        cut = depth >= limit and flat.children_left[i] >= 0
        if flat.children_left[i] < 0 or cut:
            pos[i] = (slot[0], -depth)
            slot[0] += 1
            order.append((i, cut))
            return pos[i][0]
        xs = []
        for child, lab in ((int(flat.children_left[i]), "yes"), (int(flat.children_right[i]), "no")):
            xs.append(place(child, depth + 1))
            edges.append((i, child, lab))
        pos[i] = (sum(xs) / 2.0, -depth)
        order.append((i, False))
        return pos[i][0]

    import sys

    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 4 * limit + 100))
    try:
        place(0, 0)
    finally:
        sys.setrecursionlimit(old_limit)

    width = max(slot[0], 1)
    ax = _axes(ax, (min(2 + 1.1 * width, 40), 1.2 + 1.1 * (limit + 1)))
    try:
        import matplotlib as mpl

        cmap = mpl.colormaps["tab10"]
    except (ImportError, AttributeError, KeyError):  # pragma: no cover
        cmap = None
    for a, b, lab in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.plot([x0, x1], [y0, y1], color="0.5", lw=0.8, zorder=1)
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, lab, fontsize=fontsize - 1, color="0.4", ha="center", va="center")
    for i, cut in order:
        x, y = pos[i]
        if cut:
            text, color = "...", "white"
        elif flat.children_left[i] < 0:
            c = int(flat.leaf_class[i])
            text = f"{labels[c]}\np={flat.proba[i, c]:.2f}"
            color = cmap(c % 10) if cmap is not None else "white"
        else:
            f = int(flat.feature[i])
            fname = names[f] if names is not None else f"x[{f}]"
            text = f"{fname}\n<= {flat.threshold[i]:.{decimals}g}"
            color = "white"
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=fontsize,
            zorder=2,
            bbox=dict(boxstyle="round,pad=0.3", fc=color, ec="0.3", alpha=0.9),
        )
    ax.set_xlim(-0.7, width - 0.3)
    ax.set_ylim(-limit - 0.6, 0.6)
    ax.set_axis_off()
    ax.set_title(title or f"{flat.source}: depth {flat.depth()}, {int(np.sum(flat.children_left < 0))} leaves")
    return ax
