// The histogram classifier tree's builder (fit_hist_tree, crembo/hist_tree.hpp):
// grows the tree depth first or best first from the histograms
// (crembo/detail/histogram.hpp) and split finding (crembo/detail/split.hpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "crembo/detail/binned.hpp"
#include "crembo/detail/histogram.hpp"
#include "crembo/detail/parallel.hpp"
#include "crembo/detail/split.hpp"
#include "crembo/hist_tree.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define CREMBO_HIST_SSE2 1
#endif

namespace crembo {

namespace {

using detail::HistLayout;
using detail::RowTargets;
using detail::Score;
using detail::SplitContext;
using detail::SplitInfo;
using detail::Totals;

// One spare buffer per process for count mode's packed rows: CREMBO refits
// many trees on the same rows, and a fresh buffer costs a page fault per
// 4 KiB on first touch (on a 2-core shared box, 12k faults for 48 MB took
// about 25 ms, more than a depth-8 fit of 10^6 rows). A fit takes the spare
// when it is large enough and gives its buffer back when done; the larger
// one is kept, up to kSpareMax bytes (about 10M rows of 20 features; a
// larger fit frees its buffer, so memory held between fits stays bounded).
constexpr size_t kSpareMax = size_t(1) << 28;

struct Spare {
    std::mutex mutex;
    std::unique_ptr<std::uint8_t[]> buf;
    size_t cap = 0;
};

Spare& spare() {
    static Spare s;
    return s;
}

}  // namespace

std::size_t release_hist_buffers() {
    std::unique_ptr<std::uint8_t[]> freed;  // freed after the lock is let go
    Spare& s = spare();
    std::lock_guard<std::mutex> lock(s.mutex);
    const size_t bytes = s.buf ? s.cap : 0;
    freed = std::move(s.buf);
    s.cap = 0;
    return bytes;
}

namespace {

class Workspace {
public:
    Workspace() = default;
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace() {
        if (!buf_ || cap_ > kSpareMax) return;
        Spare& s = spare();
        std::lock_guard<std::mutex> lock(s.mutex);
        if (cap_ > s.cap) {
            s.buf = std::move(buf_);
            s.cap = cap_;
        }
    }
    // At least `bytes` bytes (contents undefined).
    std::uint8_t* get(size_t bytes) {
        {
            Spare& s = spare();
            std::lock_guard<std::mutex> lock(s.mutex);
            if (s.buf && s.cap >= bytes) {
                buf_ = std::move(s.buf);
                cap_ = s.cap;
                s.cap = 0;
            }
        }
        if (!buf_) {
            buf_.reset(new std::uint8_t[bytes]);
            cap_ = bytes;
        }
        return buf_.get();
    }

private:
    std::unique_ptr<std::uint8_t[]> buf_;
    size_t cap_ = 0;
};

// Histogram buffers are recycled through a pool per builder: a buffer of
// `size` elements (contents undefined), and a node's buffer given back.
template <class T>
std::vector<T> take_pooled(std::vector<std::vector<T>>& pool, index_t size) {
    if (pool.empty()) return std::vector<T>(size_t(size));
    std::vector<T> h = std::move(pool.back());
    pool.pop_back();
    return h;
}

template <class T>
void give_pooled(std::vector<std::vector<T>>& pool, std::vector<T>& h) {
    if (!h.empty()) pool.push_back(std::move(h));
    h = std::vector<T>();
}

// A node waiting to be split: its rows are samples_[begin, begin + tot.cnt).
struct Pending {
    index_t begin = 0;
    int depth = 0;
    index_t parent = -1;
    bool is_left = false;
    index_t id = -1;
    Totals tot;
    std::vector<double> hist;  // empty: not built
    SplitInfo split;
    Score gain;
    bool ordered = false;  // its rows' node-ordered copies (Builder::ord_*) are valid
    // Count mode (Builder::counting_): the histogram as class counts, and
    // whether the node's rows are packed (Builder::packed_[begin, end); the
    // root's are not, at first).
    std::vector<std::uint32_t> counts;  // empty: not built
    bool packed = false;
    index_t end() const { return begin + tot.cnt; }
};

class Builder {
public:
    Builder(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt);
    Tree build();

private:
    SplitContext ctx_;
    HistLayout layout_;
    RowTargets targets_;
    index_t m_ = 0;  // local rows (the selected ones)
    const std::uint8_t* codes_ = nullptr;
    std::vector<std::uint8_t> codes_local_;
    std::vector<index_t> samples_, scratch_;  // the rows to fit, grouped by node
    std::vector<std::vector<double>> pool_;
    size_t kept_hist_bytes_ = 0;
    Tree tree_;

    std::vector<double> take_hist();
    void give_hist(std::vector<double>& h);
    // Node-ordered copies of the rows (single labels): for an ordered node,
    // position k in [begin, end) holds row samples_[k]'s codes (row-major,
    // ord_codes_[k*d, (k+1)*d)), label and criterion weight. A node takes
    // them when it first holds a small share of the rows (its rows are
    // scattered: reading them in place costs a cache miss per row and
    // feature); its descendants keep them through the partitions.
    std::vector<std::uint8_t> ord_codes_, tmp_codes_;
    std::vector<label_t> ord_y_, tmp_y_;
    std::vector<double> ord_w_, tmp_w_;
    // Ordering a node costs about one histogram pass: it pays only when its
    // children build histograms too, and then when its rows are scattered
    // (a small share of all) or many histogram levels lie below it (on 10^6
    // x 20 binary rows, one thread: ordering from the root cut a depth-8
    // fit by about a tenth and slowed a depth-4 fit by a third).
    bool wants_order(const Pending& p) const {
        const int max_depth = ctx_.opt.max_depth;
        if (!targets_.labels() || ctx_.n_features < 2) return false;
        if (max_depth >= 0 && p.depth + 2 > max_depth) return false;
        return p.tot.cnt * 16 < m_ || max_depth < 0 || max_depth - p.depth >= 6;
    }
    void make_ordered(Pending& p);
    void build_hist(std::vector<double>& h, Pending& p) {
        h = take_hist();
        if (!p.ordered && wants_order(p)) make_ordered(p);
        if (p.ordered) {
            const index_t d = ctx_.n_features;
            detail::build_histogram_ordered(layout_, ord_codes_.data() + p.begin * d, ord_y_.data() + p.begin,
                                            ord_w_.data() + p.begin, p.tot.cnt, h.data(), ctx_.threads);
        } else {
            detail::build_histogram(layout_, codes_, m_, targets_, samples_.data() + p.begin, p.tot.cnt,
                                    h.data(), ctx_.threads);
        }
    }
    // Nodes of at most this many rows find their split without a histogram:
    // below about one row per histogram slot a node's histogram (zeroing,
    // summing and scanning every slot) costs more than sorting its rows.
    bool is_small(const Pending& p) const {
        return p.tot.cnt <= std::max<index_t>(32, layout_.slots() / ctx_.n_features);
    }
    bool needs_hist(const Pending& p) const {
        return detail::splittable(p.tot, p.depth, ctx_) && !is_small(p);
    }
    SplitInfo small_node_split(const Pending& p) const;

    // Count mode: single labels whose weight is their class's weight (no
    // sample weights, or sample weights of 1; count_cw_). A node's
    // histogram is then kept as integer class counts per bin (slot*C +
    // class), exact whatever the order of the additions, and converted to
    // the double slots (class mass = count x class weight, weight = their
    // sum over the classes, rows = count) only where a feature's split is
    // scanned. With unit weights every sum is a count, exact in a double,
    // and the trees are those of the weighted path bit for bit; with class
    // weights the masses are products instead of running sums, equal to
    // rounding. A node small enough to sort its rows (small_count_split)
    // counts its rows' classes per bin too, and converts them the same way.
    // Rows are packed
    // row-major, row_bytes_ per row (the d codes, the label, zero padding to
    // 8 bytes), and partitioned between the two buffers of packed_: a
    // node's rows are contiguous and each histogram pass reads only them, in
    // order. Rows of a node whose children cannot split are never moved.
    bool counting_ = false;
    // Count mode's threads: a histogram pass of 2^20 row-features takes
    // about 0.3 ms (one thread), worth starting a thread for; a split scan
    // (about 10 ns a slot) is threaded only from kParallelScan slots on.
    static constexpr index_t kCountParallelWork = index_t(1) << 20;
    static constexpr index_t kParallelScan = index_t(1) << 15;
    SplitContext scan_ctx_;
    index_t row_bytes_ = 0;
    Workspace ws_;  // labels8_ and packed_
    std::uint8_t* packed_ = nullptr;
    index_t count_size_ = 0;    // counts per histogram
    index_t count_stride_ = 0;  // counts per feature
    std::vector<std::vector<std::uint32_t>> count_pool_;
    std::vector<double> count_cw_;  // class weights of count mode (1 when none are given)
    // count x 1.0 is the count itself: unit weights keep exact sums.
    double class_mass(index_t c, std::uint64_t count) const { return double(count) * count_cw_[size_t(c)]; }
    // One double slot from class counts count_of(c): the class masses, their
    // sum over the classes (in class order), the rows. count_of(c) is read
    // before slot[2 + c] is written, so it may read the slot itself.
    template <class CountOf>
    void mass_slot(double* slot, CountOf count_of) const {
        std::uint64_t rows = 0;
        double weight = 0.0;
        for (index_t c = 0; c < ctx_.n_classes; ++c) {
            const std::uint64_t k = count_of(c);
            rows += k;
            slot[2 + c] = class_mass(c, k);
            weight += slot[2 + c];
        }
        slot[0] = weight;
        slot[1] = double(rows);
    }
    // Fit rows: n_fit_, fit row k being row src_rows_[k] of src_codes_
    // (src_n_ rows; src_rows_ empty: row k) with label labels8_[k]. The root
    // reads them there: its histogram column by column, and its partition
    // packs the rows; the rows are packed in place (pack_all) only when the
    // root sorts them (a small root).
    index_t n_fit_ = 0;
    const std::uint8_t* src_codes_ = nullptr;
    index_t src_n_ = 0;
    std::vector<index_t> src_rows_;
    std::uint8_t* labels8_ = nullptr;
    Totals root_tot_;
    void alloc_counting(index_t n) {
        n_fit_ = n;
        row_bytes_ = (ctx_.n_features + 1 + 7) / 8 * 8;
        const size_t lab = (size_t(n) + 63) / 64 * 64;
        labels8_ = ws_.get(lab + size_t(n * row_bytes_));
        packed_ = labels8_ + lab;
    }
    template <class LabelOf>
    void init_counting(const BinnedView& X, index_t n, const index_t* fit, LabelOf label_of);
    void pack_block(index_t k0, index_t k1, std::uint8_t* out) const;
    void pack_all();
    std::vector<std::uint32_t> take_counts();
    void give_counts(std::vector<std::uint32_t>& h);
    void build_counts(std::vector<std::uint32_t>& h, const Pending& p);
    SplitInfo count_split(const Pending& p) const;
    SplitInfo small_count_split(const Pending& p) const;
    Totals count_totals(const index_t* counts) const;
    void expand_counts(Pending& p, Pending& L, Pending& R);
    bool has_hist(const Pending& p) const { return counting_ ? !p.counts.empty() : !p.hist.empty(); }
    void drop_hist(Pending& p) {
        if (counting_)
            give_counts(p.counts);
        else
            give_hist(p.hist);
    }

    void evaluate(Pending& p);
    void add_node(Pending& p) {
        p.id = detail::append_node(tree_, p.tot, p.depth, p.parent, p.is_left, ctx_);
    }
    void expand(Pending& p, Pending& L, Pending& R);
};

Builder::Builder(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt) {
    detail::check_binned_view(X);
    detail::require(y.n_classes >= 1, "n_classes: expected at least one class");
    ctx_ = detail::make_split_context(X, y.n_classes, y.labels != nullptr, opt, 0.0);
    const index_t d = X.n_features;
    if (X.rows == nullptr) {
        m_ = X.n_rows;
        codes_ = X.codes;
    } else {
        m_ = X.n_selected;
        detail::require(m_ >= 1, "rows: expected at least one selected row");
        for (index_t t = 0; t < m_; ++t)
            if (X.rows[t] < 0 || X.rows[t] >= X.n_rows) {
                std::ostringstream msg;
                msg << "rows[" << t << "] = " << X.rows[t] << " is outside [0, " << X.n_rows << ")";
                throw std::invalid_argument(msg.str());
            }
    }
    layout_ = HistLayout(X.n_bins, d, y.n_classes);
    const index_t C = y.n_classes;
    // Count mode's class weights (1 when none are given).
    std::vector<double> cw(size_t(C), 1.0);
    bool positive = true;  // every class weight finite and > 0
    for (index_t c = 0; y.class_weight && c < C; ++c) {
        cw[size_t(c)] = y.class_weight[c];
        positive = positive && std::isfinite(cw[size_t(c)]) && cw[size_t(c)] > 0;
    }
    // Count mode straight from the labels when no sample weight is given and
    // every class weight is positive: every row is fitted with its class's
    // weight. The labels get prepare_targets's check, without its per-row
    // arrays.
    const bool plain =
        y.labels != nullptr && y.sample_weight == nullptr && positive && C <= 256 && m_ < (index_t(1) << 31);
    if (plain) {
        for (index_t r = 0; r < m_; ++r)
            if (y.labels[r] < 0 || y.labels[r] >= C) detail::bad_label("y", r, y.labels[r], C);
        count_cw_ = std::move(cw);
        init_counting(X, m_, nullptr, [&](index_t r) { return y.labels[r]; });
        // The total weight is known once the classes are counted.
        ctx_.min_weight_leaf = scan_ctx_.min_weight_leaf = opt.min_weight_fraction_leaf * root_tot_.W;
        return;
    }
    double total = 0.0;
    targets_ = detail::prepare_targets(y, m_, opt.criterion, samples_, total);
    detail::require(total > 0 && !samples_.empty(), "sample_weight: the rows to fit have zero total weight");
    ctx_.min_weight_leaf = opt.min_weight_fraction_leaf * total;
    // Count mode too when every row to fit has sample weight 1 (weights 0
    // and 1): its weight is then its class's.
    bool unit = targets_.labels() && C <= 256 && index_t(samples_.size()) < (index_t(1) << 31);
    for (size_t k = 0; unit && k < samples_.size(); ++k) {
        const index_t r = samples_[k];
        unit = targets_.omega[size_t(r)] == cw[size_t(targets_.y[size_t(r)])];
    }
    if (unit) {
        count_cw_ = std::move(cw);
        init_counting(X, index_t(samples_.size()), samples_.data(),
                      [&](index_t k) { return targets_.y[size_t(samples_[size_t(k)])]; });
        targets_ = RowTargets();
        samples_ = std::vector<index_t>();
        return;
    }
    if (X.rows != nullptr) {
        // Local rows: a subset is gathered once so every pass reads contiguous codes.
        codes_local_.resize(size_t(m_ * d));
        const index_t n = X.n_rows, m = m_;
        const std::uint8_t* src = X.codes;
        std::uint8_t* dst = codes_local_.data();
        const index_t* rows = X.rows;
        detail::parallel_for(d, m * d >= detail::kParallelWork ? ctx_.threads : 1, [&](index_t j, int) {
            for (index_t t = 0; t < m; ++t) dst[j * m + t] = src[j * n + rows[t]];
        });
        codes_ = codes_local_.data();
    }
    scratch_.resize(samples_.size());
}

// Count mode's setup for n fit rows, fit row k being row fit[k] of the
// selected rows (fit null: row k) with label label_of(k), checked: the
// buffers, where each fit row's codes are, the count layout and the root's
// totals.
template <class LabelOf>
void Builder::init_counting(const BinnedView& X, index_t n, const index_t* fit, LabelOf label_of) {
    const index_t d = ctx_.n_features, C = ctx_.n_classes;
    counting_ = true;
    alloc_counting(n);
    std::vector<index_t> per_class(size_t(C), 0);
    for (index_t k = 0; k < n; ++k) {
        const label_t c = label_of(k);
        labels8_[size_t(k)] = std::uint8_t(c);
        ++per_class[size_t(c)];
    }
    src_codes_ = X.codes;
    src_n_ = X.n_rows;
    if (fit != nullptr || X.rows != nullptr) {
        src_rows_.resize(size_t(n_fit_));
        for (index_t k = 0; k < n_fit_; ++k) {
            const index_t r = fit ? fit[k] : k;
            src_rows_[size_t(k)] = X.rows ? X.rows[r] : r;
        }
    }
    // Every feature gets the slots of the one with most bins, so that
    // feature j's counts start at j * count_stride_.
    int most = 0;
    for (index_t j = 0; j < d; ++j) most = std::max(most, ctx_.n_bins[j] + 1);
    count_stride_ = most * C;
    count_size_ = d * count_stride_;
    scan_ctx_ = ctx_;
    if (layout_.slots() < kParallelScan) scan_ctx_.threads = 1;
    root_tot_ = count_totals(per_class.data());
}

// Transposes the 8 x 8 bytes of x (byte t of x[i] becomes byte i of x[t],
// little-endian): three rounds of swapping the off-diagonal halves of 2 x 2
// blocks of bytes, byte pairs, then byte quads.
inline void transpose8x8(std::uint64_t* x) {
    for (int i = 0; i < 8; i += 2) {
        const std::uint64_t t = ((x[i] >> 8) ^ x[i + 1]) & 0x00FF00FF00FF00FFull;
        x[i + 1] ^= t;
        x[i] ^= t << 8;
    }
    for (int i = 0; i < 8; i += 4)
        for (int u = i; u < i + 2; ++u) {
            const std::uint64_t t = ((x[u] >> 16) ^ x[u + 2]) & 0x0000FFFF0000FFFFull;
            x[u + 2] ^= t;
            x[u] ^= t << 16;
        }
    for (int u = 0; u < 4; ++u) {
        const std::uint64_t t = ((x[u] >> 32) ^ x[u + 4]) & 0x00000000FFFFFFFFull;
        x[u + 4] ^= t;
        x[u] ^= t << 32;
    }
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr bool kLittleEndian = false;
#else
constexpr bool kLittleEndian = true;
#endif

// Packs fit rows [k0, k1) row-major into out: each row's codes, its label,
// zero padding. Eight bytes of a row at a time: from eight consecutive rows
// of eight columns (an 8 x 8 byte transpose) when the rows are all rows in
// order, else one row at a time.
void Builder::pack_block(index_t k0, index_t k1, std::uint8_t* out) const {
    const index_t d = ctx_.n_features, Rb = row_bytes_, N = src_n_, n = k1 - k0;
    const index_t* gi = src_rows_.empty() ? nullptr : src_rows_.data() + k0;
    const std::uint8_t* lab = labels8_ + k0;
    for (index_t w = 0; w < Rb / 8; ++w) {
        // Byte q of the word: column 8w + q, the label (q = d - 8w) or 0.
        const std::uint8_t* col[8];
        const std::uint8_t* seq[8];
        for (int q = 0; q < 8; ++q) {
            const index_t j = 8 * w + q;
            col[q] = j < d ? src_codes_ + j * N : nullptr;
            seq[q] = j < d ? col[q] + k0 : j == d ? lab : nullptr;
        }
        std::uint8_t* o = out + 8 * w;
        index_t k = 0;
        if (kLittleEndian && gi == nullptr) {
#ifdef CREMBO_HIST_SSE2
            // Sixteen rows at a time: bytes, then byte pairs, then quads
            // interleaved; each register then holds two rows' words.
            for (; k + 16 <= n; k += 16) {
                __m128i a[8];
                for (int q = 0; q < 8; ++q)
                    a[q] = seq[q] ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(seq[q] + k))
                                  : _mm_setzero_si128();
                __m128i b[8], c[8];
                for (int q = 0; q < 8; q += 2) {
                    b[q] = _mm_unpacklo_epi8(a[q], a[q + 1]);
                    b[q + 1] = _mm_unpackhi_epi8(a[q], a[q + 1]);
                }
                // c[0..3]: rows 0-3, 4-7, 8-11, 12-15 of columns 0-3; c[4..7] of columns 4-7.
                for (int h = 0; h < 2; ++h) {
                    c[4 * h + 0] = _mm_unpacklo_epi16(b[4 * h + 0], b[4 * h + 2]);
                    c[4 * h + 1] = _mm_unpackhi_epi16(b[4 * h + 0], b[4 * h + 2]);
                    c[4 * h + 2] = _mm_unpacklo_epi16(b[4 * h + 1], b[4 * h + 3]);
                    c[4 * h + 3] = _mm_unpackhi_epi16(b[4 * h + 1], b[4 * h + 3]);
                }
                for (int u = 0; u < 4; ++u) {
                    const __m128i lo = _mm_unpacklo_epi32(c[u], c[4 + u]);  // rows 4u, 4u + 1
                    const __m128i hi = _mm_unpackhi_epi32(c[u], c[4 + u]);  // rows 4u + 2, 4u + 3
                    std::uint8_t* r = o + (k + 4 * u) * Rb;
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(r), lo);
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(r + Rb), _mm_srli_si128(lo, 8));
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(r + 2 * Rb), hi);
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(r + 3 * Rb), _mm_srli_si128(hi, 8));
                }
            }
#endif
            for (; k + 8 <= n; k += 8) {
                std::uint64_t x[8];
                for (int q = 0; q < 8; ++q) {
                    x[q] = 0;
                    if (seq[q]) std::memcpy(&x[q], seq[q] + k, 8);
                }
                transpose8x8(x);
                for (int t = 0; t < 8; ++t) std::memcpy(o + (k + t) * Rb, &x[t], 8);
            }
        }
        for (; k < n; ++k) {
            const index_t g = gi ? gi[k] : k0 + k;
            std::uint8_t* row = o + k * Rb;
            for (int q = 0; q < 8; ++q) row[q] = col[q] ? col[q][g] : seq[q] ? lab[k] : 0;
        }
    }
}

void Builder::pack_all() {
    const index_t Rb = row_bytes_, n = n_fit_;
    std::uint8_t* dst = packed_;
    constexpr index_t kBlock = 4096;
    const index_t blocks = (n + kBlock - 1) / kBlock;
    detail::parallel_for(blocks, n * ctx_.n_features >= detail::kParallelWork ? ctx_.threads : 1,
                         [&](index_t b, int) {
                             const index_t k0 = b * kBlock, k1 = std::min(n, k0 + kBlock);
                             pack_block(k0, k1, dst + k0 * Rb);
                         });
}

std::vector<std::uint32_t> Builder::take_counts() { return take_pooled(count_pool_, count_size_); }

void Builder::give_counts(std::vector<std::uint32_t>& h) { give_pooled(count_pool_, h); }

// The class counts of p's rows per bin. Feature-parallel on large nodes (one
// contiguous group of features per thread, every thread reading the rows).
void Builder::build_counts(std::vector<std::uint32_t>& h, const Pending& p) {
    h = take_counts();
    const index_t d = ctx_.n_features, C = ctx_.n_classes, Rb = row_bytes_, n = p.tot.cnt;
    std::uint32_t* out = h.data();
    const bool par = ctx_.threads > 1 && n * d >= kCountParallelWork;
    if (!p.packed) {
        // The root, from the columns.
        const std::uint8_t* lab = labels8_;
        const index_t* gi = src_rows_.empty() ? nullptr : src_rows_.data();
        detail::parallel_for(d, par ? ctx_.threads : 1, [&](index_t j, int) {
            std::uint32_t* hj = out + j * count_stride_;
            std::fill(hj, hj + count_stride_, 0u);
            const std::uint8_t* col = src_codes_ + j * src_n_;
            if (gi != nullptr) {
                for (index_t k = 0; k < n; ++k) ++hj[C * index_t(col[gi[k]]) + lab[k]];
            } else if (C == 2) {
                for (index_t k = 0; k < n; ++k) ++hj[2 * index_t(col[k]) + lab[k]];
            } else {
                for (index_t k = 0; k < n; ++k) ++hj[C * index_t(col[k]) + lab[k]];
            }
        });
        return;
    }
    const std::uint8_t* base = packed_ + p.begin * Rb;
    const index_t groups = par ? std::min<index_t>(ctx_.threads, d) : 1;
    const index_t stride = count_stride_;
    detail::parallel_for(groups, int(groups), [&](index_t g, int) {
        const index_t j0 = d * g / groups, j1 = d * (g + 1) / groups;
        const index_t lo = j0 * stride, hi = j1 * stride;
        std::fill(out + lo, out + hi, 0u);
        if (C == 2) {
            for (index_t k = 0; k < n; ++k) {
                const std::uint8_t* r = base + k * Rb;
                const index_t yk = r[d];
                std::uint32_t* o = out + j0 * stride + yk;
                for (index_t j = j0; j < j1; ++j, o += stride) ++o[2 * index_t(r[j])];
            }
        } else {
            for (index_t k = 0; k < n; ++k) {
                const std::uint8_t* r = base + k * Rb;
                const index_t yk = r[d];
                std::uint32_t* o = out + j0 * stride + yk;
                for (index_t j = j0; j < j1; ++j, o += stride) ++o[C * index_t(r[j])];
            }
        }
    });
}

// The double slots of the occupied bins only, and the totals from the
// counts: the values slots_from_histogram would give (every sum a count,
// exact), without converting and summing the empty bins.
SplitInfo Builder::count_split(const Pending& p) const {
    const index_t C = ctx_.n_classes, S = layout_.stride();
    const std::uint32_t* counts = p.counts.data();
    return detail::best_split(p.tot, scan_ctx_, [&](index_t j, detail::FeatureSlots& sc) {
        const int nb = ctx_.n_bins[j];
        const std::uint32_t* h = counts + j * count_stride_;
        sc.runs.resize(size_t((nb + 1) * S));
        double* runs = sc.runs.data();
        sc.items.assign(size_t(C), 0);  // class totals
        std::uint64_t* tot = sc.items.data();
        for (int b = 0; b < nb; ++b) {
            const std::uint32_t* c = h + b * C;
            std::uint64_t sum = 0;
            for (index_t k = 0; k < C; ++k) sum += c[k];
            if (sum == 0) continue;
            double* slot = runs + sc.occ.size() * size_t(S);
            mass_slot(slot, [&](index_t k) { return std::uint64_t(c[k]); });
            for (index_t k = 0; k < C; ++k) tot[k] += c[k];
            sc.occ.push_back(b);
            sc.slot.push_back(slot);
        }
        double* missing = runs + nb * S;
        const std::uint32_t* m = h + nb * C;
        mass_slot(missing, [&](index_t k) { return std::uint64_t(m[k]); });
        for (index_t k = 0; k < C; ++k) tot[k] += m[k];
        mass_slot(sc.T.data(), [&](index_t k) { return tot[k]; });
        sc.missing = missing;
    });
}

// The slots of a small node's feature from its rows' items (the bin code in
// the bits from `shift` up, the row's payload below), sorted here: one run
// of slots per occupied bin (sc.occ, sc.slot), the missing bin nb in sc.M,
// the totals in sc.T; add(s, item) adds the item's row to the slots s.
template <class Add>
void sum_sorted_runs(detail::FeatureSlots& sc, int nb, index_t S, int shift, Add add) {
    std::sort(sc.items.begin(), sc.items.end());
    sc.runs.assign(sc.items.size() * size_t(S), 0.0);
    std::fill(sc.M.begin(), sc.M.end(), 0.0);
    std::fill(sc.T.begin(), sc.T.end(), 0.0);
    double* run = nullptr;
    int cur = -1;
    for (const std::uint64_t item : sc.items) {
        const int code = int(item >> shift);
        double* s;
        if (code == nb) {
            s = sc.M.data();
        } else {
            if (code != cur) {
                run = sc.runs.data() + sc.occ.size() * size_t(S);
                sc.occ.push_back(code);
                sc.slot.push_back(run);
                cur = code;
            }
            s = run;
        }
        add(s, item);
    }
    for (size_t r = 0; r < sc.occ.size(); ++r)
        for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += sc.slot[r][c];
    for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += sc.M[size_t(c)];
    sc.missing = sc.M.data();
}

// small_node_split in count mode: per feature the node's (code, label)
// pairs sorted and each bin's rows counted per class (exact in a double),
// then every slot converted to class masses as count_split does, so ties
// between splits are settled the same way whether or not a node has a
// histogram.
SplitInfo Builder::small_count_split(const Pending& p) const {
    const index_t S = layout_.stride(), d = ctx_.n_features, Rb = row_bytes_, n = p.tot.cnt;
    const std::uint8_t* base = packed_ + p.begin * Rb;
    return detail::best_split(p.tot, scan_ctx_, [&](index_t j, detail::FeatureSlots& sc) {
        const int nb = ctx_.n_bins[j];
        sc.items.resize(size_t(n));
        for (index_t k = 0; k < n; ++k) {
            const std::uint8_t* r = base + k * Rb;
            sc.items[size_t(k)] = (std::uint64_t(r[j]) << 8) | std::uint64_t(r[d]);
        }
        sum_sorted_runs(sc, nb, S, 8, [](double* s, std::uint64_t item) { s[2 + (item & 255)] += 1.0; });
        auto to_masses = [&](double* slot) {
            mass_slot(slot, [slot](index_t c) { return std::uint64_t(slot[2 + c]); });
        };
        for (size_t r = 0; r < sc.occ.size(); ++r) to_masses(sc.runs.data() + r * size_t(S));
        to_masses(sc.M.data());
        to_masses(sc.T.data());
    });
}

// The totals node_totals gives rows of their class's weight with these
// class counts (the weight summed over the classes, as the slots have it).
Totals Builder::count_totals(const index_t* counts) const {
    const index_t C = ctx_.n_classes;
    Totals t;
    t.channel.assign(size_t(C), 0.0);
    t.allow.assign(size_t(C), 0);
    index_t n = 0;
    double W = 0.0;
    for (index_t c = 0; c < C; ++c) {
        t.channel[size_t(c)] = class_mass(c, std::uint64_t(counts[c]));
        t.allow[size_t(c)] = counts[c];
        n += counts[c];
        W += t.channel[size_t(c)];
    }
    t.cnt = n;
    t.W = W;
    return t;
}

void Builder::make_ordered(Pending& p) {
    const index_t d = ctx_.n_features, n = index_t(samples_.size());
    if (ord_codes_.empty()) {
        ord_codes_.resize(size_t(n * d));
        ord_y_.resize(size_t(n));
        ord_w_.resize(size_t(n));
    }
    const index_t begin = p.begin, end = p.end(), m = m_;
    const index_t* rows = samples_.data();
    std::uint8_t* oc = ord_codes_.data();
    const std::uint8_t* codes = codes_;
    detail::parallel_for(d, (end - begin) * d >= detail::kParallelWork ? ctx_.threads : 1,
                         [&](index_t j, int) {
                             const std::uint8_t* col = codes + j * m;
                             for (index_t k = begin; k < end; ++k) oc[k * d + j] = col[rows[k]];
                         });
    for (index_t k = begin; k < end; ++k) {
        ord_y_[size_t(k)] = targets_.y[size_t(rows[k])];
        ord_w_[size_t(k)] = targets_.omega[size_t(rows[k])];
    }
    p.ordered = true;
}

std::vector<double> Builder::take_hist() { return take_pooled(pool_, layout_.size()); }

void Builder::give_hist(std::vector<double>& h) { give_pooled(pool_, h); }

// A small node's split without a histogram: per feature, its rows sorted by
// bin and the runs summed.
SplitInfo Builder::small_node_split(const Pending& p) const {
    const index_t S = layout_.stride();
    return detail::best_split(p.tot, ctx_, [&](index_t j, detail::FeatureSlots& sc) {
        const int nb = ctx_.n_bins[j];
        const std::uint8_t* col = codes_ + j * m_;
        const index_t begin = p.begin, end = p.end();
        sc.items.resize(size_t(end - begin));
        for (index_t t = begin; t < end; ++t) {
            const index_t r = samples_[size_t(t)];
            sc.items[size_t(t - begin)] = (std::uint64_t(col[r]) << 40) | std::uint64_t(r);
        }
        sum_sorted_runs(sc, nb, S, 40, [&](double* s, std::uint64_t item) {
            detail::add_row(s, targets_, index_t(item & ((std::uint64_t(1) << 40) - 1)));
        });
    });
}

void Builder::evaluate(Pending& p) {
    p.split = SplitInfo();
    if (!detail::splittable(p.tot, p.depth, ctx_)) return;
    if (counting_) {
        if (p.counts.empty() && !is_small(p)) build_counts(p.counts, p);
        if (p.counts.empty() && !p.packed) {
            pack_all();
            p.packed = true;
        }
        p.split = p.counts.empty() ? small_count_split(p) : count_split(p);
    } else {
        if (p.hist.empty() && !is_small(p)) build_hist(p.hist, p);
        p.split =
            p.hist.empty() ? small_node_split(p) : detail::find_split(layout_, p.hist.data(), p.tot, ctx_);
    }
    if (p.split.found) p.gain = detail::split_gain(p.split, p.tot, ctx_);
}

// expand in count mode. The children's class counts come from the parent's
// histogram (or its rows); the rows move only when a child may split: left
// ones to the front of the node's range in the other buffer, right ones to
// its back (in reverse, which count sums do not see).
void Builder::expand_counts(Pending& p, Pending& L, Pending& R) {
    const SplitInfo& s = p.split;
    const index_t C = ctx_.n_classes, d = ctx_.n_features, Rb = row_bytes_, f = s.feature;
    const int nb = ctx_.n_bins[f];
    std::uint8_t go[256];
    for (int b = 0; b < 256; ++b) go[b] = b <= nb && detail::goes_left(s, b, nb) ? 1 : 0;
    const index_t begin = p.begin, n = p.tot.cnt;
    if (!p.packed && p.counts.empty()) {
        pack_all();
        p.packed = true;
    }
    const std::uint8_t* src = p.packed ? packed_ + begin * Rb : nullptr;
    std::vector<index_t> left(size_t(C), 0), right(size_t(C), 0);
    if (!p.counts.empty()) {
        const std::uint32_t* h = p.counts.data() + f * count_stride_;
        for (int b = 0; b <= nb; ++b)
            if (go[b])
                for (index_t c = 0; c < C; ++c) left[size_t(c)] += h[b * C + c];
    } else {
        for (index_t k = 0; k < n; ++k) {
            const std::uint8_t* r = src + k * Rb;
            left[r[d]] += go[r[f]];
        }
    }
    for (index_t c = 0; c < C; ++c) right[size_t(c)] = p.tot.allow[size_t(c)] - left[size_t(c)];
    L = Pending();
    R = Pending();
    L.tot = count_totals(left.data());
    R.tot = count_totals(right.data());
    L.begin = begin;
    R.begin = begin + L.tot.cnt;
    L.depth = R.depth = p.depth + 1;
    L.parent = R.parent = p.id;
    L.is_left = true;
    R.is_left = false;
    L.packed = R.packed = p.packed;
    if (detail::splittable(L.tot, L.depth, ctx_) || detail::splittable(R.tot, R.depth, ctx_)) {
        const index_t words = Rb / 8;
        if (src != nullptr) {
            // In place (count sums do not see the order): row k swapped
            // with the first right row, as in Lomuto's partition, without
            // a branch.
            std::uint8_t* rows = packed_ + begin * Rb;
            auto swap_rows = [&](std::uint8_t* a, std::uint8_t* b) {
                for (index_t w = 0; w < words; ++w) {
                    std::uint64_t x, z;
                    std::memcpy(&x, a + 8 * w, 8);
                    std::memcpy(&z, b + 8 * w, 8);
                    std::memcpy(a + 8 * w, &z, 8);
                    std::memcpy(b + 8 * w, &x, 8);
                }
            };
            // Blocks from both ends (BlockQuicksort's scheme): the right
            // rows of a front block and the left rows of a back block are
            // listed without branches, then swapped pairwise, so that only
            // misplaced rows move. Rows [0, lo) are left, [hi, n) right.
            constexpr int kB = 128;
            std::uint8_t off_l[kB], off_r[kB];
            int n_l = 0, n_r = 0, s_l = 0, s_r = 0;
            index_t lo = 0, hi = n;
            while (hi - lo >= 2 * kB) {
                if (n_l == 0) {
                    s_l = 0;
                    for (int i = 0; i < kB; ++i) {
                        off_l[n_l] = std::uint8_t(i);
                        n_l += 1 - go[rows[(lo + i) * Rb + f]];
                    }
                }
                if (n_r == 0) {
                    s_r = 0;
                    for (int i = 0; i < kB; ++i) {
                        off_r[n_r] = std::uint8_t(i);
                        n_r += go[rows[(hi - 1 - i) * Rb + f]];
                    }
                }
                const int m = std::min(n_l, n_r);
                for (int t = 0; t < m; ++t)
                    swap_rows(rows + (lo + off_l[s_l + t]) * Rb, rows + (hi - 1 - off_r[s_r + t]) * Rb);
                n_l -= m;
                n_r -= m;
                s_l += m;
                s_r += m;
                if (n_l == 0) lo += kB;
                if (n_r == 0) hi -= kB;
            }
            // The rest (and a block left half done) as in Lomuto's partition.
            index_t il = lo;
            for (index_t k = lo; k < hi; ++k) {
                std::uint8_t* r = rows + k * Rb;
                const index_t g = go[r[f]];
                swap_rows(rows + il * Rb, r);
                il += g;
            }
        } else {
            // The root: its rows packed a block at a time, then written
            // in order to the left part or the right one.
            std::uint8_t* dst = packed_;
            const index_t nl = L.tot.cnt;
            index_t il = 0, ir = 0;
            constexpr index_t kBlock = 256;
            std::vector<std::uint8_t> block(size_t(kBlock * Rb));
            for (index_t k0 = 0; k0 < n; k0 += kBlock) {
                const index_t k1 = std::min(n, k0 + kBlock);
                pack_block(k0, k1, block.data());
                for (index_t k = 0; k < k1 - k0; ++k) {
                    const std::uint8_t* r = block.data() + k * Rb;
                    const index_t g = go[r[f]];
                    std::uint8_t* a = dst + (g ? il : nl + ir) * Rb;
                    for (index_t w = 0; w < words; ++w) {
                        std::uint64_t x;
                        std::memcpy(&x, r + 8 * w, 8);
                        std::memcpy(a + 8 * w, &x, 8);
                    }
                    il += g;
                    ir += 1 - g;
                }
            }
        }
        L.packed = R.packed = true;
    }
    const bool need_l = needs_hist(L), need_r = needs_hist(R);
    Pending& small = L.tot.cnt <= R.tot.cnt ? L : R;
    Pending& big = &small == &L ? R : L;
    const bool need_small = &small == &L ? need_l : need_r;
    const bool need_big = &big == &L ? need_l : need_r;
    const bool subtract =
        need_big && !p.counts.empty() && (need_small || small.tot.cnt * d + count_size_ < big.tot.cnt * d);
    if (subtract) {
        build_counts(small.counts, small);
        std::uint32_t* h = p.counts.data();
        const std::uint32_t* q = small.counts.data();
        for (index_t k = 0; k < count_size_; ++k) h[k] -= q[k];
        big.counts = std::move(p.counts);
        p.counts = std::vector<std::uint32_t>();
        if (!need_small) give_counts(small.counts);
    } else {
        give_counts(p.counts);
        if (need_small) build_counts(small.counts, small);
        if (need_big) build_counts(big.counts, big);
    }
}

// Partitions p's rows by its split and prepares both children: totals, and
// the histograms of those that may split (the smaller child summed over its
// rows, the larger one its parent's histogram minus the smaller's).
void Builder::expand(Pending& p, Pending& L, Pending& R) {
    if (counting_) return expand_counts(p, L, R);
    const SplitInfo& s = p.split;
    const std::uint8_t* col = codes_ + s.feature * m_;
    const int nb = ctx_.n_bins[s.feature];
    const index_t begin = p.begin, end = p.end();
    index_t nl = begin, nr = 0;
    if (p.ordered) {
        // Stable partition of the rows and their ordered copies alike.
        const index_t d = ctx_.n_features, f = s.feature;
        if (tmp_codes_.empty()) {
            tmp_codes_.resize(ord_codes_.size());
            tmp_y_.resize(ord_y_.size());
            tmp_w_.resize(ord_w_.size());
        }
        std::uint8_t* oc = ord_codes_.data();
        std::uint8_t* tc = tmp_codes_.data();
        for (index_t k = begin; k < end; ++k) {
            const std::uint8_t* row = oc + k * d;
            if (detail::goes_left(s, row[f], nb)) {
                if (nl != k) {
                    samples_[size_t(nl)] = samples_[size_t(k)];
                    std::memcpy(oc + nl * d, row, size_t(d));
                    ord_y_[size_t(nl)] = ord_y_[size_t(k)];
                    ord_w_[size_t(nl)] = ord_w_[size_t(k)];
                }
                ++nl;
            } else {
                scratch_[size_t(nr)] = samples_[size_t(k)];
                std::memcpy(tc + nr * d, row, size_t(d));
                tmp_y_[size_t(nr)] = ord_y_[size_t(k)];
                tmp_w_[size_t(nr)] = ord_w_[size_t(k)];
                ++nr;
            }
        }
        std::memcpy(oc + nl * d, tc, size_t(nr * d));
        std::copy(tmp_y_.begin(), tmp_y_.begin() + nr, ord_y_.begin() + nl);
        std::copy(tmp_w_.begin(), tmp_w_.begin() + nr, ord_w_.begin() + nl);
    } else {
        for (index_t k = begin; k < end; ++k) {
            const index_t r = samples_[size_t(k)];
            if (detail::goes_left(s, col[r], nb))
                samples_[size_t(nl++)] = r;
            else
                scratch_[size_t(nr++)] = r;
        }
    }
    std::copy(scratch_.begin(), scratch_.begin() + nr, samples_.begin() + nl);
    L = Pending();
    R = Pending();
    L.begin = begin;
    R.begin = nl;
    L.depth = R.depth = p.depth + 1;
    L.parent = R.parent = p.id;
    L.is_left = true;
    R.is_left = false;
    L.ordered = R.ordered = p.ordered;
    // The smaller child's totals from its rows, the larger's by subtraction.
    const index_t n_left = nl - begin, n_right = end - nl;
    if (n_left <= n_right) {
        L.tot = detail::node_totals(targets_, samples_.data() + begin, n_left);
        R.tot = detail::minus(p.tot, L.tot);
    } else {
        R.tot = detail::node_totals(targets_, samples_.data() + nl, n_right);
        L.tot = detail::minus(p.tot, R.tot);
    }
    // Children that will split with a histogram need one (small nodes sort
    // their rows instead).
    const bool need_l = needs_hist(L), need_r = needs_hist(R);
    Pending& small = n_left <= n_right ? L : R;
    Pending& big = &small == &L ? R : L;
    const bool need_small = &small == &L ? need_l : need_r;
    const bool need_big = &big == &L ? need_l : need_r;
    // Subtracting costs the smaller child's rows plus two passes over a
    // histogram; summing the bigger child directly costs its rows and one.
    const index_t d = ctx_.n_features;
    const bool subtract =
        need_big && !p.hist.empty() && (need_small || small.tot.cnt * d + layout_.size() < big.tot.cnt * d);
    if (subtract) {
        build_hist(small.hist, small);
        detail::subtract_histogram(layout_, p.hist.data(), small.hist.data());
        big.hist = std::move(p.hist);
        p.hist = std::vector<double>();
        if (!need_small) give_hist(small.hist);
    } else {
        give_hist(p.hist);
        if (need_small) build_hist(small.hist, small);
        if (need_big) build_hist(big.hist, big);
    }
}

Tree Builder::build() {
    tree_ = Tree();
    tree_.n_features = ctx_.n_features;
    tree_.n_classes = ctx_.n_classes;
    Pending root;
    root.begin = 0;
    if (counting_) {
        root.tot = root_tot_;
    } else {
        root.tot = detail::node_totals(targets_, samples_.data(), index_t(samples_.size()));
    }
    if (ctx_.opt.max_leaf_nodes < 0) {
        // Depth first; a node is numbered when taken from the stack, so the
        // numbering is preorder with the left child first (scikit-learn's).
        std::vector<Pending> stack;
        stack.push_back(std::move(root));
        while (!stack.empty()) {
            Pending p = std::move(stack.back());
            stack.pop_back();
            add_node(p);
            evaluate(p);
            if (!p.split.found) {
                drop_hist(p);
                continue;
            }
            detail::set_split(tree_, p.id, p.split);
            Pending L, R;
            expand(p, L, R);
            stack.push_back(std::move(R));
            stack.push_back(std::move(L));
        }
    } else {
        // Best first: the split of greatest gain is made next, until
        // max_leaf_nodes leaves. Frontier histograms are kept for the
        // subtraction trick up to a memory budget, then rebuilt when needed.
        constexpr size_t kKeepBytes = size_t(256) << 20;
        const size_t hist_bytes =
            counting_ ? size_t(count_size_) * sizeof(std::uint32_t) : size_t(layout_.size()) * sizeof(double);
        std::vector<Pending> frontier;
        auto worse = [](const Pending& a, const Pending& b) {
            if (a.gain.primary != b.gain.primary) return a.gain.primary < b.gain.primary;
            if (a.gain.secondary != b.gain.secondary) return a.gain.secondary < b.gain.secondary;
            return a.id > b.id;  // earlier node first on ties
        };
        auto offer = [&](Pending&& p) {
            evaluate(p);
            if (!p.split.found) {
                drop_hist(p);
                return;
            }
            if (has_hist(p)) {
                if (kept_hist_bytes_ + hist_bytes > kKeepBytes)
                    drop_hist(p);
                else
                    kept_hist_bytes_ += hist_bytes;
            }
            frontier.push_back(std::move(p));
            std::push_heap(frontier.begin(), frontier.end(), worse);
        };
        add_node(root);
        offer(std::move(root));
        index_t leaves = 1;
        while (!frontier.empty() && leaves < ctx_.opt.max_leaf_nodes) {
            std::pop_heap(frontier.begin(), frontier.end(), worse);
            Pending p = std::move(frontier.back());
            frontier.pop_back();
            if (has_hist(p)) kept_hist_bytes_ -= hist_bytes;
            detail::set_split(tree_, p.id, p.split);
            Pending L, R;
            expand(p, L, R);
            add_node(L);
            add_node(R);
            offer(std::move(L));
            offer(std::move(R));
            ++leaves;
        }
    }
    return std::move(tree_);
}

}  // namespace

Tree fit_hist_tree(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt) {
    Builder b(X, y, opt);
    return b.build();
}

}  // namespace crembo
