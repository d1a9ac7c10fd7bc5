// The data-parallel histogram tree's native pieces (crembo.dask): a tree
// grown over partitions of the rows, whose histograms are summed across the
// partitions and whose splits are chosen once from the sums. Split choice is
// the in-memory tree's own (crembo/detail/split.hpp: find_split, splittable,
// impurity), so on the same bins both grow the same tree. Label targets and
// numeric features only. Plain C++17; every function validates its
// arguments and throws std::invalid_argument.
#pragma once

#include <cstdint>

#include "crembo/hist_tree.hpp"

namespace crembo {

// The bins of every feature, as in BinnedView: n_bins[j] value bins (the
// code n_bins[j] marks a missing value); bin_lo/bin_hi: n_features x
// kBinSlots value ranges (read by split_node for thresholds only).
struct ParallelBins {
    index_t n_features = 0;
    const std::int32_t* n_bins = nullptr;
    const float* bin_lo = nullptr;
    const float* bin_hi = nullptr;
};

// Doubles in one node's histogram: sum_j (n_bins[j] + 1) * (n_classes + 2)
// (per slot: row weight, rows, each class's weight; the in-memory layout).
index_t parallel_hist_size(const ParallelBins& bins, index_t n_classes);

// One partition's histograms: row i (codes feature-major, n_features x n)
// adds weight omega[i] and its label to the histogram of node slot[i]
// (skipped when slot[i] < 0 or omega[i] <= 0). out: n_slots histograms,
// overwritten.
void node_histograms(const ParallelBins& bins, index_t n_classes, const std::uint8_t* codes, index_t n,
                     const std::int32_t* slot, index_t n_slots, const label_t* labels, const double* omega,
                     double* out);

// A node's sums over all partitions.
struct NodeSums {
    double W = 0.0;                   // sum of the rows' (class-weighted) weights
    index_t cnt = 0;                  // rows
    const double* channel = nullptr;  // n_classes: weight of each label
    const index_t* allow = nullptr;   // n_classes: rows of each label
    int depth = 0;
};

struct NodeSplit {
    bool splittable = false;  // depth, rows, weight and purity allow a split
    bool found = false;       // a split was found (needs the histogram)
    index_t feature = -1;
    int bin = -1;  // codes <= bin go left
    bool missing_left = false;
    double threshold = 0.0;
    double impurity = 0.0;
};

// Whether the node may split and its impurity (hist null), and its best
// split from its summed histogram (hist not null), by fit_hist_tree's rules;
// total_weight is the summed weight of all the rows fitted (the root's).
NodeSplit split_node(const ParallelBins& bins, index_t n_classes, const TreeOptions& opt, double total_weight,
                     const NodeSums& sums, const double* hist);

}  // namespace crembo
