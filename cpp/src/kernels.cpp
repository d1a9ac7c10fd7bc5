// Data-parallel kernels of the native core: beliefs, depth, thresholds,
// allowed labels and consistency counts.
#include "crembo/core.hpp"
#include "crembo/detail/checks.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
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

// beliefs_from_votes counts by vector comparison where the compiler has
// vector extensions; saturating narrowing comes from SSE2 or NEON.
#if defined(__GNUC__) || defined(__clang__)
#define CREMBO_VOTE_SIMD 1
#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif
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

// The first bad vote of member rows [j0, j1) over points [lo, hi) as a flat
// index (member * n + point), or -1: a branch-free pass per row (it
// vectorizes), so that the counting passes need no test.
index_t first_bad_vote(const label_t* votes, index_t n, index_t C, index_t j0, index_t j1, index_t lo,
                       index_t hi) {
    const std::uint32_t uC = std::uint32_t(C);
    for (index_t j = j0; j < j1; ++j) {
        const label_t* row = votes + j * n;
        std::uint32_t any_bad = 0;
        for (index_t i = lo; i < hi; ++i) any_bad |= std::uint32_t(std::uint32_t(row[i]) >= uC);
        if (any_bad) {
            index_t i = lo;
            while (std::uint32_t(row[i]) < uC) ++i;
            return j * n + i;
        }
    }
    return -1;
}

// Counts the votes of points [lo, hi) by scattered increments and writes
// their beliefs; returns the flat index of the block's first bad vote, or
// m * n. Any class count; the path for more than kVoteSimdClasses classes
// and for compilers without vector extensions.
template <class Count, class T>
index_t count_vote_block(const label_t* votes, index_t m, index_t n, index_t C, index_t lo, index_t hi,
                         T* out) {
    const index_t w = hi - lo;
    std::vector<Count> counts(size_t(w * C), Count(0));
    Count* cnt = counts.data();
    for (index_t j = 0; j < m; ++j) {
        const index_t bad = first_bad_vote(votes, n, C, j, j + 1, lo, hi);
        if (bad >= 0) return bad;
        const label_t* row = votes + j * n + lo;
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

#ifdef CREMBO_VOTE_SIMD
// Whether narrow_votes saturates: then no vote outside [0, 32) becomes a
// byte in [0, 32), and bad votes show as points with too few matches.
#if defined(__SSE2__) || defined(__ARM_NEON)
constexpr bool kVoteNarrowSaturates = true;
#else
constexpr bool kVoteNarrowSaturates = false;
#endif
// Counting by comparison: 16 points' votes are narrowed to bytes, compared
// with each class, and the all-ones lanes of a match are subtracted from
// byte counters held in registers. Per vote this is a few vector operations
// instead of a dependent load-increment-store, so the kernel streams its
// votes near memory speed. Counters are bytes: they are spilled every
// kVoteGroup members into per-block byte counts, and those into wide counts
// before they could pass 255.
constexpr index_t kVoteSimdClasses = 32;               // more classes: scattered counts
constexpr index_t kVoteLanes = 16;                     // points per vector of byte counters
constexpr index_t kVoteGroup = 8;                      // members per pass over the block
constexpr index_t kVoteTile = 12;                      // classes whose counters one pass holds
constexpr index_t kVoteSpill = 248;                    // members between spills of the byte counts (<= 255)
constexpr index_t kVotePrefetch = 256;                 // votes ahead in each member's row
constexpr index_t kVoteSimdBytes = index_t(64) << 10;  // byte counts per block (second-level cache)

// Whether the comparison path counts these votes: up to kVoteSimdClasses
// classes, and members enough that the pass over the counts pays (with few
// members and many classes, writing the beliefs dominates either way).
bool vote_simd(index_t m, index_t C) { return C <= kVoteSimdClasses && 2 * m >= C; }

typedef std::int32_t vote_v16si __attribute__((vector_size(64)));
typedef std::int8_t vote_v16qi __attribute__((vector_size(16)));
typedef std::uint8_t vote_v16qu
    __attribute__((vector_size(16)));  // counters: unsigned, so wrapping is defined

// The 16 votes at p as bytes: exact for votes in [0, C) with C <= 32.
// Saturating packs on SSE2 and NEON (a vote outside the range becomes a
// byte outside it); elsewhere the compiler's own truncating narrowing, with
// the votes checked beforehand.
inline vote_v16qi narrow_votes(const label_t* p) {
    vote_v16qi r;
#if defined(__SSE2__)
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 12));
    const __m128i v = _mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
    std::memcpy(&r, &v, sizeof(r));
#elif defined(__ARM_NEON)
    const int16x8_t ab = vcombine_s16(vqmovn_s32(vld1q_s32(p)), vqmovn_s32(vld1q_s32(p + 4)));
    const int16x8_t cd = vcombine_s16(vqmovn_s32(vld1q_s32(p + 8)), vqmovn_s32(vld1q_s32(p + 12)));
    const int8x16_t v = vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
    std::memcpy(&r, &v, sizeof(r));
#else
    vote_v16si wide;
    std::memcpy(&wide, p, sizeof(wide));
    r = __builtin_convertvector(wide, vote_v16qi);
#endif
    return r;
}

// Adds the matches of classes [c0, c0 + K) among members [j0, j1) (at most
// kVoteGroup) over the block's 16-point chunks to the byte counts cnt8
// (class-major, stride w16).
template <int K>
void count_vote_tile(const label_t* votes, index_t n, index_t j0, index_t j1, index_t lo, index_t w16,
                     index_t c0, std::uint8_t* cnt8) {
    vote_v16qi cls[K];
    for (int k = 0; k < K; ++k) cls[k] = vote_v16qi{} + std::int8_t(c0 + k);
    for (index_t i = 0; i < w16; i += kVoteLanes) {
        vote_v16qu acc[K];
        for (int k = 0; k < K; ++k) std::memcpy(&acc[k], cnt8 + (c0 + k) * w16 + i, sizeof(vote_v16qu));
        for (index_t j = j0; j < j1; ++j) {
            const label_t* at = votes + j * n + lo + i;
            __builtin_prefetch(at + kVotePrefetch);
            const vote_v16qi v = narrow_votes(at);
            for (int k = 0; k < K; ++k) acc[k] -= (vote_v16qu)(v == cls[k]);
        }
        for (int k = 0; k < K; ++k) std::memcpy(cnt8 + (c0 + k) * w16 + i, &acc[k], sizeof(vote_v16qu));
    }
}

using vote_tile_fn = void (*)(const label_t*, index_t, index_t, index_t, index_t, index_t, index_t,
                              std::uint8_t*);
template <int... K>
constexpr std::array<vote_tile_fn, sizeof...(K)> vote_tiles(std::integer_sequence<int, K...>) {
    return {&count_vote_tile<K + 1>...};
}
constexpr auto kVoteTileFns = vote_tiles(std::make_integer_sequence<int, int(kVoteTile)>{});

// count_vote_block for C <= kVoteSimdClasses: the first w16 (a multiple of
// 16) points of the block by comparison, the rest by scattered increments.
template <class Count, class T>
index_t count_vote_block_simd(const label_t* votes, index_t m, index_t n, index_t C, index_t lo, index_t hi,
                              T* out) {
    const index_t w = hi - lo, w16 = w / kVoteLanes * kVoteLanes;
    if (w16 == 0) return count_vote_block<Count>(votes, m, n, C, lo, hi, out);
    // Classes in equal tiles of at most kVoteTile.
    const index_t n_tiles = (C + kVoteTile - 1) / kVoteTile;
    const index_t tile = (C + n_tiles - 1) / n_tiles;
    std::vector<std::uint8_t> bytes(size_t(C * w16), 0);
    std::vector<Count> wide;  // only when the byte counts could overflow
    if (m > kVoteSpill) wide.assign(size_t(C * w16), Count(0));
    std::vector<Count> tail(size_t((w - w16) * C), Count(0));
    const std::uint32_t uC = std::uint32_t(C);
    bool tail_bad = false;
    for (index_t j0 = 0, since_spill = 0; j0 < m; j0 += kVoteGroup) {
        const index_t j1 = std::min(m, j0 + kVoteGroup);
        if (!kVoteNarrowSaturates) {
            const index_t bad = first_bad_vote(votes, n, C, j0, j1, lo, hi);
            if (bad >= 0) return bad;
        }
        for (index_t c0 = 0; c0 < C; c0 += tile) {
            const index_t k = std::min(tile, C - c0);
            kVoteTileFns[size_t(k - 1)](votes, n, j0, j1, lo, w16, c0, bytes.data());
        }
        for (index_t j = j0; j < j1; ++j) {
            const label_t* row = votes + j * n + lo;
            for (index_t i = w16; i < w; ++i) {
                const std::uint32_t y = std::uint32_t(row[i]);
                tail_bad = tail_bad || y >= uC;
                if (y < uC) ++tail[size_t(i - w16) * size_t(C) + y];
            }
        }
        since_spill += j1 - j0;
        if (!wide.empty() && (since_spill + kVoteGroup > kVoteSpill || j1 == m)) {
            for (size_t k = 0; k < bytes.size(); ++k) wide[k] = Count(wide[k] + bytes[k]);
            std::fill(bytes.begin(), bytes.end(), std::uint8_t(0));
            since_spill = 0;
        }
    }
    // Writes the beliefs and adds up each point's matches: with saturating
    // narrowing no bad vote equals a class, so a point with fewer than m
    // matches has a bad vote, which a scan then locates.
    const T scale = T(1) / T(m);
    T* o = out + lo * C;
    // Point-major, so that the output is written in order (the counts are
    // read across classes from cache).
    bool bad = tail_bad;
    const auto emit = [&](const auto* counts) {
        for (index_t i = 0; i < w16; ++i) {
            index_t matched = 0;
            for (index_t c = 0; c < C; ++c) {
                const index_t k = counts[c * w16 + i];
                o[i * C + c] = T(k) * scale;
                matched += k;
            }
            bad = bad || matched != m;
        }
    };
    if (wide.empty())
        emit(bytes.data());
    else
        emit(wide.data());
    if (bad) return first_bad_vote(votes, n, C, 0, m, lo, hi);
    for (index_t k = 0; k < (w - w16) * C; ++k) o[w16 * C + k] = T(tail[size_t(k)]) * scale;
    return m * n;
}
#endif

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
#ifdef CREMBO_VOTE_SIMD
    const bool simd = vote_simd(m, C);
    const index_t block =
        simd ? std::max<index_t>(256, kVoteSimdBytes / C / kVoteLanes * kVoteLanes) : vote_block<Count>(C);
#else
    const index_t block = vote_block<Count>(C);
#endif
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
#ifdef CREMBO_VOTE_SIMD
        bad = std::min(bad, simd ? count_vote_block_simd<Count>(votes, m, n, C, lo, hi, out)
                                 : count_vote_block<Count>(votes, m, n, C, lo, hi, out));
#else
        bad = std::min(bad, count_vote_block<Count>(votes, m, n, C, lo, hi, out));
#endif
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

// The first label of largest belief in a row, without a branch per label
// (beliefs compare at random: branches would mispredict).
template <class T>
inline label_t row_best(const T* row, index_t C) {
    T top = row[0];
    label_t best = 0;
    for (index_t y = 1; y < C; ++y) {
        const T v = row[y];
        const bool above = v > top;
        top = above ? v : top;
        best = above ? static_cast<label_t>(y) : best;
    }
    return best;
}

template <class T>
void row_argmax(const T* P, index_t n, index_t C, label_t* argmax, T* row_max) {
    check_shape(n, C);
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_for(n))
#endif
    for (index_t i = 0; i < n; ++i) {
        const label_t best = row_best(P + i * C, C);
        if (argmax) argmax[i] = best;
        if (row_max) row_max[i] = P[i * C + best];
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
    return (x > 0) & (x >= lo) & (x <= hi);  // no branch: inside and outside entries mix unpredictably
}

// Distinct keys (a value's bits) and how often each occurs, in an
// open-addressing table; key 0 marks an empty slot (no positive value has
// bits 0).
template <class Bits>
class DistinctCounter {
public:
    // add() fails once the table holds more than this many keys.
    static constexpr size_t kMaxKeys = size_t(1) << 14;

    // Counts `times` more of key b; false when the table is full.
    bool add(Bits b, index_t times) {
        size_t s = slot_of(b);
        while (keys_[s] != b) {
            if (keys_[s] == 0) {
                keys_[s] = b;
                cnt_[s] = times;
                if (++used_ > kMaxKeys) return false;
                if (used_ * 2 > keys_.size()) grow();
                return true;
            }
            s = (s + 1) & (keys_.size() - 1);
        }
        cnt_[s] += times;
        return true;
    }
    bool merge(const DistinctCounter& o) {
        for (size_t j = 0; j < o.keys_.size(); ++j)
            if (o.keys_[j] != 0 && !add(o.keys_[j], o.cnt_[j])) return false;
        return true;
    }
    template <class F>
    void for_each(F&& f) const {
        for (size_t j = 0; j < keys_.size(); ++j)
            if (keys_[j] != 0) f(keys_[j], cnt_[j]);
    }

private:
    // Roomy from the start: with a vote count's few keys most lookups hit
    // their first slot.
    static constexpr int kStartBits = 10;
    int bits_ = kStartBits;  // log2 of the slots (the hash's shift)
    std::vector<Bits> keys_ = std::vector<Bits>(size_t(1) << kStartBits, Bits(0));
    std::vector<index_t> cnt_ = std::vector<index_t>(size_t(1) << kStartBits, 0);
    size_t used_ = 0;

    // Fibonacci hashing: the top bits of the product, which every bit of
    // the key moves (the low bits alone cluster a vote count's values k/m).
    static size_t slot_in(Bits b, int bits) {
        return size_t((std::uint64_t(b) * 0x9E3779B97F4A7C15ull) >> (64 - bits));
    }
    size_t slot_of(Bits b) const { return slot_in(b, bits_); }
    void grow() {  // rehash into twice the slots
        std::vector<Bits> keys(keys_.size() * 2, Bits(0));
        std::vector<index_t> cnt(keys.size(), 0);
        for (size_t j = 0; j < keys_.size(); ++j) {
            if (keys_[j] == 0) continue;
            size_t t = slot_in(keys_[j], bits_ + 1);
            while (keys[t] != 0) t = (t + 1) & (keys.size() - 1);
            keys[t] = keys_[j];
            cnt[t] = cnt_[j];
        }
        keys_.swap(keys);
        cnt_.swap(cnt);
        ++bits_;
    }
};

// The positive entries of P in [lo, hi], sorted, as distinct values and how
// often each occurs. Beliefs made of votes have few distinct values (at most
// m + 1 for m members), which one pass gathers in small hash tables keyed by
// the value's bits (one per thread, merged after); beyond kMaxKeys distinct
// values the entries are sorted instead (the same answer).
template <class T>
void distinct_entries_in(const T* P, index_t n, index_t C, T lo, T hi, std::vector<T>& values,
                         std::vector<index_t>& counts) {
    check_shape(n, C);
    check_bounds(lo, hi);
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    using Counter = DistinctCounter<Bits>;
    // Entries outside (0, [lo, hi]) are counted under the bits of a
    // negative NaN, which no entry inside has (no branch per entry).
    constexpr Bits kOutside = ~Bits(0);
    const index_t total = n * C;
    values.clear();
    counts.clear();
    auto count_range = [&](Counter& table, index_t k0, index_t k1) {
        for (index_t k = k0; k < k1; ++k) {
            const T x = P[k];
            Bits b;
            std::memcpy(&b, &x, sizeof b);
            const Bits inside = Bits(0) - Bits(entry_in(x, lo, hi));
            if (!table.add((b & inside) | (kOutside & ~inside), 1)) return false;
        }
        return true;
    };
    const int nt = threads_for(total);
    std::vector<Counter> parts(static_cast<size_t>(nt));
    int hashed = 1;
#ifdef CREMBO_WITH_OPENMP
#pragma omp parallel num_threads(nt) reduction(& : hashed)
    {
        const index_t t = omp_get_thread_num(), team = omp_get_num_threads();
        hashed = count_range(parts[static_cast<size_t>(t)], total * t / team, total * (t + 1) / team) ? 1 : 0;
    }
#else
    hashed = count_range(parts[0], 0, total) ? 1 : 0;
#endif
    for (size_t t = 1; hashed && t < parts.size(); ++t) hashed = parts[0].merge(parts[t]) ? 1 : 0;
    if (hashed) {
        std::vector<std::pair<T, index_t>> pairs;
        parts[0].for_each([&](Bits b, index_t c) {
            if (b == kOutside) return;
            T x;
            std::memcpy(&x, &b, sizeof x);
            pairs.emplace_back(x, c);
        });
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
void distinct_entries(const T* P, index_t n, index_t C, T lo, T hi, std::vector<T>& values,
                      std::vector<index_t>& counts) {
    distinct_entries_in(P, n, C, lo, hi, values, counts);
}

template <class T>
std::vector<T> budget_from_counts(const std::vector<T>& values, const std::vector<index_t>& counts,
                                  index_t K) {
    require(K >= 1, "n_thresholds: expected at least 1");
    require(values.size() == counts.size(), "budget_from_counts: values and counts differ in length");
    index_t N = 0;
    for (size_t j = 0; j < counts.size(); ++j) {
        require(counts[j] > 0, "budget_from_counts: counts must be positive");
        require(j == 0 || values[j - 1] < values[j],
                "budget_from_counts: values must be sorted and distinct");
        N += counts[j];
    }
    // The budget covers every entry: the distinct entries themselves.
    if (N == 0 || K >= N) return values;
    std::vector<T> out;
    out.reserve(static_cast<size_t>(K));
    size_t v = 0;
    index_t end = counts[0];  // entries up to and including values[v]
    for (index_t j = 0; j < K; ++j) {
        // Quantile j/(K-1) of the sorted entries, j = 0 being the smallest.
        const index_t pos = K == 1 ? 0 : (j * (N - 1)) / (K - 1);
        while (end <= pos) end += counts[++v];
        if (out.empty() || out.back() != values[v]) out.push_back(values[v]);
    }
    return out;
}

template <class T>
std::vector<T> budgeted_thresholds(const T* P, index_t n, index_t C, index_t K, T lo, T hi) {
    require(K >= 1, "n_thresholds: expected at least 1");
    std::vector<T> values;
    std::vector<index_t> counts;
    distinct_entries_in(P, n, C, lo, hi, values, counts);
    return budget_from_counts(values, counts, K);
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
        const label_t best = row_best(row, C);
        if (row[best] >= t) {
            targets[i] = best;
        } else {
            targets[i] = -1;
            ++empty;
        }
    }
    return empty;
}

// ------------------------------------------------------------- leaf sums
template <class T>
void leaf_sums(const T* P, index_t n, index_t C, const std::int64_t* leaves, const double* w,
               const std::int64_t* cols, index_t k, index_t n_nodes, double* out) {
    check_shape(n, C);
    if (k < 0 || n_nodes < 0) throw std::invalid_argument("leaf_sums: expected k >= 0 and n_nodes >= 0");
    for (index_t j = 0; j < k; ++j)
        if (cols[j] < 0 || cols[j] >= C) {
            std::ostringstream msg;
            msg << "cols[" << j << "] = " << cols[j] << " is outside [0, " << C << ")";
            throw std::invalid_argument(msg.str());
        }
    std::fill(out, out + n_nodes * k, 0.0);
    for (index_t i = 0; i < n; ++i) {
        if (leaves[i] < 0 || leaves[i] >= n_nodes) {
            std::ostringstream msg;
            msg << "leaves[" << i << "] = " << leaves[i] << " is outside [0, " << n_nodes << ")";
            throw std::invalid_argument(msg.str());
        }
        const T* row = P + i * C;
        double* o = out + leaves[i] * k;
        const double wi = w ? w[i] : 1.0;  // x * 1.0 == x: unweighted, the plain sums
        for (index_t j = 0; j < k; ++j) o[j] += double(row[cols[j]]) * wi;
    }
}

// ------------------------------------------------------ explicit instances
#define CREMBO_INSTANTIATE(T)                                                                         \
    template void beliefs_from_votes<T>(const label_t*, index_t, index_t, index_t, T*);               \
    template void check_beliefs<T>(const T*, index_t, index_t, double);                               \
    template void normalize_beliefs<T>(T*, index_t, index_t);                                         \
    template void point_depth<T>(const T*, index_t, index_t, const label_t*, T*);                     \
    template T empirical_depth<T>(const T*, index_t, index_t, const label_t*, double);                \
    template void depth_profile<T>(const T*, index_t, const T*, index_t, double*);                    \
    template T max_achievable_depth<T>(const T*, index_t, index_t);                                   \
    template void row_argmax<T>(const T*, index_t, index_t, label_t*, T*);                            \
    template std::vector<T> candidate_thresholds<T>(const T*, index_t, index_t, T, T);                \
    template std::vector<T> budgeted_thresholds<T>(const T*, index_t, index_t, index_t, T, T);        \
    template void distinct_entries<T>(const T*, index_t, index_t, T, T, std::vector<T>&,              \
                                      std::vector<index_t>&);                                         \
    template std::vector<T> budget_from_counts<T>(const std::vector<T>&, const std::vector<index_t>&, \
                                                  index_t);                                           \
    template void allowed_labels<T>(const T*, index_t, index_t, T, std::uint8_t*);                    \
    template index_t count_violations<T>(const T*, index_t, index_t, const label_t*, T);              \
    template index_t allowed_targets<T>(const T*, index_t, index_t, T, const label_t*, label_t*);     \
    template void leaf_sums<T>(const T*, index_t, index_t, const std::int64_t*, const double*,        \
                               const std::int64_t*, index_t, index_t, double*);

CREMBO_INSTANTIATE(float)
CREMBO_INSTANTIATE(double)
#undef CREMBO_INSTANTIATE

}  // namespace crembo
