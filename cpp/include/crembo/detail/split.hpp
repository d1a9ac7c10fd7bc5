// Split finding of the histogram classifier tree: from a node's summed
// histogram (crembo/detail/histogram.hpp), its totals and the tree options,
// the best split. Also the node rules around it (may a node split, its
// score and impurity) and the tree assembly, so that any builder that feeds
// the same sums gets the same tree. Internal: not part of the API.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "crembo/detail/histogram.hpp"
#include "crembo/detail/parallel.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo {
namespace detail {

struct Score {
    double primary = -std::numeric_limits<double>::infinity();
    double secondary = -std::numeric_limits<double>::infinity();
};

struct SplitInfo {
    bool found = false;
    index_t feature = -1;
    int bin = -1;  // codes <= bin go left
    bool missing_left = false;
    double threshold = 0.0;
    Score score;
    bool categorical = false;
    std::array<std::uint64_t, kCatWords> left_bins{};  // categorical: bin codes going left
    std::array<std::uint64_t, kCatWords> left_cats{};  // the same as category codes
};

inline bool has_bit(const std::array<std::uint64_t, kCatWords>& set, int v) {
    return (set[size_t(v >> 6)] >> (v & 63)) & 1u;
}

// Does a row with bin code `code` (n_bins: the feature's missing-value code)
// go to the left child of split s?
inline bool goes_left(const SplitInfo& s, int code, int n_bins) {
    return code == n_bins ? s.missing_left : (s.categorical ? has_bit(s.left_bins, code) : code <= s.bin);
}

// What split finding needs besides the sums: the options, the bins' value
// ranges and the least weight of a child.
struct SplitContext {
    TreeOptions opt;
    index_t n_features = 0;
    index_t n_classes = 0;
    const std::int32_t* n_bins = nullptr;
    const float* bin_lo = nullptr;  // n_features x kBinSlots
    const float* bin_hi = nullptr;
    bool labels = true;            // single labels (false: allowed sets)
    double min_weight_leaf = 0.0;  // opt.min_weight_fraction_leaf x the total weight of the rows to fit
    int threads = 1;               // resolved thread count
};

// Checks opt (throws std::invalid_argument) and fills the context; total is
// the weight of all rows to fit (the root's W).
SplitContext make_split_context(const BinnedView& X, index_t n_classes, bool labels, const TreeOptions& opt,
                                double total);

// May a node at this depth with these totals split at all?
bool splittable(const Totals& t, int depth, const SplitContext& ctx);
// The criterion score of the unsplit node (a split's gain is its score minus this).
Score node_score(const Totals& t, const SplitContext& ctx);
// The node's impurity as scikit-learn reports it.
double impurity(const Totals& t, const SplitContext& ctx);

// One feature's sums at a node: node sums T, the occupied value bins occ (in
// increasing order) with their slots, the missing-value slot, and scratch.
struct FeatureSlots {
    std::vector<double> T, L, LM, M, runs;
    std::vector<int> occ;
    std::vector<const double*> slot;
    const double* missing = nullptr;
    std::vector<std::uint64_t> items;
    explicit FeatureSlots(index_t stride = 0)
        : T(size_t(stride)), L(size_t(stride)), LM(size_t(stride)), M(size_t(stride)) {}
};

// Fills sc from feature j's part of a histogram (hj: n_bins + 1 slots).
void slots_from_histogram(const double* hj, int n_bins, index_t stride, FeatureSlots& sc);

// The best split of feature j given its slots (threshold set); tol as
// split_tolerance gives it.
SplitInfo feature_split(index_t j, FeatureSlots& sc, const SplitContext& ctx, double tol);

// Coverage sums of different rows can differ by rounding when equal in exact
// arithmetic; within this tolerance Gini decides.
inline double split_tolerance(const Totals& tot, const SplitContext& ctx) {
    return ctx.opt.criterion == SplitCriterion::Coverage ? 1e-9 * std::max(tot.W, 1e-300) : 0.0;
}

// a better than b: larger primary score; within tol, larger secondary.
inline bool better_score(const Score& a, const Score& b, double tol) {
    if (a.primary > b.primary + tol) return true;
    if (a.primary < b.primary - tol) return false;
    if (tol == 0.0) return false;
    return a.secondary > b.secondary;
}

// The best split over all features; fill(j, sc) puts feature j's sums at the
// node into sc. Features are scanned in parallel for large nodes; ties go to
// the lower feature.
template <class Fill>
SplitInfo best_split(const Totals& tot, const SplitContext& ctx, Fill&& fill) {
    const index_t d = ctx.n_features;
    std::vector<SplitInfo> per(static_cast<size_t>(d));
    const double tol = split_tolerance(tot, ctx);
    const bool par = ctx.threads > 1 && d > 1 && tot.cnt * d >= kParallelWork;
    const int workers = par ? ctx.threads : 1;
    std::vector<FeatureSlots> scratch(static_cast<size_t>(workers), FeatureSlots(ctx.n_classes + 2));
    parallel_for(d, workers, [&](index_t j, int w) {
        FeatureSlots& sc = scratch[size_t(w)];
        sc.occ.clear();
        sc.slot.clear();
        fill(j, sc);
        per[size_t(j)] = feature_split(j, sc, ctx, tol);
    });
    SplitInfo best;
    for (const auto& s : per)
        if (s.found && (!best.found || better_score(s.score, best.score, tol))) best = s;
    return best;
}

// The best split of a node from its summed histogram h (layout) and totals.
SplitInfo find_split(const HistLayout& layout, const double* h, const Totals& tot, const SplitContext& ctx);

// The split's gain over the unsplit node.
inline Score split_gain(const SplitInfo& s, const Totals& tot, const SplitContext& ctx) {
    const Score node = node_score(tot, ctx);
    return Score{s.score.primary - node.primary, s.score.secondary - node.secondary};
}

// Threshold of a cut between value bins `bin` (left) and `next` (right) of
// feature j, in raw units: midway between the values either side, like
// scikit-learn's exact splitter (and its guard against a midpoint that
// rounds onto the right value); next < 0 ("every value | missing"): +inf.
double cut_threshold(const float* bin_lo, const float* bin_hi, index_t j, int bin, int next);

// Tree assembly. Appends an unsplit node with these totals at depth, as the
// left or right child of parent (-1: the root), and returns its id.
index_t append_node(Tree& t, const Totals& tot, int depth, index_t parent, bool is_left,
                    const SplitContext& ctx);
// Makes node id a split node.
void set_split(Tree& t, index_t id, const SplitInfo& s);

}  // namespace detail
}  // namespace crembo
