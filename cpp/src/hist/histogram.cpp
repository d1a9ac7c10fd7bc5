// Histograms of target mass (crembo/detail/histogram.hpp).
#include "crembo/detail/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "crembo/detail/checks.hpp"
#include "crembo/detail/parallel.hpp"

namespace crembo {
namespace detail {

HistLayout::HistLayout(const std::int32_t* n_bins, index_t n_features, index_t n_classes)
    : n_classes_(n_classes) {
    offset_.resize(size_t(n_features + 1));
    offset_[0] = 0;
    for (index_t j = 0; j < n_features; ++j) offset_[size_t(j + 1)] = offset_[size_t(j)] + n_bins[j] + 1;
}

RowTargets prepare_targets(const TreeTargets& y, index_t m, SplitCriterion criterion,
                           std::vector<index_t>& fit_rows, double& total) {
    require(y.n_classes >= 1, "n_classes: expected at least one class");
    const index_t C = y.n_classes;
    const bool labels = y.labels != nullptr;
    require(labels || y.allowed != nullptr, "targets: expected labels or an allowed-label mask");
    RowTargets t;
    t.n_classes = C;
    std::vector<double> cw(size_t(C), 1.0);
    if (y.class_weight)
        for (index_t c = 0; c < C; ++c) {
            require(std::isfinite(y.class_weight[c]) && y.class_weight[c] >= 0,
                    "class_weight: expected finite, non-negative weights");
            cw[size_t(c)] = y.class_weight[c];
        }
    auto weight = [&](index_t r) {
        if (!y.sample_weight) return 1.0;
        const double w = y.sample_weight[r];
        if (!(std::isfinite(w) && w >= 0)) {
            std::ostringstream msg;
            msg << "sample_weight[" << r << "] = " << w << ": expected a finite, non-negative weight";
            throw std::invalid_argument(msg.str());
        }
        return w;
    };
    t.omega.resize(size_t(m));
    fit_rows.clear();
    fit_rows.reserve(size_t(m));
    total = 0.0;
    if (labels) {
        t.y.resize(size_t(m));
        for (index_t r = 0; r < m; ++r) {
            const label_t c = y.labels[r];
            if (c < 0 || c >= C) detail::bad_label("y", r, c, C);
            const double w = weight(r);
            t.y[size_t(r)] = c;
            t.omega[size_t(r)] = w * cw[size_t(c)];
            total += t.omega[size_t(r)];
            // Rows of zero weight are left out, as scikit-learn's splitter
            // does: a zero weight is the same as removing the row.
            if (t.omega[size_t(r)] > 0) fit_rows.push_back(r);
        }
    } else {
        t.rp.assign(size_t(m + 1), 0);
        size_t n_entries = 0;
        for (index_t k = 0; k < m * C; ++k) n_entries += y.allowed[k] != 0;
        t.entries.reserve(n_entries);
        t.emass.reserve(n_entries);
        bool any_set = false;
        for (index_t r = 0; r < m; ++r) {
            const std::uint8_t* row = y.allowed + r * C;
            const double w = weight(r);
            index_t k = 0;
            double cws = 0.0;
            for (index_t c = 0; c < C; ++c)
                if (row[c]) {
                    ++k;
                    cws += cw[size_t(c)];
                }
            if (k > 0) {
                any_set = true;
                for (index_t c = 0; c < C; ++c)
                    if (row[c]) {
                        t.emass.push_back(w * cw[size_t(c)]);
                        t.entries.push_back(RowTargets::Entry{2 + c, criterion == SplitCriterion::SpreadGini
                                                                         ? w * cw[size_t(c)] / double(k)
                                                                         : w * cw[size_t(c)]});
                    }
                t.omega[size_t(r)] = w * cws / double(k);
                total += t.omega[size_t(r)];
                // Rows with an empty set have no target; rows of zero weight
                // are left out as if removed.
                if (t.omega[size_t(r)] > 0) fit_rows.push_back(r);
            }
            t.rp[size_t(r + 1)] = static_cast<index_t>(t.entries.size());
        }
        require(any_set, "allowed: every row has an empty allowed set; there is nothing to fit");
    }
    return t;
}

Totals node_totals(const RowTargets& t, const index_t* rows, index_t n) {
    const index_t C = t.n_classes;
    const bool labels = t.labels();
    Totals s;
    s.channel.assign(size_t(C), 0.0);
    if (!labels) s.mass.assign(size_t(C), 0.0);
    s.allow.assign(size_t(C), 0);
    double W = 0.0;
    double* channel = s.channel.data();
    double* mass = s.mass.data();
    index_t* allow = s.allow.data();
    for (index_t k = 0; k < n; ++k) {
        const index_t p = rows[k];
        const double om = t.omega[size_t(p)];
        W += om;
        if (labels) {
            const label_t c = t.y[size_t(p)];
            channel[c] += om;
            allow[c] += 1;
        } else {
            for (index_t e = t.rp[size_t(p)]; e < t.rp[size_t(p + 1)]; ++e) {
                const index_t c = t.entries[size_t(e)].slot - 2;
                channel[c] += t.entries[size_t(e)].value;
                mass[c] += t.emass[size_t(e)];
                allow[c] += 1;
            }
        }
    }
    s.W = W;
    s.cnt = n;
    return s;
}

void add_totals(Totals& a, const Totals& b) {
    a.W += b.W;
    a.cnt += b.cnt;
    if (a.channel.empty()) {
        a.channel.assign(b.channel.size(), 0.0);
        a.mass.assign(b.mass.size(), 0.0);
        a.allow.assign(b.allow.size(), 0);
    }
    require(a.channel.size() == b.channel.size() && a.mass.size() == b.mass.size(),
            "totals: expected the same classes and target kind");
    for (size_t c = 0; c < a.channel.size(); ++c) {
        a.channel[c] += b.channel[c];
        a.allow[c] += b.allow[c];
    }
    for (size_t c = 0; c < a.mass.size(); ++c) a.mass[c] += b.mass[c];
}

Totals minus(const Totals& a, const Totals& b) {
    Totals t = a;
    t.W -= b.W;
    t.cnt -= b.cnt;
    for (size_t c = 0; c < t.channel.size(); ++c) {
        t.channel[c] = std::max(0.0, t.channel[c] - b.channel[c]);
        t.allow[c] -= b.allow[c];
    }
    for (size_t c = 0; c < t.mass.size(); ++c) t.mass[c] = std::max(0.0, t.mass[c] - b.mass[c]);
    if (t.cnt == 0) t.W = 0.0;  // no rounding residue on an empty side
    return t;
}

void build_histogram(const HistLayout& layout, const std::uint8_t* codes, index_t m, const RowTargets& t,
                     const index_t* rows, index_t n, double* h, int threads) {
    const index_t d = layout.n_features(), S = layout.stride();
    const bool par = threads > 1 && n * d >= kParallelWork;
    parallel_for(d, par ? threads : 1, [&](index_t j, int) {
        double* hj = h + layout.feature_offset(j);
        std::fill(hj, hj + (layout.n_bins(j) + 1) * S, 0.0);
        const std::uint8_t* col = codes + j * m;
        if (t.labels()) {
            const label_t* y = t.y.data();
            const double* om = t.omega.data();
            for (index_t k = 0; k < n; ++k) {
                const index_t p = rows[k];
                add_label_row(hj + index_t(col[p]) * S, y[p], om[p]);
            }
        } else {
            for (index_t k = 0; k < n; ++k) {
                const index_t p = rows[k];
                add_row(hj + index_t(col[p]) * S, t, p);
            }
        }
    });
}

void build_histogram_ordered(const HistLayout& layout, const std::uint8_t* row_codes, const label_t* y,
                             const double* w, index_t n, double* h, int threads) {
    const index_t d = layout.n_features(), S = layout.stride();
    const bool par = threads > 1 && n * d >= kParallelWork;
    // One contiguous group of features per thread.
    const index_t groups = par ? std::min<index_t>(threads, d) : 1;
    parallel_for(groups, int(groups), [&](index_t g, int) {
        const index_t j0 = d * g / groups, j1 = d * (g + 1) / groups, nj = j1 - j0;
        std::vector<double*> base(static_cast<size_t>(nj));
        for (index_t j = j0; j < j1; ++j) {
            double* hj = h + layout.feature_offset(j);
            std::fill(hj, hj + (layout.n_bins(j) + 1) * S, 0.0);
            base[size_t(j - j0)] = hj;
        }
        double* const* hb = base.data();
        for (index_t k = 0; k < n; ++k) {
            const std::uint8_t* r = row_codes + k * d + j0;
            const double wk = w[k];
            const label_t yk = y[k];
            for (index_t q = 0; q < nj; ++q) add_label_row(hb[q] + index_t(r[q]) * S, yk, wk);
        }
    });
}

void subtract_histogram(const HistLayout& layout, double* big, const double* small) {
    const index_t H = layout.size();
    for (index_t k = 0; k < H; ++k) big[k] -= small[k];
}

}  // namespace detail
}  // namespace crembo
