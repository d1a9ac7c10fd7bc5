// Histogram regression trees that learn interval targets (CREMBORegressor's
// native student; docs/regression.md, "Native interval tree").
//
// Each row i carries an interval [lo_i, hi_i] (a point target when
// lo_i == hi_i) and a weight w_i. The tree f is fit to minimise the squared
// distance to the intervals,
//
//     L(f) = sum_i w_i * dist(f(x_i), [lo_i, hi_i])^2,
//
// by alternating two steps, each of which cannot increase L for a fixed
// structure: (a) targets c_i = clip(current prediction, lo_i, hi_i) (the
// nearest allowed value; the first round clips the intervals' midpoints),
// then a squared-error tree is grown on c; (b) every leaf takes the exact
// minimiser of L over its rows. With point targets one round is an ordinary
// weighted least-squares tree.
//
// X is binned once (bin_features, crembo/hist_tree.hpp) and reused by every
// fit; splits, thresholds and missing-value routing follow the histogram
// classifier (a split between bins sits midway between the values either
// side; NaN goes to the side stored with the split). Plain C++17, no Python;
// bad arguments throw std::invalid_argument naming them.
#pragma once

#include "crembo/hist_tree.hpp"

namespace crembo {

struct IntervalTargets {
    const double* lo = nullptr;             // n_selected finite lower ends
    const double* hi = nullptr;             // n_selected finite upper ends, hi >= lo
    const double* sample_weight = nullptr;  // n_selected finite weights >= 0, or null (all 1)
};

struct IntervalTreeOptions {
    int max_depth = -1;  // < 0: unlimited
    index_t min_samples_split = 2;
    index_t min_samples_leaf = 1;
    double min_weight_fraction_leaf = 0.0;
    int rounds = 3;  // alternations of (targets, structure, leaf values), >= 1
};

// The exact minimiser of sum_i w_i dist(v, [lo_i, hi_i])^2 over v; when a
// whole range minimises it (the intervals' weighted intersection), the point
// of that range nearest to hint. Needs a positive total weight.
double interval_leaf_value(const double* lo, const double* hi, const double* w, index_t n, double hint);

// Fits the tree; value holds one number per node (n_classes = 1): the exact
// interval-loss minimiser at leaves, the weighted mean of the last round's
// targets at split nodes; impurity is the node's weighted variance of them.
Tree fit_interval_tree(const BinnedView& X, const IntervalTargets& y, const IntervalTreeOptions& opt);

}  // namespace crembo
