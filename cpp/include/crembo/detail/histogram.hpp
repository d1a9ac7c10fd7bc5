// Histograms of target mass over binned features, the unit both the
// in-memory tree (cpp/src/hist/builder.cpp) and a data-parallel one build
// from: per-row targets (RowTargets), a node's totals (Totals, additive over
// disjoint row sets) and its histogram (additive too: histograms of the
// parts of a node's rows sum to the node's). Internal: not part of the API.
#pragma once

#include <cstdint>
#include <vector>

#include "crembo/hist_tree.hpp"

namespace crembo {
namespace detail {

// Where each feature's slots sit in a histogram: feature j has n_bins[j] + 1
// slots (its value bins, then the missing-value bin), and every slot holds
// stride() = C + 2 doubles: criterion weight, rows, criterion mass of each
// class.
class HistLayout {
public:
    HistLayout() = default;
    HistLayout(const std::int32_t* n_bins, index_t n_features, index_t n_classes);
    index_t n_features() const { return index_t(offset_.size()) - 1; }
    index_t n_classes() const { return n_classes_; }
    index_t stride() const { return n_classes_ + 2; }
    index_t slots() const { return offset_.back(); }
    index_t size() const { return slots() * stride(); }  // doubles in a histogram
    // Feature j's value bins (its missing-value slot comes after them).
    int n_bins(index_t j) const { return int(offset_[size_t(j + 1)] - offset_[size_t(j)]) - 1; }
    index_t feature_offset(index_t j) const { return offset_[size_t(j)] * stride(); }  // in doubles

private:
    index_t n_classes_ = 0;
    std::vector<index_t> offset_{0};  // first slot of each feature, and the total
};

// The targets of m rows as histogram contributions: each row adds its
// criterion weight omega, one row, and criterion mass to its classes' slots.
struct RowTargets {
    // One entry per allowed (row, class) of a set target: the slot offset
    // 2 + class (the class is slot - 2) and the criterion mass, next to each
    // other so the histogram pass reads them together.
    struct Entry {
        index_t slot;
        double value;
    };
    index_t n_classes = 0;
    std::vector<label_t> y;      // single labels; empty with allowed sets
    std::vector<double> omega;   // criterion weight (labels: also the class mass)
    std::vector<index_t> rp;     // allowed sets: CSR row pointers into entries
    std::vector<Entry> entries;  // allowed sets: the entries
    std::vector<double> emass;   // allowed sets: (class-weighted) vote mass of each entry
    bool labels() const { return !y.empty(); }
};

// Validates the targets of m rows (throws std::invalid_argument) and returns
// them. fit_rows gets the rows to fit in increasing order (positive weight
// and, for sets, a non-empty allowed set); total their summed weight.
RowTargets prepare_targets(const TreeTargets& y, index_t m, SplitCriterion criterion,
                           std::vector<index_t>& fit_rows, double& total);

// A node's sums over its rows (all of positive weight).
struct Totals {
    double W = 0.0;               // criterion weight
    index_t cnt = 0;              // rows
    std::vector<double> channel;  // criterion mass per class
    std::vector<double> mass;     // allowed sets: vote (class-weighted) mass per class; empty with labels
    std::vector<index_t> allow;   // rows allowing each class
    // The node's vote per class: with labels the criterion mass itself.
    const std::vector<double>& vote() const { return mass.empty() ? channel : mass; }
};

// Totals of rows[0..n) (local row numbers of t).
Totals node_totals(const RowTargets& t, const index_t* rows, index_t n);
// a += b, b's rows disjoint from a's (summing a node's parts).
void add_totals(Totals& a, const Totals& b);
// Totals of the rows of a that are not in b (b's rows are a subset of a's).
Totals minus(const Totals& a, const Totals& b);

// Adds one single-label row (label y, criterion weight w) to histogram
// slot s: its weight, one row, and its weight on its class. Every label
// histogram (in memory, node-ordered, per partition) adds rows this way.
inline void add_label_row(double* s, label_t y, double w) {
    s[0] += w;
    s[1] += 1.0;
    s[2 + y] += w;
}

// Adds local row p to one histogram slot s.
inline void add_row(double* s, const RowTargets& t, index_t p) {
    if (t.labels()) {
        add_label_row(s, t.y[size_t(p)], t.omega[size_t(p)]);
    } else {
        s[0] += t.omega[size_t(p)];
        s[1] += 1.0;
        const RowTargets::Entry* e = t.entries.data() + t.rp[size_t(p)];
        const RowTargets::Entry* e1 = t.entries.data() + t.rp[size_t(p + 1)];
        for (; e < e1; ++e) s[e->slot] += e->value;
    }
}

// Overwrites h (layout.size() doubles) with the histogram of rows[0..n):
// codes is the m x d feature-major bin matrix of t's rows. Feature-parallel
// on up to `threads` threads when the node is large.
void build_histogram(const HistLayout& layout, const std::uint8_t* codes, index_t m, const RowTargets& t,
                     const index_t* rows, index_t n, double* h, int threads);

// The same histogram from a node's rows laid out in node order (single
// labels): row_codes n x d row-major, and each row's label y and criterion
// weight w. Every slot sums the rows in the same order as build_histogram
// given those rows, so the result is the same bit for bit; reading is
// sequential, which pays once a node holds a small share of scattered rows.
void build_histogram_ordered(const HistLayout& layout, const std::uint8_t* row_codes, const label_t* y,
                             const double* w, index_t n, double* h, int threads);

// big -= small, slot by slot (a sibling's histogram from its parent's).
void subtract_histogram(const HistLayout& layout, double* big, const double* small);

}  // namespace detail
}  // namespace crembo
