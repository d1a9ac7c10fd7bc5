// Histogram decision trees for label and allowed-label-set targets.
//
// CREMBO and MEMO fit the same student many times on the same X with
// different targets. Here X is binned once (bin_features: up to 255 quantile
// bins per feature plus one bin for missing values, one byte per value) and
// every fit (fit_hist_tree) works on the bins only: a node's split comes from
// per-feature histograms of target mass, and a child's histogram is its
// parent's minus its sibling's, so only the smaller child of each split is
// ever summed over its rows.
//
// Targets are either one label per row or a set of allowed labels per row
// (an n x C mask). With sets, a node predicts the label of greatest allowed
// weight, and the split criterion is one of SplitCriterion below.
//
// Feature values are compared as float32, like scikit-learn's trees: a split
// sends x to the left child when float(x) <= threshold (a double), and NaN to
// the side stored with the split. Plain C++17, no Python; every function
// validates its arguments and throws std::invalid_argument.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "crembo/core.hpp"

namespace crembo {

// Value bins per feature at most; the missing-value bin comes on top, so a
// bin code fits a byte.
constexpr int kMaxValueBins = 255;
// Slots per feature in the bin_lo / bin_hi tables.
constexpr int kBinSlots = 256;

// ----------------------------------------------------------------- binning
struct BinningOptions {
    int max_bins = kMaxValueBins;  // value bins per feature, in [2, 255]
    index_t subsample = 200000;    // rows that place the bin edges (all rows when n <= subsample)
    std::uint64_t seed = 0;        // picks the subsample
    int n_threads = 0;             // 0: crembo's default (set_num_threads)
};

// Bins the n x d matrix X (X[i*row_stride + j*col_stride]). A feature with at
// most max_bins distinct values gets one bin per value; otherwise the bins
// hold about equal numbers of rows (a value never straddles two bins).
// Outputs, allocated by the caller:
//   codes   d x n bytes, feature-major: codes[j*n + i] is the bin of X[i, j],
//           in [0, n_bins[j]); the code n_bins[j] means "missing" (NaN).
//   n_bins  d counts of value bins (0 when every value is missing).
//   bin_lo, bin_hi  d x kBinSlots: smallest and largest float32 value of the
//           rows in each value bin (so bin b < b' implies bin_hi[b] < bin_lo[b']).
template <class T>
void bin_features(const T* X, index_t n, index_t d, index_t row_stride, index_t col_stride,
                  const BinningOptions& opt, std::uint8_t* codes, std::int32_t* n_bins, float* bin_lo,
                  float* bin_hi);

// A binned matrix (possibly a subset of its rows) as a fit sees it.
struct BinnedView {
    const std::uint8_t* codes = nullptr;  // n_rows x n_features, feature-major, as above
    index_t n_rows = 0;
    index_t n_features = 0;
    const std::int32_t* n_bins = nullptr;
    const float* bin_lo = nullptr;
    const float* bin_hi = nullptr;
    // Row subset (indices into [0, n_rows), any order, repeats allowed); null
    // selects every row in order. Targets follow the selected rows.
    const index_t* rows = nullptr;
    index_t n_selected = 0;
};

// ------------------------------------------------------------------ fitting
enum class SplitCriterion {
    // Gini over the class masses. With labels it is scikit-learn's Gini.
    // With allowed sets the mass of class c is the weight of the points that
    // allow c, and the criterion is the sum over classes of the binary Gini
    // of "c is allowed": the split criterion of the paper's multi-output tree.
    Gini,
    // Weight of the points whose allowed set contains the child's best label
    // (the weight the split makes consistent), Gini breaking ties.
    Coverage,
    // Gini over masses where each point spreads its weight evenly over its
    // allowed labels (equal to Gini for single labels).
    SpreadGini,
};

struct TreeTargets {
    index_t n_classes = 0;
    const label_t* labels = nullptr;        // n_selected labels in [0, C), or null
    const std::uint8_t* allowed = nullptr;  // n_selected x C mask, row-major (used when labels is null)
    const double* sample_weight = nullptr;  // n_selected finite weights >= 0, or null (all 1)
    const double* class_weight = nullptr;   // C finite weights >= 0, or null (all 1)
};

struct TreeOptions {
    SplitCriterion criterion = SplitCriterion::Gini;
    int max_depth = -1;                     // < 0: unlimited
    index_t min_samples_split = 2;          // a node with fewer rows is a leaf
    index_t min_samples_leaf = 1;           // rows in each child at least
    double min_weight_fraction_leaf = 0.0;  // weight in each child at least, as a share of the total
    index_t max_leaf_nodes = -1;            // < 0: unlimited (depth first); else best first
    int n_threads = 0;                      // 0: crembo's default
    // n_features flags, or null (all numeric). A categorical feature's value
    // bins are its categories (one bin per distinct value, the value being
    // the category's code in [0, 256)); its splits send a subset of the
    // categories left (see Tree::cat_left). Categories are ordered by their
    // share of one class and cut like numeric bins: the exact best subset
    // for two classes (Gini); with more classes one ordering per class is
    // scanned and the best cut over all of them kept (a heuristic).
    const std::uint8_t* categorical = nullptr;
};

// Words of a category bitset: codes 0..255.
constexpr int kCatWords = 4;

// A fitted tree as flat arrays, laid out like scikit-learn's Tree: node 0 is
// the root; leaves have left = right = -1, feature = -2, threshold = -2.
struct Tree {
    index_t n_features = 0;
    index_t n_classes = 0;
    int max_depth = 0;
    std::vector<index_t> left, right, feature;
    std::vector<double> threshold;           // raw (float32-compared) feature units
    std::vector<std::uint8_t> missing_left;  // where NaN goes at this split
    std::vector<std::int32_t>
        split_bin;  // codes <= split_bin go left (-1 at leaves; -1 at categorical splits)
    // Categorical splits: is_categorical[k] = 1, and the category codes that
    // go left are the set bits of cat_left[k*kCatWords .. +kCatWords) (bit v
    // of word v/64). A missing value goes to missing_left; a category not in
    // the set (one the node never saw included) goes right.
    std::vector<std::uint8_t> is_categorical;
    std::vector<std::uint64_t> cat_left;
    std::vector<double> value;  // n_nodes x C, each row sums to 1
    std::vector<index_t> n_node_samples;
    std::vector<double> weighted_n_node_samples;
    std::vector<double> impurity;
    index_t node_count() const { return static_cast<index_t>(left.size()); }
};

// Fits a tree to the binned rows. Depth first (nodes numbered in preorder,
// left child first) unless max_leaf_nodes is set, then best first (the split
// of greatest criterion gain is made next). Rows whose allowed set is empty
// are left out; all rows empty, or all weights zero, is an error.
//
// Single labels whose rows to fit all weigh 1 (no weights, or weights of 0
// and 1, class weights 1) are fitted from integer class counts, on the rows
// packed row-major (d codes and the label, padded to 8 bytes) in one buffer
// that is partitioned in place; the trees are those of the weighted sums bit
// for bit (every sum being a count). That buffer is kept for the next such
// fit (one per process, the largest, up to 256 MiB): CREMBO refits many trees
// on the same rows.
Tree fit_hist_tree(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt);

// A fitted tree's structure, borrowed (Tree's arrays, or the same arrays
// held elsewhere): what walking rows needs.
struct TreeView {
    index_t n_nodes = 0;
    const index_t* left = nullptr;  // -1 at leaves
    const index_t* right = nullptr;
    const index_t* feature = nullptr;
    const double* threshold = nullptr;  // raw units: float32(x) <= threshold goes left
    const std::uint8_t* missing_left = nullptr;
    const std::uint8_t* is_categorical = nullptr;  // null: no categorical split
    const std::uint64_t* cat_left = nullptr;       // n_nodes x kCatWords (read where is_categorical)
};

// The leaf (node index) that each selected row of X reaches in tree t:
// out[k] for selected row k, the leaf its raw values reach (float32(x) <=
// threshold goes left, NaN to missing_left, a categorical split sends the
// categories of cat_left left). The walk reads the rows' bin codes: a bin
// whose every value lies on one side of a split decides it; the one bin that
// may straddle a threshold (values on both sides, possible for rows that
// did not reach the node while the tree was fitted) reads the raw value,
// raw(row, feature) = raw_X[row * rs + feature * cs], row indexing the
// binned rows (before any row selection). Rows are split over n_threads
// threads (0: crembo's default). Throws std::invalid_argument when t is not
// a valid tree over X's features (children after their parent, split
// features in range).
template <class T>
void binned_leaves(const BinnedView& X, const T* raw_X, std::ptrdiff_t rs, std::ptrdiff_t cs,
                   const TreeView& t, index_t* out, int n_threads = 0);

// Frees the packed-rows buffer kept between count-mode fits (a fit running
// now keeps its own until it ends); returns the bytes freed, 0 when none
// was kept.
std::size_t release_hist_buffers();

}  // namespace crembo
