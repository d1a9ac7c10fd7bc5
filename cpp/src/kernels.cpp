// Data-parallel kernels of the native core: beliefs, depth, thresholds,
// allowed labels and consistency counts.
#include "crembo/core.hpp"
#include "crembo/detail/checks.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#ifdef CREMBO_WITH_OPENMP
#include <omp.h>
#endif

namespace crembo {

namespace {

// 0: the runtime's default. Atomic: any thread may set it while kernels on
// other threads read it.
std::atomic<int> g_num_threads{0};

// Below this many elements a kernel runs on one thread: waking a team costs
// more than the work (and, on a loaded machine, a late-scheduled thread can
// hold the whole team up for milliseconds).
constexpr index_t kParallelMin = 1 << 17;

int threads_for(index_t work) {
    if (work < kParallelMin) return 1;
    return get_num_threads();
}

using detail::bad_label;
using detail::check_shape;
using detail::insensitive_rank;
using detail::require;

void check_labels(const char* arg, const label_t* labels, index_t n, index_t C) {
    index_t first_bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : first_bad)
#endif
    for (index_t i = 0; i < n; ++i)
        if (labels[i] < 0 || labels[i] >= C) first_bad = std::min(first_bad, i);
    if (first_bad < n) bad_label(arg, first_bad, labels[first_bad], C);
}
}  // namespace

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

int get_num_threads() {
#ifdef CREMBO_WITH_OPENMP
    const int n = g_num_threads.load(std::memory_order_relaxed);
    return n > 0 ? n : omp_get_max_threads();
#else
    return 1;
#endif
}

bool built_with_openmp() {
#ifdef CREMBO_WITH_OPENMP
    return true;
#else
    return false;
#endif
}

// ------------------------------------------------------------------ beliefs
// Points per block of beliefs_from_votes: the block's counts take about
// kVoteCountBytes (second-level cache), and each member's votes for the
// block are a run of several pages, which the hardware prefetcher streams.
constexpr index_t kVoteCountBytes = index_t(64) << 10;
constexpr index_t kVoteBlockMax = 16384;
template <class Count>
index_t vote_block(index_t C) {
    return std::max<index_t>(256, std::min(kVoteBlockMax, kVoteCountBytes / (C * index_t(sizeof(Count)))));
}

// Counts the votes of points [lo, hi) and writes their beliefs; returns the
// flat index (member * n + point) of the block's first bad vote, or m * n.
template <class Count, class T>
index_t count_vote_block(const label_t* votes, index_t m, index_t n, index_t C, index_t lo, index_t hi,
                         T* out) {
    const index_t w = hi - lo;
    std::vector<Count> counts(size_t(w * C), Count(0));
    Count* cnt = counts.data();
    const std::uint32_t uC = std::uint32_t(C);
    for (index_t j = 0; j < m; ++j) {
        const label_t* row = votes + j * n + lo;
        // Checked first in a branch-free pass (it vectorizes), so that the
        // counting pass needs no test.
        std::uint32_t any_bad = 0;
        for (index_t i = 0; i < w; ++i) any_bad |= std::uint32_t(std::uint32_t(row[i]) >= uC);
        if (any_bad) {
            index_t i = 0;
            while (std::uint32_t(row[i]) < uC) ++i;
            return j * n + lo + i;
        }
        Count* base = cnt;
        index_t i = 0;
        for (; i + 4 <= w; i += 4, base += 4 * C) {
            ++base[row[i]];
            ++base[C + row[i + 1]];
            ++base[2 * C + row[i + 2]];
            ++base[3 * C + row[i + 3]];
        }
        for (; i < w; ++i, base += C) ++base[row[i]];
    }
    const T scale = T(1) / T(m);
    T* o = out + lo * C;
    for (index_t k = 0; k < w * C; ++k) o[k] = T(cnt[k]) * scale;
    return m * n;
}

template <class Count, class T>
void votes_by_block(const label_t* votes, index_t m, index_t n, index_t C, T* out);

template <class T>
void beliefs_from_votes(const label_t* votes, index_t m, index_t n, index_t C, T* out) {
    require(m >= 1, "votes: expected at least one hypothesis (m >= 1)");
    check_shape(n, C);
    // Points are processed in blocks so the block's counts stay in cache
    // while the m vote rows stream through it; counts are as narrow as m
    // allows (8 bits up to 255 members).
    if (m <= 255) return votes_by_block<std::uint8_t>(votes, m, n, C, out);
    if (m <= 65535) return votes_by_block<std::uint16_t>(votes, m, n, C, out);
    return votes_by_block<std::uint32_t>(votes, m, n, C, out);
}

template <class Count, class T>
void votes_by_block(const label_t* votes, index_t m, index_t n, index_t C, T* out) {
    const index_t block = vote_block<Count>(C);
    const index_t n_blocks = (n + block - 1) / block;
    // The first bad vote in (member, point) order is reported, as by CUDA,
    // whatever the thread count: the first one a block meets (members outer,
    // points inner) is that block's smallest flat index.
    const index_t none = m * n;
    index_t bad = none;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(dynamic) num_threads(threads_for(n* m / 8)) reduction(min : bad)
#endif
    for (index_t b = 0; b < n_blocks; ++b) {
        const index_t lo = b * block, hi = std::min(n, lo + block);
        bad = std::min(bad, count_vote_block<Count>(votes, m, n, C, lo, hi, out));
    }
    if (bad != none) {
        std::ostringstream msg;
        msg << "votes[" << bad / n << ", " << bad % n << "] = " << votes[bad]
            << " is outside the label range [0, " << C << ")";
        throw std::invalid_argument(msg.str());
    }
}

template <class T>
void check_beliefs(const T* P, index_t n, index_t C, double tol) {
    check_shape(n, C);
    require(tol >= 0, "tol: expected a non-negative tolerance");
    // Find the first bad row in parallel, then describe it serially.
    index_t first_bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : first_bad)
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = P + i * C;
        double s = 0;
        bool ok = true;
        for (index_t y = 0; y < C; ++y) {
            const T v = row[y];
            ok = ok && std::isfinite(v) && v >= 0;
            s += double(v);
        }
        if (!ok || std::fabs(s - 1.0) > tol) first_bad = std::min(first_bad, i);
    }
    if (first_bad == n) return;
    const T* row = P + first_bad * C;
    std::ostringstream msg;
    msg << "beliefs: row " << first_bad << " ";
    double s = 0;
    for (index_t y = 0; y < C; ++y) {
        if (!std::isfinite(row[y])) {
            msg << "has a non-finite value at column " << y;
            throw std::invalid_argument(msg.str());
        }
        if (row[y] < 0) {
            msg << "has a negative value " << row[y] << " at column " << y;
            throw std::invalid_argument(msg.str());
        }
        s += double(row[y]);
    }
    msg << "sums to " << s << ", expected 1 (tolerance " << tol << "); pass normalize=True to rescale rows";
    throw std::invalid_argument(msg.str());
}

template <class T>
void normalize_beliefs(T* P, index_t n, index_t C) {
    check_shape(n, C);
    index_t first_bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : first_bad)
#endif
    for (index_t i = 0; i < n; ++i) {
        T* row = P + i * C;
        double s = 0;
        bool ok = true;
        for (index_t y = 0; y < C; ++y) {
            ok = ok && std::isfinite(row[y]) && row[y] >= 0;
            s += double(row[y]);
        }
        if (!ok || !(s > 0) || !std::isfinite(s)) {
            first_bad = std::min(first_bad, i);
            continue;
        }
        for (index_t y = 0; y < C; ++y) row[y] = T(double(row[y]) / s);
    }
    if (first_bad < n) {
        std::ostringstream msg;
        msg << "beliefs: row " << first_bad
            << " cannot be normalised (it needs finite, non-negative values with a positive sum)";
        throw std::invalid_argument(msg.str());
    }
}

// -------------------------------------------------------------------- depth
template <class T>
void point_depth(const T* P, index_t n, index_t C, const label_t* pred, T* out) {
    check_shape(n, C);
    // One pass: gather and validate together; a bad label is reported after.
    index_t first_bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : first_bad)
#endif
    for (index_t i = 0; i < n; ++i) {
        const label_t y = pred[i];
        if (y < 0 || y >= C) {
            first_bad = std::min(first_bad, i);
            continue;
        }
        out[i] = P[i * C + y];
    }
    if (first_bad < n) bad_label("pred", first_bad, pred[first_bad], C);
}

template <class T>
T empirical_depth(const T* P, index_t n, index_t C, const label_t* pred, double delta) {
    check_shape(n, C);
    const index_t k = insensitive_rank(n, delta);
    if (k == 0) {
        // The plain depth needs no buffer: one fused gather-and-min pass.
        T lo = std::numeric_limits<T>::infinity();
        index_t first_bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : lo, first_bad)
#endif
        for (index_t i = 0; i < n; ++i) {
            const label_t y = pred[i];
            if (y < 0 || y >= C) {
                first_bad = std::min(first_bad, i);
                continue;
            }
            lo = std::min(lo, P[i * C + y]);
        }
        if (first_bad < n) bad_label("pred", first_bad, pred[first_bad], C);
        return lo;
    }
    std::vector<T> d(static_cast<size_t>(n));
    point_depth(P, n, C, pred, d.data());
    std::nth_element(d.begin(), d.begin() + k, d.end());
    return d[static_cast<size_t>(k)];
}

template <class T>
void depth_profile(const T* depth, index_t n, const T* thresholds, index_t k, double* out) {
    require(n >= 1, "depth: expected at least one point");
    require(k >= 0, "thresholds: expected a non-negative count");
    std::vector<T> sorted(depth, depth + n);
    std::sort(sorted.begin(), sorted.end());
    for (index_t j = 0; j < k; ++j) {
        const auto it = std::lower_bound(sorted.begin(), sorted.end(), thresholds[j]);
        out[j] = double(sorted.end() - it) / double(n);
    }
}

template <class T>
void row_argmax(const T* P, index_t n, index_t C, label_t* argmax, T* row_max) {
    check_shape(n, C);
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n))
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = P + i * C;
        label_t best = 0;
        for (index_t y = 1; y < C; ++y)
            if (row[y] > row[best]) best = static_cast<label_t>(y);
        if (argmax) argmax[i] = best;
        if (row_max) row_max[i] = row[best];
    }
}

template <class T>
T max_achievable_depth(const T* P, index_t n, index_t C) {
    check_shape(n, C);
    T lo = std::numeric_limits<T>::infinity();
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(min : lo)
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = P + i * C;
        T best = row[0];
        for (index_t y = 1; y < C; ++y) best = std::max(best, row[y]);
        lo = std::min(lo, best);
    }
    return lo;
}

// --------------------------------------------------------------- thresholds
namespace {
template <class T>
void check_bounds(T lo, T hi) {
    // A NaN bound would make every comparison false: an empty answer.
    require(!std::isnan(lo), "lo: expected a number, got NaN");
    require(!std::isnan(hi), "hi: expected a number, got NaN");
}

template <class T>
bool entry_in(T x, T lo, T hi) {
    return x > 0 && x >= lo && x <= hi;
}

// The positive entries of P in [lo, hi], sorted, as distinct values and how
// often each occurs. Beliefs made of votes have few distinct values (at most
// m + 1 for m members), which one pass gathers in a small hash table keyed
// by the value's bits; beyond kMaxHashed distinct values the entries are
// sorted instead (the same answer).
template <class T>
void distinct_entries_in(const T* P, index_t n, index_t C, T lo, T hi, std::vector<T>& values,
                         std::vector<index_t>& counts) {
    check_shape(n, C);
    check_bounds(lo, hi);
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr size_t kMaxHashed = size_t(1) << 14;
    const index_t total = n * C;
    values.clear();
    counts.clear();
    size_t cap = 256, used = 0;
    std::vector<Bits> keys(cap, Bits(0));  // 0: empty (a positive value has other bits)
    std::vector<index_t> cnt(cap, 0);
    auto slot_of = [&](Bits b) {
        return size_t((std::uint64_t(b) * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
    };
    bool hashed = true;
    for (index_t k = 0; k < total && hashed; ++k) {
        const T x = P[k];
        if (!entry_in(x, lo, hi)) continue;
        Bits b;
        std::memcpy(&b, &x, sizeof b);
        size_t s = slot_of(b);
        while (keys[s] != 0 && keys[s] != b) s = (s + 1) & (cap - 1);
        if (keys[s] == b) {
            ++cnt[s];
            continue;
        }
        keys[s] = b;
        cnt[s] = 1;
        if (++used * 2 <= cap) continue;
        if (used > kMaxHashed) {
            hashed = false;
            break;
        }
        // Grow: rehash into twice the slots.
        std::vector<Bits> old_keys(cap * 2, Bits(0));
        std::vector<index_t> old_cnt(cap * 2, 0);
        old_keys.swap(keys);
        old_cnt.swap(cnt);
        cap *= 2;
        for (size_t j = 0; j < old_keys.size(); ++j) {
            if (old_keys[j] == 0) continue;
            size_t t = slot_of(old_keys[j]);
            while (keys[t] != 0) t = (t + 1) & (cap - 1);
            keys[t] = old_keys[j];
            cnt[t] = old_cnt[j];
        }
    }
    if (hashed) {
        std::vector<std::pair<T, index_t>> pairs;
        pairs.reserve(used);
        for (size_t j = 0; j < cap; ++j) {
            if (keys[j] == 0) continue;
            T x;
            std::memcpy(&x, &keys[j], sizeof x);
            pairs.emplace_back(x, cnt[j]);
        }
        std::sort(pairs.begin(), pairs.end());
        for (const auto& pr : pairs) {
            values.push_back(pr.first);
            counts.push_back(pr.second);
        }
        return;
    }
    std::vector<T> v;
    v.reserve(static_cast<size_t>(total));
    for (index_t k = 0; k < total; ++k)
        if (entry_in(P[k], lo, hi)) v.push_back(P[k]);
    std::sort(v.begin(), v.end());
    for (size_t j = 0; j < v.size(); ++j) {
        if (j > 0 && v[j] == v[j - 1]) {
            ++counts.back();
        } else {
            values.push_back(v[j]);
            counts.push_back(1);
        }
    }
}
}  // namespace

template <class T>
std::vector<T> candidate_thresholds(const T* P, index_t n, index_t C, T lo, T hi) {
    std::vector<T> values;
    std::vector<index_t> counts;
    distinct_entries_in(P, n, C, lo, hi, values, counts);
    return values;
}

template <class T>
std::vector<T> budgeted_thresholds(const T* P, index_t n, index_t C, index_t K, T lo, T hi) {
    require(K >= 1, "n_thresholds: expected at least 1");
    std::vector<T> values;
    std::vector<index_t> counts;
    distinct_entries_in(P, n, C, lo, hi, values, counts);
    const index_t N = std::accumulate(counts.begin(), counts.end(), index_t(0));
    // The budget covers every entry: the distinct entries themselves.
    if (N == 0 || K >= N) return values;
    std::vector<T> out;
    out.reserve(static_cast<size_t>(K));
    size_t v = 0;
    index_t end = counts.empty() ? 0 : counts[0];  // entries up to and including values[v]
    for (index_t j = 0; j < K; ++j) {
        // Quantile j/(K-1) of the sorted entries, j = 0 being the smallest.
        const index_t pos = K == 1 ? 0 : (j * (N - 1)) / (K - 1);
        while (end <= pos) end += counts[++v];
        if (out.empty() || out.back() != values[v]) out.push_back(values[v]);
    }
    return out;
}

// ------------------------------------------------- allowed labels, consistency
template <class T>
void allowed_labels(const T* P, index_t n, index_t C, T t, std::uint8_t* mask) {
    check_shape(n, C);
    const index_t total = n * C;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(total))
#endif
    for (index_t k = 0; k < total; ++k) mask[k] = P[k] >= t ? 1 : 0;
}

template <class T>
index_t count_violations(const T* P, index_t n, index_t C, const label_t* pred, T t) {
    check_shape(n, C);
    index_t count = 0, first_bad = n;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(+ : count) \
    reduction(min : first_bad)
#endif
    for (index_t i = 0; i < n; ++i) {
        const label_t y = pred[i];
        if (y < 0 || y >= C) {
            first_bad = std::min(first_bad, i);
            continue;
        }
        count += P[i * C + y] < t ? 1 : 0;
    }
    if (first_bad < n) bad_label("pred", first_bad, pred[first_bad], C);
    return count;
}

template <class T>
index_t allowed_targets(const T* P, index_t n, index_t C, T t, const label_t* prefer, label_t* targets) {
    check_shape(n, C);
    if (prefer) check_labels("prefer", prefer, n, C);
    index_t empty = 0;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n)) reduction(+ : empty)
#endif
    for (index_t i = 0; i < n; ++i) {
        const T* row = P + i * C;
        if (prefer && row[prefer[i]] >= t) {
            targets[i] = prefer[i];
            continue;
        }
        label_t best = 0;
        for (index_t y = 1; y < C; ++y)
            if (row[y] > row[best]) best = static_cast<label_t>(y);
        if (row[best] >= t) {
            targets[i] = best;
        } else {
            targets[i] = -1;
            ++empty;
        }
    }
    return empty;
}

// ------------------------------------------------------ explicit instances
#define CREMBO_INSTANTIATE(T)                                                                  \
    template void beliefs_from_votes<T>(const label_t*, index_t, index_t, index_t, T*);        \
    template void check_beliefs<T>(const T*, index_t, index_t, double);                        \
    template void normalize_beliefs<T>(T*, index_t, index_t);                                  \
    template void point_depth<T>(const T*, index_t, index_t, const label_t*, T*);              \
    template T empirical_depth<T>(const T*, index_t, index_t, const label_t*, double);         \
    template void depth_profile<T>(const T*, index_t, const T*, index_t, double*);             \
    template T max_achievable_depth<T>(const T*, index_t, index_t);                            \
    template void row_argmax<T>(const T*, index_t, index_t, label_t*, T*);                     \
    template std::vector<T> candidate_thresholds<T>(const T*, index_t, index_t, T, T);         \
    template std::vector<T> budgeted_thresholds<T>(const T*, index_t, index_t, index_t, T, T); \
    template void allowed_labels<T>(const T*, index_t, index_t, T, std::uint8_t*);             \
    template index_t count_violations<T>(const T*, index_t, index_t, const label_t*, T);       \
    template index_t allowed_targets<T>(const T*, index_t, index_t, T, const label_t*, label_t*);

CREMBO_INSTANTIATE(float)
CREMBO_INSTANTIATE(double)
#undef CREMBO_INSTANTIATE

}  // namespace crembo
