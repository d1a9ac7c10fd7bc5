// crembo native core: beliefs, depth, thresholds, allowed labels, consistency
// and the MEMO search. Plain C++17, no Python. All matrices are dense and
// row-major; an n x C belief matrix holds p(y|x_i) in row i.
//
// Every function validates its arguments and throws std::invalid_argument
// with a message naming the argument; nothing here aborts the process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace crembo {

using index_t = std::int64_t;
using label_t = std::int32_t;

// ---------------------------------------------------------------- threading
// Number of worker threads used by the parallel kernels (OpenMP when built
// with it, otherwise 1). 0 or negative restores the default.
void set_num_threads(int n);
int get_num_threads();
bool built_with_openmp();

// ------------------------------------------------------------------ beliefs
// votes: m x n labels of m sampled hypotheses on n points, each in [0, C).
// out:   n x C; out[i, y] = share of hypotheses voting y at point i.
template <class T>
void beliefs_from_votes(const label_t* votes, index_t m, index_t n, index_t C, T* out);

// Throws std::invalid_argument naming the first bad row when P has a
// non-finite or negative entry, or a row whose sum differs from 1 by more
// than tol.
template <class T>
void check_beliefs(const T* P, index_t n, index_t C, double tol);

// Divides every row by its sum in place (rows must be finite, non-negative
// and have a positive sum; otherwise std::invalid_argument).
template <class T>
void normalize_beliefs(T* P, index_t n, index_t C);

// -------------------------------------------------------------------- depth
// out[i] = P[i, pred[i]]; pred[i] must lie in [0, C).
template <class T>
void point_depth(const T* P, index_t n, index_t C, const label_t* pred, T* out);

// The (floor(delta*n)+1)-th smallest point depth: delta = 0 is the
// empirical depth D_S(h) = min_i D(h|x_i). delta in [0, 1).
template <class T>
T empirical_depth(const T* P, index_t n, index_t C, const label_t* pred, double delta);

// Depth profile: out[j] = fraction of points with depth[i] >= thresholds[j].
template <class T>
void depth_profile(const T* depth, index_t n, const T* thresholds, index_t k, double* out);

// min_i max_y P[i, y]: no hypothesis can be deeper than this on S.
template <class T>
T max_achievable_depth(const T* P, index_t n, index_t C);

// row_max[i] = max_y P[i, y], row_argmax[i] = smallest y attaining it.
template <class T>
void row_argmax(const T* P, index_t n, index_t C, label_t* argmax, T* row_max);

// --------------------------------------------------------------- thresholds
// Sorted distinct entries of P that are > 0 and lie in [lo, hi].
template <class T>
std::vector<T> candidate_thresholds(const T* P, index_t n, index_t C, T lo, T hi);

// At most K thresholds from the entries of P in [lo, hi] (entries > 0),
// placed at evenly spaced quantiles of those entries and snapped to actual
// entries (so each one is a candidate threshold), sorted and distinct. The
// smallest entry >= lo is always included. K >= 1.
template <class T>
std::vector<T> budgeted_thresholds(const T* P, index_t n, index_t C, index_t K, T lo, T hi);

// The entries of P that are > 0 and lie in [lo, hi] as sorted distinct
// values and how often each occurs: what the two functions above start
// from, gathered once for several ranges (see budget_from_counts).
template <class T>
void distinct_entries(const T* P, index_t n, index_t C, T lo, T hi, std::vector<T>& values,
                      std::vector<index_t>& counts);

// budgeted_thresholds' choice of at most K values from distinct entries
// (sorted values, each occurring counts[j] > 0 times). K >= 1.
template <class T>
std::vector<T> budget_from_counts(const std::vector<T>& values, const std::vector<index_t>& counts,
                                  index_t K);

// ------------------------------------------------- allowed labels, consistency
// mask[i, y] = 1 when P[i, y] >= t (the allowed labels A_t(x_i)).
template <class T>
void allowed_labels(const T* P, index_t n, index_t C, T t, std::uint8_t* mask);

// Number of points i with P[i, pred[i]] < t (predictions that are not allowed).
template <class T>
index_t count_violations(const T* P, index_t n, index_t C, const label_t* pred, T t);

// Per point: prefer[i] when it is allowed at t (prefer may be null), else the
// allowed label of highest belief (smallest index on ties), else -1 when the
// allowed set is empty. Returns the number of points with an empty set.
template <class T>
index_t allowed_targets(const T* P, index_t n, index_t C, T t, const label_t* prefer, label_t* targets);

// Per-leaf sums of the beliefs: row leaves[i] of out (n_nodes x k,
// row-major, overwritten) gets w[i] * P[i, cols[j]] in column j for every
// point i (w null: weight 1), summed in point order (numpy's bincount
// order). One pass over P; throws std::invalid_argument naming the first
// leaf outside [0, n_nodes) or column outside [0, C).
template <class T>
void leaf_sums(const T* P, index_t n, index_t C, const std::int64_t* leaves, const double* w,
               const std::int64_t* cols, index_t k, index_t n_nodes, double* out);

// ---------------------------------------------------------------------- MEMO
enum class Oracle {
    Reweight,   // rounds of weighted single-label fits (multiplicative weights)
    SingleFit,  // the paper's oracle: one fit on the allowed-label matrix
};

// How MEMO searches its candidate thresholds: a binary search (the paper's,
// with probe_lowest), or a galloping one that starts at the smallest
// candidate and, from the deepest threshold a student has reached, probes
// 1, 2, 4, ... candidates higher until a probe fails, then bisects between
// (docs/ALGORITHMS.md, section 2).
enum class Search { Binary, Gallop };

struct MemoOptions {
    Oracle oracle = Oracle::Reweight;
    int max_rounds = 8;        // reweighting rounds per threshold (>= 1)
    double eta = 1.0;          // weight growth of a violating point: w *= 1 + eta
    double delta = 0.0;        // tolerated fraction of violations (delta-insensitive)
    int patience = 0;          // stop a threshold after this many rounds without fewer
                               // violations than the best so far (0: run all rounds)
    bool probe_lowest = true;  // probe the smallest candidate first and stop when it
                               // fails (nothing above it can pass); false: plain
                               // binary search, as in the paper
    bool warm_start = false;   // each probe of the search starts from the weights the
                               // last successful probe ended with (the hard points stay
                               // hard from one threshold to the next) instead of afresh
    Search search = Search::Binary;
    bool adaptive_eta = false;  // while a round leaves no fewer violations than the
                                // round before, the growth compounds (1+eta, then
                                // (1+eta)^2, ...); it falls back to 1+eta on progress
};

// Student fit on single-label targets with weights; writes the student's
// predictions on S (n labels) to pred. Targets are in [0, C).
using FitLabelsFn = std::function<void(const label_t* targets, const double* weights, label_t* pred)>;
// Student fit on the n x C allowed-label mask; writes predictions to pred.
using FitMaskFn = std::function<void(const std::uint8_t* mask, label_t* pred)>;
// Called right after a fit whose student is consistent at a threshold deeper
// than every earlier success: the caller keeps that student.
using AcceptFn = std::function<void()>;

struct ProbeRecord {
    index_t candidate = -1;  // index into the candidate thresholds
    double threshold = 0.0;
    bool consistent = false;
    index_t violations = 0;  // of the last fit at this threshold
    int rounds = 0;          // fits made at this threshold
};

struct OracleResult {
    bool consistent = false;
    index_t violations = 0;
    int rounds = 0;
    std::vector<label_t> pred;    // predictions of the last fit
    std::vector<double> weights;  // the reweighting oracle's weights after its last round
};

// One consistency-oracle call at threshold t. For Reweight, base_weights
// (n values, may be null for all ones) seed the weights and prefer (may be
// null) seeds the targets. feasibility marks the search's first probe at its
// smallest candidate (probe_lowest): a failure there ends the search, and
// such a probe gives up as hopeless once a round, from the third and from a
// quarter of max_rounds on, leaves more than kHopelessShare of the points and
// more than kHopelessMin points in violation, and no fewer than the first
// round did (docs/ALGORITHMS.md, section 2).
constexpr double kHopelessShare = 0.05;
constexpr index_t kHopelessMin = 100;
template <class T>
OracleResult consistency_oracle(const T* P, index_t n, index_t C, T t, const MemoOptions& opt,
                                const FitLabelsFn& fit_labels, const FitMaskFn& fit_mask,
                                const double* base_weights, const label_t* prefer, bool feasibility = false);

struct MemoResult {
    index_t best_candidate = -1;  // -1: no threshold was reached
    double best_threshold = 0.0;
    std::vector<label_t> best_pred;  // predictions of the accepted student
    std::vector<ProbeRecord> trace;  // one record per probed threshold, in order
    index_t n_fits = 0;
};

// Binary search over the sorted candidate thresholds with the consistency
// oracle; keeps the largest threshold at which the oracle succeeded and calls
// accept() for each new best student.
template <class T>
MemoResult memo_search(const T* P, index_t n, index_t C, const T* candidates, index_t k,
                       const MemoOptions& opt, const FitLabelsFn& fit_labels, const FitMaskFn& fit_mask,
                       const AcceptFn& accept, const double* base_weights);

}  // namespace crembo
