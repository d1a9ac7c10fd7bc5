// Deep hypotheses for regression: the native kernels of CREMBORegressor.
//
// The belief at a point x_i is the empirical distribution of m sampled
// hypotheses' predictions there: row i of an n x m matrix H (row-major,
// H[i*m + j] = prediction of hypothesis j at x_i). The specification of
// every quantity below is docs/regression.md; in short, with a tolerance
// eps_i = tol * max(1, max_j |H[i, j]|) (tol = 0: exact comparisons),
//
//   below_i(v) = #{j : H[i, j] <= v + eps_i},  above_i(v) = #{j : H[i, j] >= v - eps_i}
//   depth_i(v) = min(below_i(v), above_i(v)) / m          (Tukey depth in 1-D)
//
// A level t lies in (0, 1/2]; k(t) is the smallest integer k with
// k / m >= t (the division done in double). With S_i the sorted row i
// (S_i[0] <= ... <= S_i[m-1]) the allowed interval at t is
//
//   [S_i[k-1] - eps_i, S_i[m-k] + eps_i],
//
// which is exactly {v : depth_i(v) >= t}: a prediction is consistent at t
// if and only if its depth is at least t. Targets are clipped into the
// interval without the tolerance, [S_i[k-1], S_i[m-k]].
//
// Plain C++17, no Python. Every function validates its arguments and throws
// std::invalid_argument naming the argument, as the classification kernels
// do (crembo/detail/checks.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "crembo/core.hpp"

namespace crembo {

// ------------------------------------------------------------- hypotheses
// Throws unless H (n x m) is finite, n >= 1 and m >= 1.
template <class T>
void check_hypotheses(const T* H, index_t n, index_t m);

// out (n x m) = H with every row sorted ascending. out may equal H.
template <class T>
void sort_hypotheses(const T* H, index_t n, index_t m, T* out);

// Throws unless every row of S is finite and sorted ascending.
template <class T>
void check_sorted_hypotheses(const T* S, index_t n, index_t m);

// k(t): the order (1-based) of the lower interval end at level t, in [1, ceil(m/2)].
// Inline so that the CUDA twins (cuda/kernels.cu) share it.
inline index_t interval_rank(index_t m, double t) {
    if (m < 1) throw std::invalid_argument("hypotheses: expected at least one hypothesis (m >= 1)");
    if (!(t > 0.0 && t <= 0.5)) {
        std::ostringstream msg;
        msg << "t: expected a level in (0, 1/2], got " << t;
        throw std::invalid_argument(msg.str());
    }
    // The smallest k with k / m >= t, the comparison done exactly as depth
    // values are compared (double(k) / double(m)), so that "inside the
    // interval at t" and "depth >= t" agree bit for bit.
    const double dm = double(m);
    index_t k = static_cast<index_t>(std::ceil(t * dm));
    k = std::max<index_t>(1, std::min(k, m));
    while (k > 1 && double(k - 1) / dm >= t) --k;
    while (k < m && double(k) / dm < t) ++k;
    return k;
}

// ------------------------------------------------------------- intervals
// lo[i] = S_i[k-1], hi[i] = S_i[m-k] for k = k(t) (S sorted rows).
template <class T>
void hypothesis_intervals(const T* S, index_t n, index_t m, double t, T* lo, T* hi);

// Per row: the prefer[i] clipped into [lo_i, hi_i] at level t; prefer null
// clips the row's median ((S_i[(m-1)/2] + S_i[m/2]) / 2, inside every interval).
template <class T>
void clip_to_intervals(const T* S, index_t n, index_t m, double t, const T* prefer, T* out);

// Median of every row (the midpoint of the two central order statistics).
template <class T>
void hypothesis_medians(const T* S, index_t n, index_t m, T* out);

// ------------------------------------------------------------------ depth
// out[i] = depth_i(pred[i]), on unsorted (or sorted) rows, O(n m).
template <class T>
void hypothesis_point_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double* out);

// The (floor(delta n)+1)-th smallest point depth (delta = 0: the minimum).
template <class T>
double hypothesis_empirical_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double delta);

// Number of rows whose prediction lies outside the allowed interval at t
// (equivalently, whose depth is below t). S sorted rows.
template <class T>
index_t hypothesis_violations(const T* S, index_t n, index_t m, const T* pred, double t, double tol);

// out[i] = the largest depth any value reaches at row i (attained at the
// row's central order statistics). S sorted rows.
template <class T>
void max_point_depth(const T* S, index_t n, index_t m, double tol, double* out);

// ------------------------------------------------------------------- MEMO
// Student fit on real-valued targets with weights; writes the student's n
// predictions on the transfer set to pred.
using FitValuesFn = std::function<void(const double* targets, const double* weights, double* pred)>;

struct RegOracleResult {
    bool consistent = false;
    index_t violations = 0;
    int rounds = 0;
    std::vector<double> pred;  // predictions of the last fit
};

// The reweighting consistency oracle at level t (opt.oracle must be
// Reweight; max_rounds, eta, delta and patience are used as in MEMO for
// classification). Targets start as prefer (or the medians) clipped into
// the intervals; after each fit a point whose prediction is allowed takes
// its own prediction as its next target, and a violating point keeps its
// target and has its weight multiplied by 1 + eta (weights are rescaled to
// mean one of the starting weights' total). Stops at the first fit with at
// most floor(delta n) violations.
template <class T>
RegOracleResult regression_oracle(const T* S, index_t n, index_t m, double t, double tol,
                                  const MemoOptions& opt, const FitValuesFn& fit, const double* base_weights,
                                  const T* prefer);

struct RegMemoResult {
    index_t best_candidate = -1;  // -1: no level was reached
    double best_level = 0.0;
    std::vector<double> best_pred;
    std::vector<ProbeRecord> trace;
    index_t n_fits = 0;
};

// Binary search over the increasing levels candidates[0..k) (each in
// (0, 1/2]) with regression_oracle; calls accept() after each fit that is
// consistent at a level deeper than all earlier successes. With
// opt.probe_lowest the smallest level is probed first and a failure there
// ends the search. Later probes seed their targets with the best student's
// predictions.
template <class T>
RegMemoResult regression_memo_search(const T* S, index_t n, index_t m, const double* candidates, index_t k,
                                     double tol, const MemoOptions& opt, const FitValuesFn& fit,
                                     const AcceptFn& accept, const double* base_weights);

}  // namespace crembo
