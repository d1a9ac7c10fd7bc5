# Type stubs of crembo._core, the pybind11 module built from
# cpp/bindings/module.cpp. tests/test_stubs.py checks these names and
# parameter names against the built module both ways: a binding added
# there must be added here.
#
# Arrays: belief matrices are (n, C) float64 or float32 (float32 stays
# float32); labels are int32 after a checked conversion; anything array-like
# is converted once. Errors: ValueError / TypeError naming the argument.
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

# ------------------------------------------------------------- build facts
cuda_built: bool
"""True when the module was compiled with the CUDA kernels (the cuda_* functions exist)."""

def built_with_openmp() -> bool: ...
def cuda_available() -> bool:
    """True when built with CUDA and the runtime reports a usable device; never raises."""

def cuda_device_name() -> str:
    """Name of the current CUDA device, or an empty string."""

# ---------------------------------------------------------------- threading
def set_num_threads(n: int) -> None:
    """Threads used by the parallel kernels (0 restores the default)."""

def get_num_threads() -> int: ...

# ------------------------------------------------------------------ beliefs
def beliefs_from_votes(votes: npt.ArrayLike, n_classes: int, float32: bool = False) -> np.ndarray:
    """(n, n_classes) shares of the m hypotheses voting each class; votes is (m, n)."""

def check_beliefs(beliefs: npt.ArrayLike, tol: float) -> None: ...
def normalize_beliefs(beliefs: npt.ArrayLike) -> np.ndarray: ...

# -------------------------------------------------------------------- depth
def point_depth(beliefs: npt.ArrayLike, pred: npt.ArrayLike) -> np.ndarray: ...
def empirical_depth(beliefs: npt.ArrayLike, pred: npt.ArrayLike, delta: float = 0.0) -> float: ...
def depth_profile(depth: npt.ArrayLike, thresholds: npt.ArrayLike) -> np.ndarray: ...
def max_achievable_depth(beliefs: npt.ArrayLike) -> float: ...
def row_argmax(beliefs: npt.ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """(argmax per row as int32, max per row)."""

# --------------------------------------------------------------- thresholds
def candidate_thresholds(beliefs: npt.ArrayLike, lo: float = 0.0, hi: float = 1.0) -> np.ndarray: ...
def budgeted_thresholds(beliefs: npt.ArrayLike, n_thresholds: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray: ...
def distinct_entries(beliefs: npt.ArrayLike, lo: float = 0.0, hi: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """(sorted distinct entries > 0 in [lo, hi], how often each occurs)."""

def budget_from_counts(values: npt.ArrayLike, counts: npt.ArrayLike, n_thresholds: int) -> np.ndarray:
    """budgeted_thresholds' choice from distinct entries and their counts."""

# ------------------------------------------------ allowed labels, consistency
def allowed_labels(beliefs: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]: ...
def count_violations(beliefs: npt.ArrayLike, pred: npt.ArrayLike, threshold: float) -> int: ...
def allowed_targets(
    beliefs: npt.ArrayLike, threshold: float, prefer: Optional[npt.ArrayLike] = None
) -> Tuple[npt.NDArray[np.int32], int]:
    """(target per point, -1 where no label is allowed; number of such points)."""

def leaf_sums(
    beliefs: npt.ArrayLike,
    leaves: npt.ArrayLike,
    sample_weight: Optional[npt.ArrayLike],
    cols: npt.ArrayLike,
    n_nodes: int,
) -> npt.NDArray[np.float64]:
    """(n_nodes, len(cols)): per leaf, the sum of weight x beliefs[:, cols] over its points."""

# ---------------------------------------------------------------------- MEMO
_FitLabels = Callable[[np.ndarray, np.ndarray], Any]  # (targets, weights) -> predictions on S
_FitMask = Callable[[np.ndarray], Any]  # (allowed-label mask) -> predictions on S

HOPELESS_SHARE: float
HOPELESS_MIN: int

def consistency_oracle(
    beliefs: npt.ArrayLike,
    threshold: float,
    fit_labels: Optional[_FitLabels] = None,
    fit_mask: Optional[_FitMask] = None,
    oracle: str = "reweight",
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    sample_weight: Optional[npt.ArrayLike] = None,
    prefer: Optional[npt.ArrayLike] = None,
    adaptive_eta: bool = False,
) -> Dict[str, Any]:
    """{"consistent", "violations", "rounds", "pred"} of one oracle call."""

def memo_search(
    beliefs: npt.ArrayLike,
    candidates: npt.ArrayLike,
    fit_labels: Optional[_FitLabels] = None,
    fit_mask: Optional[_FitMask] = None,
    accept: Optional[Callable[[], Any]] = None,
    oracle: str = "reweight",
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    sample_weight: Optional[npt.ArrayLike] = None,
    probe_lowest: bool = True,
    warm_start: bool = False,
    adaptive_eta: bool = False,
    search: str = "binary",
) -> Dict[str, Any]:
    """{"best_candidate", "best_threshold", "best_pred", "trace", "n_fits"}."""

# -------------------------------------------------------- histogram trees
def hist_bin(
    X: npt.ArrayLike, max_bins: int = 255, subsample: int = 200000, seed: int = 0, n_threads: int = 0
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bins X (n x d) once: (codes d x n uint8, n_bins, bin_lo, bin_hi); code n_bins[j] marks NaN."""

def hist_release_buffers() -> int:
    """Frees the packed-rows buffer that count-mode fits keep between fits; returns the bytes freed."""

def hist_fit(
    codes: np.ndarray,
    n_bins: np.ndarray,
    bin_lo: np.ndarray,
    bin_hi: np.ndarray,
    rows: Optional[npt.ArrayLike] = None,
    n_classes: int = ...,  # required: the binding gives it no default
    labels: Optional[npt.ArrayLike] = None,
    allowed: Optional[npt.ArrayLike] = None,
    sample_weight: Optional[npt.ArrayLike] = None,
    class_weight: Optional[npt.ArrayLike] = None,
    criterion: str = "gini",
    max_depth: int = -1,
    min_samples_split: int = 2,
    min_samples_leaf: int = 1,
    min_weight_fraction_leaf: float = 0.0,
    max_leaf_nodes: int = -1,
    n_threads: int = 0,
    categorical: Optional[npt.ArrayLike] = None,  # uint8 flags per feature: category-subset splits
) -> Dict[str, Any]:
    """Fits a histogram tree to binned rows (labels or an allowed-label mask); returns its arrays."""

def hist_leaves(
    codes: np.ndarray,
    n_bins: np.ndarray,
    bin_lo: np.ndarray,
    bin_hi: np.ndarray,
    rows: Optional[npt.ArrayLike],
    X: Optional[np.ndarray],  # the raw rows that were binned (all of them, before any row selection)
    children_left: npt.ArrayLike,
    children_right: npt.ArrayLike,
    feature: npt.ArrayLike,
    threshold: npt.ArrayLike,
    missing_go_to_left: npt.ArrayLike,
    is_categorical: Optional[npt.ArrayLike] = None,
    cat_left: Optional[npt.ArrayLike] = None,  # (n_nodes, 4) uint64 category bitsets
    n_threads: int = 0,
) -> np.ndarray:
    """The leaf each selected binned row reaches in a tree (walked on the codes; X decides straddling bins)."""

# The data-parallel histogram tree's pieces (cpp/bindings/hist_parallel.cpp,
# used by crembo.dask): per-partition node histograms, and each node's split
# from its summed histogram by the in-memory tree's rules.
def hist_node_histograms(
    codes: np.ndarray,
    n_bins: np.ndarray,
    slot: np.ndarray,  # int32 node slot of each row, -1: skipped
    n_slots: int,
    labels: np.ndarray,
    omega: np.ndarray,  # float64 row weights (class weights folded in)
    n_classes: int,
) -> np.ndarray:
    """Histograms (n_slots x size) of one partition's rows by node slot (slot -1: skipped)."""

def hist_split_nodes(
    hist: Optional[np.ndarray],
    W: np.ndarray,
    cnt: np.ndarray,
    channel: np.ndarray,
    allow: np.ndarray,
    depth: np.ndarray,
    n_bins: np.ndarray,
    bin_lo: np.ndarray,
    bin_hi: np.ndarray,
    n_classes: int,
    criterion: str = "gini",
    max_depth: int = -1,
    min_samples_split: int = 2,
    min_samples_leaf: int = 1,
    min_weight_fraction_leaf: float = 0.0,
    total_weight: float = 0.0,
    n_threads: int = 0,
) -> Dict[str, np.ndarray]:
    """Per node: may it split, its impurity and (hist given) its best split, by the in-memory tree's rules."""

# ------------------------------------------------------------- regression
# Deep hypotheses for regression (cpp/bindings/regression.cpp): an (n, m)
# matrix of m hypotheses' predictions at n points; "sorted" means each row
# sorted ascending (sort_hypotheses).
_FitValues = Callable[[np.ndarray, np.ndarray], Any]  # (targets, weights) -> n predictions on S

def sort_hypotheses(hypotheses: npt.ArrayLike) -> np.ndarray:
    """Rows of an (n, m) hypothesis-prediction matrix sorted ascending."""

def interval_rank(m: int, t: float) -> int:
    """k(t): the smallest k with k/m >= t (the order of the lower interval end)."""

def hypothesis_intervals(sorted_hypotheses: npt.ArrayLike, t: float) -> Tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the allowed intervals at level t."""

def hypothesis_medians(sorted_hypotheses: npt.ArrayLike) -> np.ndarray: ...
def clip_to_intervals(sorted_hypotheses: npt.ArrayLike, t: float, prefer: Optional[npt.ArrayLike] = None) -> np.ndarray:
    """prefer (default: the medians) clipped into the allowed intervals at level t."""

def hypothesis_point_depth(hypotheses: npt.ArrayLike, pred: npt.ArrayLike, tol: float = 0.0) -> np.ndarray: ...
def hypothesis_empirical_depth(
    hypotheses: npt.ArrayLike, pred: npt.ArrayLike, tol: float = 0.0, delta: float = 0.0
) -> float: ...
def hypothesis_violations(sorted_hypotheses: npt.ArrayLike, pred: npt.ArrayLike, t: float, tol: float = 0.0) -> int: ...
def max_point_depth(sorted_hypotheses: npt.ArrayLike, tol: float = 0.0) -> np.ndarray: ...
def regression_oracle(
    sorted_hypotheses: npt.ArrayLike,
    t: float,
    fit: _FitValues,
    tol: float = 0.0,
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    sample_weight: Optional[npt.ArrayLike] = None,
    prefer: Optional[npt.ArrayLike] = None,
) -> Dict[str, Any]:
    """One call of the reweighting consistency oracle at level t."""

def regression_memo_search(
    sorted_hypotheses: npt.ArrayLike,
    candidates: npt.ArrayLike,
    fit: _FitValues,
    accept: Optional[Callable[[], Any]] = None,
    tol: float = 0.0,
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    sample_weight: Optional[npt.ArrayLike] = None,
    probe_lowest: bool = True,
) -> Dict[str, Any]:
    """MEMO for regression: binary search over levels with the reweighting oracle."""

def interval_leaf_value(
    lo: npt.ArrayLike, hi: npt.ArrayLike, sample_weight: Optional[npt.ArrayLike] = None, hint: float = 0.0
) -> float:
    """The minimiser of sum w dist(v, [lo, hi])^2 (nearest hint when a range minimises it)."""

def hist_fit_intervals(
    codes: np.ndarray,
    n_bins: np.ndarray,
    bin_lo: np.ndarray,
    bin_hi: np.ndarray,
    rows: Optional[npt.ArrayLike] = None,
    lo: np.ndarray = ...,  # required: the binding gives it no default
    hi: np.ndarray = ...,  # required
    sample_weight: Optional[npt.ArrayLike] = None,
    max_depth: int = -1,
    min_samples_split: int = 2,
    min_samples_leaf: int = 1,
    min_weight_fraction_leaf: float = 0.0,
    rounds: int = 3,
) -> Dict[str, Any]:
    """Fits a histogram regression tree to interval targets [lo, hi] on binned rows; returns its arrays."""

# ------------------------------------------------------------- deployment
class FastTree:
    """A decision tree flattened into arrays and evaluated natively."""

    def __init__(
        self,
        children_left: npt.ArrayLike,
        children_right: npt.ArrayLike,
        feature: npt.ArrayLike,
        threshold: npt.ArrayLike,
        leaf_class: npt.ArrayLike,
        proba: npt.ArrayLike,
        n_features: int,
        classes: Any,
        missing_go_to_left: Optional[npt.ArrayLike] = None,
        precision: str = "float32",
    ) -> None: ...
    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Class labels of the rows of X (n_samples, n_features)."""

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities (n_samples, n_classes), columns ordered as classes_."""

    def apply(self, X: npt.ArrayLike, n_threads: int = 0) -> npt.NDArray[np.int64]:
        """Index of the leaf each row of X reaches (scikit-learn's apply); n_threads 0: crembo's default."""

    def to_text(self) -> str:
        """The tree in the text format crembo/fast_tree.hpp loads."""

    def _state(self) -> Dict[str, Any]: ...
    @property
    def classes_(self) -> Any: ...
    @property
    def n_features_in_(self) -> int: ...
    @property
    def n_classes_(self) -> int: ...
    @property
    def node_count(self) -> int: ...
    @property
    def n_leaves(self) -> int: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def precision(self) -> str: ...

def fast_tree_text_state(text: str) -> Dict[str, Any]:
    """Parse the fast-tree text format into the arrays FastTree is built from."""

class VoteForest:
    """The trees of a voting ensemble, counting their votes natively."""

    def __init__(self, n_features: int, n_classes: int) -> None: ...
    def add_tree(
        self,
        children_left: npt.ArrayLike,
        children_right: npt.ArrayLike,
        feature: npt.ArrayLike,
        threshold: npt.ArrayLike,
        leaf_class: npt.ArrayLike,
        missing_go_to_left: Optional[npt.ArrayLike] = None,
    ) -> None:
        """Append a tree in scikit-learn's layout; leaf_class[i] is the class index voted at leaf i."""

    def beliefs(self, X: npt.ArrayLike, n_threads: int = 0, block_rows: int = 0) -> npt.NDArray[np.float64]:
        """Share of the trees voting for each class, (n_samples, n_classes)."""

    @property
    def n_trees(self) -> int: ...
    @property
    def node_count(self) -> int: ...
    @property
    def n_features_in_(self) -> int: ...
    @property
    def n_classes_(self) -> int: ...

# ------------------------------------------- CUDA kernels (CUDA builds only)
# Present when cuda_built is True: the same contracts and results as the CPU
# functions of the same name; inputs are copied to the device and back.
def cuda_beliefs_from_votes(votes: npt.ArrayLike, n_classes: int, float32: bool = False) -> np.ndarray: ...
def cuda_point_depth(beliefs: npt.ArrayLike, pred: npt.ArrayLike) -> np.ndarray: ...
def cuda_empirical_depth(beliefs: npt.ArrayLike, pred: npt.ArrayLike, delta: float = 0.0) -> float: ...
def cuda_allowed_labels(beliefs: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]: ...
def cuda_count_violations(beliefs: npt.ArrayLike, pred: npt.ArrayLike, threshold: float) -> int: ...
def cuda_max_achievable_depth(beliefs: npt.ArrayLike) -> float: ...
def cuda_hypothesis_point_depth(hypotheses: npt.ArrayLike, pred: npt.ArrayLike, tol: float = 0.0) -> np.ndarray: ...
def cuda_hypothesis_empirical_depth(
    hypotheses: npt.ArrayLike, pred: npt.ArrayLike, tol: float = 0.0, delta: float = 0.0
) -> float: ...
def cuda_hypothesis_violations(
    sorted_hypotheses: npt.ArrayLike, pred: npt.ArrayLike, t: float, tol: float = 0.0
) -> int: ...
