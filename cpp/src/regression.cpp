// Kernels and the reweighting MEMO loop for regression (deep hypotheses on
// real-valued predictions). The definitions are in crembo/regression.hpp and
// docs/regression.md.
#include "crembo/regression.hpp"

#include "crembo/detail/checks.hpp"
#include "crembo/detail/level_search.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#ifdef CREMBO_WITH_OPENMP
#include <omp.h>
#endif

namespace crembo {

namespace {

using detail::require;

constexpr index_t kParallelMin = 1 << 16;

int threads_for(index_t work) { return work < kParallelMin ? 1 : get_num_threads(); }

void check_shape(index_t n, index_t m) {
    require(n >= 1, "hypotheses: expected at least one point (n >= 1)");
    require(m >= 1, "hypotheses: expected at least one hypothesis (m >= 1)");
}

void check_level(double t) {
    if (!(t > 0.0 && t <= 0.5)) {
        std::ostringstream msg;
        msg << "t: expected a level in (0, 1/2], got " << t;
        throw std::invalid_argument(msg.str());
    }
}

void check_tol(double tol) {
    require(tol >= 0.0 && std::isfinite(tol), "tol: expected a finite, non-negative tolerance");
}

template <class T>
void check_predictions(const char* arg, const T* pred, index_t n) {
    index_t bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : bad)
#endif
    for (index_t i = 0; i < n; ++i)
        if (!std::isfinite(pred[i])) bad = std::min(bad, i);
    if (bad < n) {
        std::ostringstream msg;
        msg << arg << "[" << bad << "] = " << pred[bad] << " is not finite";
        throw std::invalid_argument(msg.str());
    }
}

// eps_i of a row (see regression.hpp); the row need not be sorted.
template <class T>
double row_eps(const T* row, index_t m, double tol) {
    if (tol == 0.0) return 0.0;
    double big = 1.0;
    for (index_t j = 0; j < m; ++j) big = std::max(big, std::fabs(double(row[j])));
    return tol * big;
}

// Same, from a sorted row: the largest magnitude is at one of the ends.
template <class T>
double sorted_eps(const T* row, index_t m, double tol) {
    if (tol == 0.0) return 0.0;
    return tol * std::max({1.0, std::fabs(double(row[0])), std::fabs(double(row[m - 1]))});
}

// min(below(v), above(v)) on an unsorted row.
template <class T>
index_t depth_count(const T* row, index_t m, double v, double eps) {
    index_t below = 0, above = 0;
    for (index_t j = 0; j < m; ++j) {
        const double h = double(row[j]);
        below += h <= v + eps;
        above += h >= v - eps;
    }
    return std::min(below, above);
}

// Same on a sorted row, by binary search.
template <class T>
index_t sorted_depth_count(const T* row, index_t m, double v, double eps) {
    const double up = v + eps, down = v - eps;
    const index_t below =
        std::upper_bound(row, row + m, up, [](double x, T h) { return x < double(h); }) - row;
    const index_t above =
        row + m - std::lower_bound(row, row + m, down, [](T h, double x) { return double(h) < x; });
    return std::min(below, above);
}

}  // namespace

// ------------------------------------------------------------- hypotheses
template <class T>
void check_hypotheses(const T* H, index_t n, index_t m) {
    check_shape(n, m);
    index_t bad = n * m;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n* m)) reduction(min : bad)
#endif
    for (index_t i = 0; i < n * m; ++i)
        if (!std::isfinite(H[i])) bad = std::min(bad, i);
    if (bad < n * m) {
        std::ostringstream msg;
        msg << "hypotheses[" << bad / m << ", " << bad % m << "] = " << H[bad] << " is not finite";
        throw std::invalid_argument(msg.str());
    }
}

template <class T>
void sort_hypotheses(const T* H, index_t n, index_t m, T* out) {
    check_hypotheses(H, n, m);
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n* m))
#endif
    for (index_t i = 0; i < n; ++i) {
        T* row = out + i * m;
        if (out != H) std::copy(H + i * m, H + (i + 1) * m, row);
        std::sort(row, row + m);
    }
}

template <class T>
void check_sorted_hypotheses(const T* S, index_t n, index_t m) {
    check_hypotheses(S, n, m);
    index_t bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n* m)) reduction(min : bad)
#endif
    for (index_t i = 0; i < n; ++i)
        if (!std::is_sorted(S + i * m, S + (i + 1) * m)) bad = std::min(bad, i);
    if (bad < n) {
        std::ostringstream msg;
        msg << "sorted hypotheses: row " << bad << " is not sorted ascending (sort it with sort_hypotheses)";
        throw std::invalid_argument(msg.str());
    }
}

// ------------------------------------------------------------- intervals
template <class T>
void hypothesis_intervals(const T* S, index_t n, index_t m, double t, T* lo, T* hi) {
    check_sorted_hypotheses(S, n, m);
    const index_t k = interval_rank(m, t);
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n * 8))
#endif
    for (index_t i = 0; i < n; ++i) {
        lo[i] = S[i * m + k - 1];
        hi[i] = S[i * m + m - k];
    }
}

template <class T>
void hypothesis_medians(const T* S, index_t n, index_t m, T* out) {
    check_sorted_hypotheses(S, n, m);
    for (index_t i = 0; i < n; ++i) {
        const T* row = S + i * m;
        out[i] = T((double(row[(m - 1) / 2]) + double(row[m / 2])) / 2.0);
    }
}

template <class T>
void clip_to_intervals(const T* S, index_t n, index_t m, double t, const T* prefer, T* out) {
    check_sorted_hypotheses(S, n, m);
    if (prefer) check_predictions("prefer", prefer, n);
    const index_t k = interval_rank(m, t);
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n * 8))
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = S + i * m;
        const T lo = row[k - 1], hi = row[m - k];
        T v = prefer ? prefer[i] : T((double(row[(m - 1) / 2]) + double(row[m / 2])) / 2.0);
        // A float32 median can round just outside a one-point interval.
        out[i] = std::min(std::max(v, lo), hi);
    }
}

// ------------------------------------------------------------------ depth
template <class T>
void hypothesis_point_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double* out) {
    check_hypotheses(H, n, m);
    check_tol(tol);
    check_predictions("pred", pred, n);
    const double dm = double(m);
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n* m))
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = H + i * m;
        out[i] = double(depth_count(row, m, double(pred[i]), row_eps(row, m, tol))) / dm;
    }
}

template <class T>
double hypothesis_empirical_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double delta) {
    const index_t rank = detail::insensitive_rank(n, delta);
    std::vector<double> d(static_cast<size_t>(n));
    hypothesis_point_depth(H, n, m, pred, tol, d.data());
    std::nth_element(d.begin(), d.begin() + rank, d.end());
    return d[static_cast<size_t>(rank)];
}

template <class T>
index_t hypothesis_violations(const T* S, index_t n, index_t m, const T* pred, double t, double tol) {
    check_sorted_hypotheses(S, n, m);
    check_tol(tol);
    check_predictions("pred", pred, n);
    const index_t k = interval_rank(m, t);
    index_t viol = 0;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n * 8)) reduction(+ : viol)
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = S + i * m;
        const double eps = sorted_eps(row, m, tol), v = double(pred[i]);
        // below(v) >= k  <=>  S[k-1] <= v + eps;  above(v) >= k  <=>  S[m-k] >= v - eps.
        const bool inside = double(row[k - 1]) <= v + eps && double(row[m - k]) >= v - eps;
        viol += !inside;
    }
    return viol;
}

template <class T>
void max_point_depth(const T* S, index_t n, index_t m, double tol, double* out) {
    check_sorted_hypotheses(S, n, m);
    check_tol(tol);
    const double dm = double(m);
    for (index_t i = 0; i < n; ++i) {
        const T* row = S + i * m;
        const double eps = sorted_eps(row, m, tol);
        const index_t a = sorted_depth_count(row, m, double(row[(m - 1) / 2]), eps);
        const index_t b = sorted_depth_count(row, m, double(row[m / 2]), eps);
        out[i] = double(std::max(a, b)) / dm;
    }
}

// ------------------------------------------------------------------- MEMO
namespace {

void check_reg_options(const MemoOptions& opt) {
    require(opt.oracle == Oracle::Reweight, "oracle: regression supports only the reweighting oracle");
    require(opt.max_rounds >= 1, "max_rounds: expected at least 1");
    require(opt.eta > 0.0 && std::isfinite(opt.eta), "eta: expected a positive, finite weight growth");
    require(opt.delta >= 0.0 && opt.delta < 1.0, "delta: expected a fraction in [0, 1)");
    require(opt.patience >= 0, "patience: expected a non-negative number of rounds");
}

void check_student_predictions(const std::vector<double>& pred) {
    for (size_t i = 0; i < pred.size(); ++i) {
        if (!std::isfinite(pred[i])) {
            std::ostringstream msg;
            msg << "the student predicted " << pred[i] << " at point " << i << "; expected finite values";
            throw std::invalid_argument(msg.str());
        }
    }
}

}  // namespace

template <class T>
RegOracleResult regression_oracle(const T* S, index_t n, index_t m, double t, double tol,
                                  const MemoOptions& opt, const FitValuesFn& fit, const double* base_weights,
                                  const T* prefer) {
    check_reg_options(opt);
    check_sorted_hypotheses(S, n, m);
    check_tol(tol);
    require(static_cast<bool>(fit), "fit: the regression oracle needs a fit callback");
    const index_t k = interval_rank(m, t);
    const index_t tolerated = detail::tolerated_violations(n, opt.delta);

    std::vector<T> start(static_cast<size_t>(n));
    clip_to_intervals(S, n, m, t, prefer, start.data());
    std::vector<double> targets(start.begin(), start.end());
    // The interval ends and tolerances, compared exactly as in
    // hypothesis_violations (so the oracle and the kernels agree).
    std::vector<double> lo(static_cast<size_t>(n)), hi(static_cast<size_t>(n)), eps(static_cast<size_t>(n));
    for (index_t i = 0; i < n; ++i) {
        const T* row = S + i * m;
        eps[i] = sorted_eps(row, m, tol);
        lo[i] = double(row[k - 1]);
        hi[i] = double(row[m - k]);
    }
    std::vector<double> w(static_cast<size_t>(n), 1.0);
    if (base_weights) {
        for (index_t i = 0; i < n; ++i) {
            if (!(base_weights[i] >= 0.0) || !std::isfinite(base_weights[i]))
                throw std::invalid_argument("sample_weight: expected finite, non-negative weights");
            w[i] = base_weights[i];
        }
    }
    double scale_total = 0.0;
    for (double x : w) scale_total += x;

    RegOracleResult res;
    res.pred.assign(static_cast<size_t>(n), 0.0);
    const double grow = 1.0 + opt.eta;
    index_t best_viol = n + 1;
    int stalled = 0;
    for (int r = 0; r < opt.max_rounds; ++r) {
        fit(targets.data(), w.data(), res.pred.data());
        check_student_predictions(res.pred);
        res.rounds = r + 1;
        index_t viol = 0;
        double total = 0.0;
        for (index_t i = 0; i < n; ++i) {
            const double p = res.pred[i];
            if (lo[i] <= p + eps[i] && hi[i] >= p - eps[i]) {
                targets[i] = p;  // allowed: the student's own value is the least conflicting target
            } else {
                ++viol;
                w[i] *= grow;
            }
            total += w[i];
        }
        res.violations = viol;
        if (viol <= tolerated) {
            res.consistent = true;
            return res;
        }
        if (viol < best_viol) {
            best_viol = viol;
            stalled = 0;
        } else if (opt.patience > 0 && ++stalled >= opt.patience) {
            return res;
        }
        // Keep the total weight where it started (students with absolute
        // weight thresholds behave the same in every round).
        if (total > 0 && scale_total > 0) {
            const double s = scale_total / total;
            for (auto& x : w) x *= s;
        }
    }
    return res;
}

template <class T>
RegMemoResult regression_memo_search(const T* S, index_t n, index_t m, const double* candidates, index_t k,
                                     double tol, const MemoOptions& opt, const FitValuesFn& fit,
                                     const AcceptFn& accept, const double* base_weights) {
    check_reg_options(opt);
    require(k >= 0, "candidates: expected a non-negative count");
    for (index_t j = 0; j < k; ++j) {
        check_level(candidates[j]);
        if (j > 0 && !(candidates[j] > candidates[j - 1]))
            throw std::invalid_argument("candidates: expected strictly increasing levels");
    }
    RegMemoResult out;
    // Consistency is monotone in the level (intervals shrink as t grows), so
    // a failure at the smallest level ends the search (see memo.cpp).
    std::vector<T> prefer(static_cast<size_t>(n));
    detail::level_search(
        candidates, k, opt.probe_lowest, accept, out.trace, out.n_fits,
        [&](index_t mid, bool prefer_best, bool /*first*/) {
            if (prefer_best)
                for (index_t i = 0; i < n; ++i) prefer[i] = T(out.best_pred[i]);
            return regression_oracle(S, n, m, candidates[mid], tol, opt, fit, base_weights,
                                     prefer_best ? prefer.data() : nullptr);
        },
        [&](index_t mid, RegOracleResult& r) {
            out.best_candidate = mid;
            out.best_level = candidates[mid];
            out.best_pred = std::move(r.pred);
        });
    return out;
}

#define CREMBO_REG_INSTANTIATE(T)                                                                        \
    template void check_hypotheses<T>(const T*, index_t, index_t);                                       \
    template void sort_hypotheses<T>(const T*, index_t, index_t, T*);                                    \
    template void check_sorted_hypotheses<T>(const T*, index_t, index_t);                                \
    template void hypothesis_intervals<T>(const T*, index_t, index_t, double, T*, T*);                   \
    template void clip_to_intervals<T>(const T*, index_t, index_t, double, const T*, T*);                \
    template void hypothesis_medians<T>(const T*, index_t, index_t, T*);                                 \
    template void hypothesis_point_depth<T>(const T*, index_t, index_t, const T*, double, double*);      \
    template double hypothesis_empirical_depth<T>(const T*, index_t, index_t, const T*, double, double); \
    template index_t hypothesis_violations<T>(const T*, index_t, index_t, const T*, double, double);     \
    template void max_point_depth<T>(const T*, index_t, index_t, double, double*);                       \
    template RegOracleResult regression_oracle<T>(const T*, index_t, index_t, double, double,            \
                                                  const MemoOptions&, const FitValuesFn&, const double*, \
                                                  const T*);                                             \
    template RegMemoResult regression_memo_search<T>(const T*, index_t, index_t, const double*, index_t, \
                                                     double, const MemoOptions&, const FitValuesFn&,     \
                                                     const AcceptFn&, const double*);

CREMBO_REG_INSTANTIATE(float)
CREMBO_REG_INSTANTIATE(double)
#undef CREMBO_REG_INSTANTIATE

}  // namespace crembo
