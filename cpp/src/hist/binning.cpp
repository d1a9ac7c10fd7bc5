// Binning of feature matrices for the histogram trees (bin_features,
// crembo/hist_tree.hpp): per feature, float32 values sorted by a radix sort
// of their order-preserving keys and cut into at most max_bins bins.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "crembo/detail/checks.hpp"
#include "crembo/detail/parallel.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo {

namespace {

// Order-preserving unsigned key of a (non-NaN) float; -0 and +0 share one.
// Without branches (the compiler vectorizes loops of it): -0's bits become
// +0's, then negative values have every bit flipped, others the sign bit.
inline std::uint32_t float_key(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    u &= -std::uint32_t(u != 0x80000000u);
    return u ^ (std::uint32_t(-std::int32_t(u >> 31)) | 0x80000000u);
}

inline float key_float(std::uint32_t k) {
    const std::uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

// Stable LSD radix sort of 64-bit items by their upper 32 bits (the key; the
// lower half carries a row index), in kPasses passes of kBits bits. Passes
// that would not move anything are skipped, which makes features with few
// distinct values cheap.
template <int kBits, int kPasses>
void radix_passes(std::vector<std::uint64_t>& a, std::vector<std::uint64_t>& tmp) {
    constexpr int kRadix = 1 << kBits;
    const size_t n = a.size();
    tmp.resize(n);
    std::vector<std::uint32_t> count(size_t(kPasses * kRadix), 0);  // n < 2^32 (bin_features)
    for (size_t i = 0; i < n; ++i) {
        const std::uint64_t k = a[i] >> 32;
        for (int p = 0; p < kPasses; ++p) ++count[size_t(p * kRadix) + ((k >> (kBits * p)) & (kRadix - 1))];
    }
    std::uint64_t* src = a.data();
    std::uint64_t* dst = tmp.data();
    for (int pass = 0; pass < kPasses; ++pass) {
        std::uint32_t* c = count.data() + pass * kRadix;
        if (std::any_of(c, c + kRadix, [n](std::uint32_t v) { return v == n; })) continue;
        std::uint32_t sum = 0;
        for (int k = 0; k < kRadix; ++k) {
            const std::uint32_t t = c[k];
            c[k] = sum;
            sum += t;
        }
        const int shift = 32 + kBits * pass;
        for (size_t i = 0; i < n; ++i) dst[c[(src[i] >> shift) & (kRadix - 1)]++] = src[i];
        std::swap(src, dst);
    }
    if (src != a.data()) std::memcpy(a.data(), src, n * sizeof(std::uint64_t));
}

// Two passes of 16 bits for many items (each pass's 65,536 counters cost
// less than a third pass over them), three of 11 bits otherwise: the same
// order either way. Measured on 85,000 float keys: 0.54 ms against 0.84.
constexpr size_t kWideRadixItems = 50000;

void radix_sort_by_key(std::vector<std::uint64_t>& a, std::vector<std::uint64_t>& tmp) {
    if (a.size() < 2) return;
    if (a.size() >= kWideRadixItems)
        radix_passes<16, 2>(a, tmp);
    else
        radix_passes<11, 3>(a, tmp);
}

inline std::uint32_t item_key(std::uint64_t item) { return std::uint32_t(item >> 32); }

// Bins over items sorted by key: the exclusive end of each bin (an index into
// items), at most max_bins of them, never inside a run of equal keys. With at
// most max_bins distinct keys every key gets its own bin; otherwise each bin
// takes about an equal share of the items left (ending at the run boundary
// nearest that share), so a value heavier than a share gets a bin alone.
std::vector<size_t> bin_ends(const std::vector<std::uint64_t>& items, int max_bins) {
    const size_t N = items.size();
    std::vector<size_t> ends;
    if (N == 0) return ends;
    int distinct = 1;
    for (size_t a = 1; a < N && distinct <= max_bins; ++a)
        distinct += item_key(items[a]) != item_key(items[a - 1]);
    if (distinct <= max_bins) {
        for (size_t a = 1; a < N; ++a)
            if (item_key(items[a]) != item_key(items[a - 1])) ends.push_back(a);
        ends.push_back(N);
        return ends;
    }
    auto by_key = [](std::uint64_t item, std::uint32_t k) { return item_key(item) < k; };
    auto key_by = [](std::uint32_t k, std::uint64_t item) { return k < item_key(item); };
    size_t pos = 0;
    int left = max_bins;
    while (pos < N) {
        const size_t target = pos + (N - pos + size_t(left) - 1) / size_t(left);
        if (left == 1 || target >= N) {
            ends.push_back(N);
            break;
        }
        // The run of equal keys holding items[target]: [rs, re).
        const std::uint32_t k = item_key(items[target]);
        const size_t rs =
            size_t(std::lower_bound(items.begin() + pos, items.begin() + target, k, by_key) - items.begin());
        const size_t re =
            size_t(std::upper_bound(items.begin() + target, items.end(), k, key_by) - items.begin());
        const size_t end = (rs > pos && target - rs <= re - target) ? rs : re;
        ends.push_back(end);
        pos = end;
        --left;
    }
    return ends;
}

// Bins one feature column (contiguous float32 values). Exact when sample is
// null: every row is sorted and coded from the sorted order. Otherwise the
// sampled rows place the bin edges and every row is coded by binary search.
void bin_one_feature(const float* col, index_t n, int max_bins, const std::vector<std::uint32_t>* sample,
                     std::uint8_t* codes, std::int32_t* n_bins_out, float* lo, float* hi,
                     std::vector<std::uint64_t>& items, std::vector<std::uint64_t>& tmp) {
    items.clear();
    const bool exact = sample == nullptr;
    index_t n_missing = 0;
    if (exact) {
        items.resize(size_t(n));
        std::uint64_t* out = items.data();
        size_t k = 0;
        for (index_t i = 0; i < n; ++i) {
            const float v = col[i];
            out[k] = (std::uint64_t(float_key(v)) << 32) | std::uint64_t(i);
            k += !std::isnan(v);
        }
        items.resize(k);
        n_missing = n - index_t(k);
    } else {
        items.resize(sample->size());
        std::uint64_t* out = items.data();
        size_t k = 0;
        for (std::uint32_t i : *sample) {
            const float v = col[i];
            out[k] = std::uint64_t(float_key(v)) << 32;
            k += !std::isnan(v);
        }
        items.resize(k);
        if (items.empty()) {  // the sample saw only missing values: bin every row instead
            bin_one_feature(col, n, max_bins, nullptr, codes, n_bins_out, lo, hi, items, tmp);
            return;
        }
    }
    radix_sort_by_key(items, tmp);
    const std::vector<size_t> ends = bin_ends(items, max_bins);
    const int nb = static_cast<int>(ends.size());
    *n_bins_out = nb;
    std::fill(lo, lo + kBinSlots, 0.0f);
    std::fill(hi, hi + kBinSlots, 0.0f);
    if (exact) {
        if (n_missing > 0)
            for (index_t i = 0; i < n; ++i)
                if (std::isnan(col[i])) codes[i] = static_cast<std::uint8_t>(nb);
        size_t a = 0;
        for (int b = 0; b < nb; ++b) {
            lo[b] = key_float(item_key(items[a]));
            hi[b] = key_float(item_key(items[ends[size_t(b)] - 1]));
            for (; a < ends[size_t(b)]; ++a) codes[items[a] & 0xffffffffu] = static_cast<std::uint8_t>(b);
        }
        return;
    }
    // Sampled edges: bin b takes the values up to the largest sampled value
    // in it; values above every edge go to the last bin. lo/hi then come from
    // every row, so they bound what each bin really holds (every bin holds at
    // least its sampled rows).
    std::vector<float> edge(static_cast<size_t>(nb));
    for (int b = 0; b < nb; ++b) edge[size_t(b)] = key_float(item_key(items[ends[size_t(b)] - 1]));
    std::vector<float> mn(static_cast<size_t>(nb), std::numeric_limits<float>::infinity());
    std::vector<float> mx(static_cast<size_t>(nb), -std::numeric_limits<float>::infinity());
    // Coding by bin lookup: the 16 top bits of a value's order-preserving
    // key give the range of bins its key can fall in (first[p] .. first[p+1],
    // almost always at most one edge apart), searched from there.
    std::vector<std::uint32_t> ekey(static_cast<size_t>(nb));
    for (int b = 0; b < nb; ++b) ekey[size_t(b)] = float_key(edge[size_t(b)]);
    std::vector<std::uint16_t> first(size_t(1) << 16 | 1);
    {
        int b = 0;
        for (std::uint64_t p = 0; p <= (std::uint64_t(1) << 16); ++p) {
            while (b < nb && std::uint64_t(ekey[size_t(b)]) < (p << 16)) ++b;
            first[size_t(p)] = static_cast<std::uint16_t>(b);
        }
    }
    for (index_t i = 0; i < n; ++i) {
        float v = col[i];
        if (std::isnan(v)) {
            codes[i] = static_cast<std::uint8_t>(nb);
            continue;
        }
        if (v == 0.0f) v = 0.0f;
        const std::uint32_t k = float_key(v);
        const size_t p = k >> 16;
        // The first edge >= v: an edge key >= k, among bins first[p] .. first[p + 1].
        int lo = first[p], hi = first[p + 1];
        while (hi - lo > 4) {
            const int mid = (lo + hi) / 2;
            if (ekey[size_t(mid)] < k)
                lo = mid + 1;
            else
                hi = mid;
        }
        while (lo < hi && ekey[size_t(lo)] < k) ++lo;
        const int b = lo >= nb ? nb - 1 : lo;
        codes[i] = static_cast<std::uint8_t>(b);
        mn[size_t(b)] = std::min(mn[size_t(b)], v);
        mx[size_t(b)] = std::max(mx[size_t(b)], v);
    }
    for (int b = 0; b < nb; ++b) {
        const bool filled = mn[size_t(b)] <= mx[size_t(b)];
        lo[b] = filled ? mn[size_t(b)] : edge[size_t(b)];
        hi[b] = filled ? mx[size_t(b)] : edge[size_t(b)];
    }
}

}  // namespace

template <class T>
void bin_features(const T* X, index_t n, index_t d, index_t row_stride, index_t col_stride,
                  const BinningOptions& opt, std::uint8_t* codes, std::int32_t* n_bins, float* bin_lo,
                  float* bin_hi) {
    detail::require(X != nullptr, "X: no data");
    detail::require(n >= 1, "X: expected at least one row");
    detail::require(d >= 1, "X: expected at least one feature");
    detail::require(n < (index_t(1) << 32), "X: at most 2^32 - 1 rows can be binned");
    detail::require(opt.max_bins >= 2 && opt.max_bins <= kMaxValueBins,
                    "max_bins: expected an integer in [2, 255]");
    detail::require(opt.subsample >= 1, "subsample: expected a positive number of rows");
    std::vector<std::uint32_t> sample;
    const bool sampled = n > opt.subsample;
    if (sampled) {
        // Partial Fisher-Yates: a uniform sample without replacement, sorted
        // so that reading it walks X forward.
        std::vector<std::uint32_t> all(static_cast<size_t>(n));
        std::iota(all.begin(), all.end(), 0u);
        std::mt19937_64 rng(opt.seed);
        for (index_t k = 0; k < opt.subsample; ++k) {
            std::uniform_int_distribution<index_t> pick(k, n - 1);
            std::swap(all[size_t(k)], all[size_t(pick(rng))]);
        }
        sample.assign(all.begin(), all.begin() + opt.subsample);
        std::sort(sample.begin(), sample.end());
    }
    const int threads = detail::resolve_threads(opt.n_threads);
    const int team = n * d >= (1 << 14) ? threads : 1;
    // Feature columns as contiguous float32: read in place when X already is
    // laid out so, otherwise copied once in row blocks (cache-friendly for
    // row-major X, whose columns are strided).
    const float* F = nullptr;
    std::unique_ptr<float[]> buf;  // not zero-filled: every element is written below
    if (std::is_same<T, float>::value && row_stride == 1 && col_stride == n) {
        F = reinterpret_cast<const float*>(X);
    } else {
        buf.reset(new float[size_t(n * d)]);
        constexpr index_t kBlock = 512;
        const index_t blocks = (n + kBlock - 1) / kBlock;
        float* out = buf.get();
        detail::parallel_for(blocks, team, [&](index_t bk, int) {
            const index_t i0 = bk * kBlock, i1 = std::min(n, i0 + kBlock);
            for (index_t j = 0; j < d; ++j)
                for (index_t i = i0; i < i1; ++i)
                    out[j * n + i] = static_cast<float>(X[i * row_stride + j * col_stride]);
        });
        F = buf.get();
    }
    std::vector<std::vector<std::uint64_t>> items(static_cast<size_t>(team)), tmp(static_cast<size_t>(team));
    detail::parallel_for(d, team, [&](index_t j, int w) {
        // Values are compared as float32: an infinity, or a finite double
        // beyond float32's range (which became one), would make a bin edge
        // and a split threshold that is not a number. scikit-learn's trees
        // refuse such input at fit too.
        const float* col = F + j * n;
        for (index_t i = 0; i < n; ++i) {
            if (std::isinf(col[i])) {
                std::ostringstream msg;
                msg << "X[" << i << ", " << j << "]: infinite or too large for float32 (|x| > "
                    << std::numeric_limits<float>::max() << "); tree features are compared as float32";
                throw std::invalid_argument(msg.str());
            }
        }
        bin_one_feature(F + j * n, n, opt.max_bins, sampled ? &sample : nullptr, codes + j * n, n_bins + j,
                        bin_lo + j * kBinSlots, bin_hi + j * kBinSlots, items[size_t(w)], tmp[size_t(w)]);
    });
}

template void bin_features<float>(const float*, index_t, index_t, index_t, index_t, const BinningOptions&,
                                  std::uint8_t*, std::int32_t*, float*, float*);
template void bin_features<double>(const double*, index_t, index_t, index_t, index_t, const BinningOptions&,
                                   std::uint8_t*, std::int32_t*, float*, float*);

}  // namespace crembo
