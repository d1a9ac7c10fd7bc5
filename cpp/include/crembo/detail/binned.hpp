// Pieces shared by the two histogram tree builders (cpp/src/hist/ for
// classification, hist_tree_regression.cpp for interval targets): the checks
// of the binned data and the structure arrays of a new node. Internal: not
// part of the API.
#pragma once

#include "crembo/detail/checks.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo {
namespace detail {

// Throws std::invalid_argument unless X has all its arrays, at least one row
// and one feature, and every feature's bin count in range.
inline void check_binned_view(const BinnedView& X) {
    require(X.codes != nullptr && X.n_bins != nullptr && X.bin_lo != nullptr && X.bin_hi != nullptr,
            "binned data: missing arrays");
    require(X.n_rows >= 1, "binned data: expected at least one row");
    require(X.n_features >= 1, "binned data: expected at least one feature");
    for (index_t j = 0; j < X.n_features; ++j)
        require(X.n_bins[j] >= 0 && X.n_bins[j] <= kMaxValueBins, "binned data: bin count out of range");
}

// Appends a node without a split (no children, no feature, no threshold) to
// the structure arrays of t; its value, counts and impurity are the caller's.
inline void push_unsplit_node(Tree& t) {
    t.left.push_back(-1);
    t.right.push_back(-1);
    t.feature.push_back(-2);
    t.threshold.push_back(-2.0);
    t.missing_left.push_back(0);
    t.split_bin.push_back(-1);
}

}  // namespace detail
}  // namespace crembo
