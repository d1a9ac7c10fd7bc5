// The MEMO search: binary search over candidate thresholds with a
// consistency oracle. The student fit itself is a callback; everything else
// (targets, weights, violation bookkeeping, stopping) lives here.
// The algorithm: docs/ALGORITHMS.md, section 2.
#include "crembo/core.hpp"
#include "crembo/detail/checks.hpp"
#include "crembo/detail/level_search.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace crembo {

namespace {

void check_options(const MemoOptions& opt) {
    if (opt.max_rounds < 1) throw std::invalid_argument("max_rounds: expected at least 1");
    if (!(opt.eta > 0.0) || !std::isfinite(opt.eta))
        throw std::invalid_argument("eta: expected a positive, finite weight growth");
    if (!(opt.delta >= 0.0 && opt.delta < 1.0))
        throw std::invalid_argument("delta: expected a fraction in [0, 1)");
    if (opt.patience < 0) throw std::invalid_argument("patience: expected a non-negative number of rounds");
}

void check_student_labels(const label_t* pred, index_t n, index_t C) {
    for (index_t i = 0; i < n; ++i) {
        if (pred[i] < 0 || pred[i] >= C) {
            std::ostringstream msg;
            msg << "the student predicted label index " << pred[i] << " at point " << i << ", outside [0, "
                << C << ")";
            throw std::invalid_argument(msg.str());
        }
    }
}

}  // namespace

template <class T>
OracleResult consistency_oracle(const T* P, index_t n, index_t C, T t, const MemoOptions& opt,
                                const FitLabelsFn& fit_labels, const FitMaskFn& fit_mask,
                                const double* base_weights, const label_t* prefer, bool feasibility) {
    check_options(opt);
    detail::check_shape(n, C);
    const index_t tolerated = detail::tolerated_violations(n, opt.delta);
    OracleResult res;
    res.pred.assign(static_cast<size_t>(n), 0);

    if (opt.oracle == Oracle::SingleFit) {
        if (!fit_mask) throw std::invalid_argument("fit_mask: the single-fit oracle needs a mask fit");
        std::vector<std::uint8_t> mask(static_cast<size_t>(n * C));
        allowed_labels(P, n, C, t, mask.data());
        fit_mask(mask.data(), res.pred.data());
        check_student_labels(res.pred.data(), n, C);
        res.rounds = 1;
        res.violations = count_violations(P, n, C, res.pred.data(), t);
        res.consistent = res.violations <= tolerated;
        return res;
    }

    if (!fit_labels) throw std::invalid_argument("fit_labels: the reweighting oracle needs a label fit");
    std::vector<label_t> targets(static_cast<size_t>(n));
    const index_t empty = allowed_targets(P, n, C, t, prefer, targets.data());
    if (empty > tolerated) {
        // Some allowed sets are empty: no student can be consistent here.
        res.violations = empty;
        return res;
    }
    // The few rows with an empty allowed set (tolerated violations) learn
    // their most likely label.
    for (index_t i = 0; empty > 0 && i < n; ++i)
        if (targets[i] < 0) row_argmax<T>(P + i * C, 1, C, &targets[i], nullptr);
    std::vector<double> w(static_cast<size_t>(n), 1.0);
    if (base_weights) {
        double total = 0.0;
        for (index_t i = 0; i < n; ++i) {
            if (!(base_weights[i] >= 0.0) || !std::isfinite(base_weights[i]))
                throw std::invalid_argument("sample_weight: expected finite, non-negative weights");
            w[i] = base_weights[i];
            total += w[i];
        }
        // All zero, the reweighting would have nothing to scale (and
        // students fall back to unweighted fits).
        if (!(total > 0.0))
            throw std::invalid_argument("sample_weight: expected at least one positive weight");
    }
    double grow = 1.0 + opt.eta;
    index_t best_viol = n + 1, first_viol = 0;
    const int hopeless_from = std::max(2, opt.max_rounds / 4 - 1);  // a round index
    const index_t hopeless_count = std::max<index_t>(kHopelessMin, index_t(kHopelessShare * double(n)));
    int stalled = 0;
    for (int r = 0; r < opt.max_rounds; ++r) {
        fit_labels(targets.data(), w.data(), res.pred.data());
        check_student_labels(res.pred.data(), n, C);
        res.rounds = r + 1;
        index_t viol = 0;
        for (index_t i = 0; i < n; ++i) {
            const label_t h = res.pred[i];
            if (P[i * C + h] >= t)
                targets[i] = h;  // lock in the student's own allowed choice: fewer conflicts
            else
                ++viol;
        }
        res.violations = viol;
        if (viol <= tolerated) {
            res.consistent = true;
            res.weights = std::move(w);
            return res;
        }
        // The feasibility probe (the easiest threshold; its failure ends the
        // search) is given up as hopeless when, once a quarter of its rounds
        // (and at least three) are spent, a large share of the points (and
        // many of them) still violates and the reweighting has not brought
        // the count below the first round's: on 10^5 rows and more, 8 rounds
        // there cost as much as the rest of the search. (On a few hundred
        // rows, first probes with dozens of violations were seen to succeed
        // after 20 rounds: kHopelessMin leaves them alone.)
        if (r == 0) first_viol = viol;
        if (feasibility && r >= hopeless_from && viol >= first_viol && viol > hopeless_count) {
            res.weights = std::move(w);
            return res;
        }
        // A threshold where the weights stopped helping is given up early:
        // the remaining rounds would most likely be spent in vain.
        const bool progress = viol < best_viol;
        if (progress) {
            best_viol = viol;
            stalled = 0;
        } else if (opt.patience > 0 && ++stalled >= opt.patience) {
            res.weights = std::move(w);
            return res;
        }
        // adaptive_eta: a round without fewer violations than the best so far
        // means the violating points are not yet heavy enough to move the
        // fit, so their growth compounds (bounded, so weights stay finite).
        if (opt.adaptive_eta) grow = progress ? 1.0 + opt.eta : std::min(grow * (1.0 + opt.eta), 1e6);
        double total = 0.0;
        for (index_t i = 0; i < n; ++i) {
            if (P[i * C + res.pred[i]] < t) w[i] *= grow;
            total += w[i];
        }
        // Keep the weights' mean at its starting scale so that students with
        // absolute weight thresholds (min_weight_fraction_leaf, ...) behave.
        if (total > 0) {
            const double scale = double(n) / total;
            for (auto& x : w) x *= scale;
        }
    }
    res.weights = std::move(w);
    return res;
}

template <class T>
MemoResult memo_search(const T* P, index_t n, index_t C, const T* candidates, index_t k,
                       const MemoOptions& opt, const FitLabelsFn& fit_labels, const FitMaskFn& fit_mask,
                       const AcceptFn& accept, const double* base_weights) {
    check_options(opt);
    if (k < 0) throw std::invalid_argument("candidates: expected a non-negative count");
    for (index_t j = 0; j < k; ++j) {
        if (!std::isfinite(candidates[j]) || candidates[j] <= 0)
            throw std::invalid_argument("candidates: expected finite, positive thresholds");
        if (j > 0 && !(candidates[j] > candidates[j - 1]))
            throw std::invalid_argument("candidates: expected strictly increasing thresholds");
    }
    MemoResult out;
    // Consistency is monotone in the threshold (allowed sets only shrink as
    // it grows), so a failure at the smallest candidate ends the search: with
    // near one-hot beliefs that saves the log2(k) - 1 failing probes of a
    // plain binary search, at the price of one extra (easy) probe otherwise.
    // That first probe is a feasibility check only: at the smallest
    // threshold almost any student passes, so its predictions are not used
    // to choose later targets (the search above it is the plain one).
    // warm_start: the weights the last successful probe ended with (base
    // weights folded in).
    std::vector<double> carried;
    auto probe = [&](index_t mid, bool prefer_best, bool first) {
        OracleResult r = consistency_oracle(P, n, C, candidates[mid], opt, fit_labels, fit_mask,
                                            carried.empty() ? base_weights : carried.data(),
                                            prefer_best ? out.best_pred.data() : nullptr, first);
        // Only a success is carried: a failed probe's weights pile up on
        // points that no student could fit at that level, and starting the
        // next (lower) probe from them skews its student towards those few
        // points.
        if (opt.warm_start && r.consistent && opt.oracle == Oracle::Reweight &&
            r.weights.size() == static_cast<size_t>(n))
            carried = std::move(r.weights);
        return r;
    };
    auto keep = [&](index_t mid, OracleResult& r) {
        out.best_candidate = mid;
        out.best_threshold = double(candidates[mid]);
        out.best_pred = std::move(r.pred);
    };
    if (opt.search == Search::Binary) {
        detail::level_search(candidates, k, opt.probe_lowest, accept, out.trace, out.n_fits, probe, keep);
        return out;
    }
    // The deepest candidate a consistent student reaches: the largest one
    // at or below the (tolerated + 1)-th smallest belief of its predictions.
    const index_t rank = detail::insensitive_rank(n, opt.delta);
    std::vector<T> depth(static_cast<size_t>(n));
    auto reached = [&](const OracleResult& r) {
        for (index_t i = 0; i < n; ++i) depth[i] = P[i * C + r.pred[i]];
        std::nth_element(depth.begin(), depth.begin() + rank, depth.end());
        const T level = depth[rank];
        return index_t(std::upper_bound(candidates, candidates + k, level) - candidates) - 1;
    };
    detail::gallop_search(candidates, k, accept, out.trace, out.n_fits, probe, keep, reached);
    return out;
}

#define CREMBO_INSTANTIATE(T)                                                                             \
    template OracleResult consistency_oracle<T>(const T*, index_t, index_t, T, const MemoOptions&,        \
                                                const FitLabelsFn&, const FitMaskFn&, const double*,      \
                                                const label_t*, bool);                                    \
    template MemoResult memo_search<T>(const T*, index_t, index_t, const T*, index_t, const MemoOptions&, \
                                       const FitLabelsFn&, const FitMaskFn&, const AcceptFn&,             \
                                       const double*);

CREMBO_INSTANTIATE(float)
CREMBO_INSTANTIATE(double)
#undef CREMBO_INSTANTIATE

}  // namespace crembo
