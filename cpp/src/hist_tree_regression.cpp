// Histogram regression trees on interval targets (crembo/hist_tree_regression.hpp).
#include "crembo/hist_tree_regression.hpp"

#include "crembo/detail/binned.hpp"
#include "crembo/detail/split.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace crembo {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}

// One candidate split of a node.
struct Split {
    bool found = false;
    double gain = -kInf;  // sum over children of S^2 / W (larger is better)
    index_t feature = -1;
    int bin = -1;   // codes <= bin go left
    int next = -1;  // the occupied bin right of the cut (-1: "every value | missing")
    bool missing_left = false;
    double threshold = 0.0;
};

class IntervalBuilder {
public:
    IntervalBuilder(const BinnedView& X, const IntervalTargets& y, const IntervalTreeOptions& opt);
    Tree fit();

private:
    const BinnedView& X_;
    IntervalTreeOptions opt_;
    index_t m_ = 0, d_ = 0;
    std::vector<index_t> rows_;  // selected row -> row of the binned matrix
    std::vector<double> lo_, hi_, w_, c_;
    double min_weight_leaf_ = 0.0;
    Tree tree_;
    std::vector<index_t> leaf_of_;  // selected row -> leaf node of the current tree

    std::uint8_t code(index_t j, index_t r) const { return X_.codes[j * X_.n_rows + rows_[size_t(r)]]; }
    index_t grow(std::vector<index_t>& idx, int depth);
    Split best_split(const std::vector<index_t>& idx, double W, double S) const;
    void set_leaf_values();
};

IntervalBuilder::IntervalBuilder(const BinnedView& X, const IntervalTargets& y,
                                 const IntervalTreeOptions& opt)
    : X_(X), opt_(opt) {
    detail::check_binned_view(X);
    require(opt.min_samples_leaf >= 1, "min_samples_leaf: expected an integer >= 1");
    require(opt.min_samples_split >= 2, "min_samples_split: expected an integer >= 2");
    require(opt.min_weight_fraction_leaf >= 0 && opt.min_weight_fraction_leaf <= 0.5,
            "min_weight_fraction_leaf: expected a number in [0, 0.5]");
    require(opt.rounds >= 1, "rounds: expected an integer >= 1");
    require(y.lo != nullptr && y.hi != nullptr, "targets: expected interval ends lo and hi");
    d_ = X.n_features;
    m_ = X.rows ? X.n_selected : X.n_rows;
    require(m_ >= 1, "rows: expected at least one selected row");
    rows_.resize(size_t(m_));
    for (index_t r = 0; r < m_; ++r) {
        const index_t p = X.rows ? X.rows[r] : r;
        require(p >= 0 && p < X.n_rows, "rows: index out of range");
        rows_[size_t(r)] = p;
    }
    lo_.assign(y.lo, y.lo + m_);
    hi_.assign(y.hi, y.hi + m_);
    w_.assign(size_t(m_), 1.0);
    double total = 0.0;
    for (index_t r = 0; r < m_; ++r) {
        if (!std::isfinite(lo_[size_t(r)]) || !std::isfinite(hi_[size_t(r)]) ||
            lo_[size_t(r)] > hi_[size_t(r)]) {
            std::ostringstream msg;
            msg << "targets: row " << r << " has the interval [" << lo_[size_t(r)] << ", " << hi_[size_t(r)]
                << "]; expected finite ends with lo <= hi";
            throw std::invalid_argument(msg.str());
        }
        if (y.sample_weight) {
            const double v = y.sample_weight[r];
            require(std::isfinite(v) && v >= 0, "sample_weight: expected finite, non-negative weights");
            w_[size_t(r)] = v;
        }
        total += w_[size_t(r)];
    }
    require(total > 0, "sample_weight: the rows to fit have zero total weight");
    min_weight_leaf_ = opt.min_weight_fraction_leaf * total;
    c_.resize(size_t(m_));
    for (index_t r = 0; r < m_; ++r) c_[size_t(r)] = lo_[size_t(r)] / 2.0 + hi_[size_t(r)] / 2.0;
    leaf_of_.assign(size_t(m_), 0);
}

Split IntervalBuilder::best_split(const std::vector<index_t>& idx, double W, double S) const {
    Split best;
    const double msl = double(opt_.min_samples_leaf);
    // Per-bin sums (weight, weighted target, count); slot nb holds missing values.
    std::vector<double> hw(kBinSlots + 1), hs(kBinSlots + 1), hc(kBinSlots + 1);
    for (index_t j = 0; j < d_; ++j) {
        const int nb = X_.n_bins[j];
        std::fill(hw.begin(), hw.begin() + nb + 1, 0.0);
        std::fill(hs.begin(), hs.begin() + nb + 1, 0.0);
        std::fill(hc.begin(), hc.begin() + nb + 1, 0.0);
        // Rows of zero weight are invisible (as if removed): they neither
        // occupy a bin nor count towards min_samples_leaf.
        double cnt = 0.0;
        for (index_t r : idx) {
            const double w = w_[size_t(r)];
            if (!(w > 0)) continue;
            const int b = code(j, r);
            hw[size_t(b)] += w;
            hs[size_t(b)] += w * c_[size_t(r)];
            hc[size_t(b)] += 1.0;
            cnt += 1.0;
        }
        const double mw = hw[size_t(nb)], ms = hs[size_t(nb)], mc = hc[size_t(nb)];
        const bool has_missing = mc > 0.5;
        auto consider = [&](double lw, double ls, double lc, int bin, int next, bool missing_left) {
            const double rw = W - lw, rs = S - ls, rc = cnt - lc;
            if (lc < msl || rc < msl || lw <= 0 || rw <= 0) return;
            if (lw < min_weight_leaf_ || rw < min_weight_leaf_) return;
            const double gain = ls * ls / lw + rs * rs / rw;
            if (!best.found || gain > best.gain) {
                best.found = true;
                best.gain = gain;
                best.feature = j;
                best.bin = bin;
                best.next = next;
                best.missing_left = missing_left;
            }
        };
        double lw = 0, ls = 0, lc = 0;
        int prev = -1;
        for (int b = 0; b < nb; ++b) {
            if (hc[size_t(b)] < 0.5) continue;
            if (prev >= 0) {
                if (has_missing) {
                    consider(lw, ls, lc, prev, b, false);
                    consider(lw + mw, ls + ms, lc + mc, prev, b, true);
                } else {
                    // No missing values here: unseen ones follow the child with more rows.
                    consider(lw, ls, lc, prev, b, lc >= cnt - lc);
                }
            }
            lw += hw[size_t(b)];
            ls += hs[size_t(b)];
            lc += hc[size_t(b)];
            prev = b;
        }
        if (has_missing && prev >= 0) consider(lw, ls, lc, prev, -1, false);  // every value | missing
    }
    // A split must reduce the squared error (beyond rounding).
    if (best.found && !(best.gain > S * S / W + 1e-12 * std::max(1.0, std::fabs(S * S / W))))
        best.found = false;
    if (best.found) {
        // Midway between the values either side of the cut (as the classifier does).
        best.threshold = detail::cut_threshold(X_.bin_lo, X_.bin_hi, best.feature, best.bin, best.next);
    }
    return best;
}

index_t IntervalBuilder::grow(std::vector<index_t>& idx, int depth) {
    Tree& t = tree_;
    const index_t id = t.node_count();
    double W = 0, S = 0, Q = 0;
    index_t cnt = 0;  // rows of positive weight
    for (index_t r : idx) {
        const double w = w_[size_t(r)], c = c_[size_t(r)];
        W += w;
        S += w * c;
        Q += w * c * c;
        cnt += w > 0;
    }
    const double mean = W > 0 ? S / W : 0.0;
    detail::push_unsplit_node(t);
    t.value.push_back(mean);
    t.n_node_samples.push_back(index_t(idx.size()));
    t.weighted_n_node_samples.push_back(W);
    t.impurity.push_back(W > 0 ? std::max(0.0, Q / W - mean * mean) : 0.0);
    t.max_depth = std::max(t.max_depth, depth);

    const bool splittable = (opt_.max_depth < 0 || depth < opt_.max_depth) && cnt >= opt_.min_samples_split &&
                            cnt >= 2 * opt_.min_samples_leaf && t.impurity.back() > 0.0;
    Split s;
    if (splittable) s = best_split(idx, W, S);
    if (!s.found) {
        for (index_t r : idx) leaf_of_[size_t(r)] = id;
        return id;
    }
    const int nb = X_.n_bins[s.feature];
    std::vector<index_t> left, right;
    left.reserve(idx.size());
    right.reserve(idx.size());
    for (index_t r : idx) {
        const int b = code(s.feature, r);
        const bool go_left = b == nb ? s.missing_left : b <= s.bin;
        (go_left ? left : right).push_back(r);
    }
    std::vector<index_t>().swap(idx);  // free the parent's list before recursing
    t.feature[size_t(id)] = s.feature;
    t.threshold[size_t(id)] = s.threshold;
    t.missing_left[size_t(id)] = s.missing_left ? 1 : 0;
    t.split_bin[size_t(id)] = s.bin;
    const index_t l = grow(left, depth + 1);
    t.left[size_t(id)] = l;
    const index_t r = grow(right, depth + 1);
    t.right[size_t(id)] = r;
    return id;
}

void IntervalBuilder::set_leaf_values() {
    const index_t nodes = tree_.node_count();
    std::vector<std::vector<index_t>> members(static_cast<size_t>(nodes));
    for (index_t r = 0; r < m_; ++r) members[size_t(leaf_of_[size_t(r)])].push_back(r);
    std::vector<double> lo, hi, w;
    for (index_t k = 0; k < nodes; ++k) {
        const auto& mem = members[size_t(k)];
        if (mem.empty()) continue;
        lo.clear();
        hi.clear();
        w.clear();
        double W = 0, S = 0;
        for (index_t r : mem) {
            lo.push_back(lo_[size_t(r)]);
            hi.push_back(hi_[size_t(r)]);
            w.push_back(w_[size_t(r)]);
            W += w_[size_t(r)];
            S += w_[size_t(r)] * c_[size_t(r)];
        }
        if (W <= 0) continue;  // a leaf of zero-weight rows keeps its mean
        tree_.value[size_t(k)] =
            interval_leaf_value(lo.data(), hi.data(), w.data(), index_t(mem.size()), S / W);
    }
}

Tree IntervalBuilder::fit() {
    for (int round = 0; round < opt_.rounds; ++round) {
        if (round > 0) {
            // Targets: the nearest allowed value to the current prediction.
            for (index_t r = 0; r < m_; ++r) {
                const double v = tree_.value[size_t(leaf_of_[size_t(r)])];
                c_[size_t(r)] = std::min(std::max(v, lo_[size_t(r)]), hi_[size_t(r)]);
            }
        }
        tree_ = Tree();
        tree_.n_features = d_;
        tree_.n_classes = 1;
        std::vector<index_t> idx(static_cast<size_t>(m_));
        std::iota(idx.begin(), idx.end(), index_t(0));
        grow(idx, 0);
        set_leaf_values();
    }
    return std::move(tree_);
}

}  // namespace

double interval_leaf_value(const double* lo, const double* hi, const double* w, index_t n, double hint) {
    require(n >= 1, "interval_leaf_value: expected at least one row");
    // phi(v) = sum_i w_i (v - clip(v, lo_i, hi_i)) is half the derivative of
    // the loss: continuous, non-decreasing and piecewise linear with
    // breakpoints at the interval ends. Its zero set [vmin, vmax] holds the
    // minimisers.
    std::vector<std::pair<double, double>> L(static_cast<size_t>(n)), H(static_cast<size_t>(n));
    double total = 0.0;
    for (index_t i = 0; i < n; ++i) {
        L[size_t(i)] = {lo[i], w[i]};
        H[size_t(i)] = {hi[i], w[i]};
        total += w[i];
    }
    require(total > 0, "interval_leaf_value: expected a positive total weight");
    std::sort(L.begin(), L.end());
    std::sort(H.begin(), H.end());
    // Prefix sums of weight and weight * end over the sorted ends.
    std::vector<double> lw(size_t(n) + 1, 0.0), ls(size_t(n) + 1, 0.0), hw(size_t(n) + 1, 0.0),
        hs(size_t(n) + 1, 0.0);
    for (index_t i = 0; i < n; ++i) {
        lw[size_t(i) + 1] = lw[size_t(i)] + L[size_t(i)].second;
        ls[size_t(i) + 1] = ls[size_t(i)] + L[size_t(i)].second * L[size_t(i)].first;
        hw[size_t(i) + 1] = hw[size_t(i)] + H[size_t(i)].second;
        hs[size_t(i) + 1] = hs[size_t(i)] + H[size_t(i)].second * H[size_t(i)].first;
    }
    // (A, B) with phi(v) = A v - B for the rows strictly below / above v.
    auto coef = [&](double v, double* A, double* B) {
        // hi_i < v
        const size_t a = size_t(std::lower_bound(H.begin(), H.end(), std::make_pair(v, -kInf)) - H.begin());
        // lo_i > v
        const size_t b = size_t(std::upper_bound(L.begin(), L.end(), std::make_pair(v, kInf)) - L.begin());
        const double wa = hw[a], sa = hs[a];
        const double wb = lw[size_t(n)] - lw[b], sb = ls[size_t(n)] - ls[b];
        *A = wa + wb;
        *B = sa + sb;
    };
    auto phi = [&](double v) {
        double A, B;
        coef(v, &A, &B);
        return A * v - B;
    };
    std::vector<double> bp;
    bp.reserve(size_t(2 * n));
    for (const auto& p : L) bp.push_back(p.first);
    for (const auto& p : H) bp.push_back(p.first);
    std::sort(bp.begin(), bp.end());
    bp.erase(std::unique(bp.begin(), bp.end()), bp.end());
    const size_t K = bp.size();
    // The root of phi on the open segment (a, b), clipped into [a, b].
    auto segment_root = [&](double a, double b) {
        double A, B;
        coef(a / 2.0 + b / 2.0, &A, &B);
        if (A <= 0) return a;
        return std::min(std::max(B / A, a), b);
    };
    // vmin: left of the first breakpoint where phi >= 0.
    size_t lo_i = 0, hi_i = K;  // first index with phi(bp) >= 0 (phi(bp[K-1]) >= 0 always)
    while (lo_i < hi_i) {
        const size_t mid = (lo_i + hi_i) / 2;
        if (phi(bp[mid]) >= 0)
            hi_i = mid;
        else
            lo_i = mid + 1;
    }
    const size_t r = std::min(lo_i, K - 1);
    const double vmin = r == 0 ? bp[0] : segment_root(bp[r - 1], bp[r]);
    // vmax: right of the last breakpoint where phi <= 0.
    lo_i = 0;
    hi_i = K;  // first index with phi(bp) > 0
    while (lo_i < hi_i) {
        const size_t mid = (lo_i + hi_i) / 2;
        if (phi(bp[mid]) > 0)
            hi_i = mid;
        else
            lo_i = mid + 1;
    }
    const double vmax = lo_i == 0 ? bp[0] : (lo_i >= K ? bp[K - 1] : segment_root(bp[lo_i - 1], bp[lo_i]));
    return std::min(std::max(hint, vmin), std::max(vmin, vmax));
}

Tree fit_interval_tree(const BinnedView& X, const IntervalTargets& y, const IntervalTreeOptions& opt) {
    IntervalBuilder b(X, y, opt);
    return b.fit();
}

}  // namespace crembo
