// Histogram decision trees: binning, fitting and prediction (hist_tree.hpp).
#include "crembo/hist_tree.hpp"

#include "crembo/detail/binned.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace crembo {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

int resolve_threads(int n) { return n > 0 ? n : get_num_threads(); }

// Runs f(task, worker) for task in [0, n_tasks) on up to `threads` threads
// (worker in [0, threads)), tasks handed out one at a time. Plain threads
// started per call rather than an OpenMP team: the tree makes a handful of
// parallel calls per fit with serial work between them, and an OpenMP team's
// spinning idle members steal that serial work's core on a busy machine.
// The first exception thrown by f is rethrown here.
template <class F>
void parallel_for(index_t n_tasks, int threads, F&& f) {
    threads = int(std::min<index_t>(threads, n_tasks));
    if (threads <= 1) {
        for (index_t k = 0; k < n_tasks; ++k) f(k, 0);
        return;
    }
    std::atomic<index_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&](int worker) {
        try {
            for (index_t k; (k = next.fetch_add(1)) < n_tasks;) f(k, worker);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next = n_tasks;
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(size_t(threads - 1));
    for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

// ----------------------------------------------------------------- binning
// Order-preserving unsigned key of a (non-NaN) float; -0 and +0 share one.
inline std::uint32_t float_key(float v) {
    if (v == 0.0f) v = 0.0f;
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float key_float(std::uint32_t k) {
    const std::uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

// Stable LSD radix sort of 64-bit items by their upper 32 bits (the key; the
// lower half carries a row index), in three passes of 11 bits. Passes that
// would not move anything are skipped, which makes features with few
// distinct values cheap.
void radix_sort_by_key(std::vector<std::uint64_t>& a, std::vector<std::uint64_t>& tmp) {
    constexpr int kBits = 11, kRadix = 1 << kBits, kPasses = 3;
    const size_t n = a.size();
    if (n < 2) return;
    tmp.resize(n);
    std::vector<size_t> count(size_t(kPasses * kRadix), 0);
    for (size_t i = 0; i < n; ++i) {
        const std::uint64_t k = a[i] >> 32;
        ++count[k & (kRadix - 1)];
        ++count[kRadix + ((k >> kBits) & (kRadix - 1))];
        ++count[2 * kRadix + (k >> (2 * kBits))];
    }
    std::uint64_t* src = a.data();
    std::uint64_t* dst = tmp.data();
    for (int pass = 0; pass < kPasses; ++pass) {
        size_t* c = count.data() + pass * kRadix;
        if (std::any_of(c, c + kRadix, [n](size_t v) { return v == n; })) continue;
        size_t sum = 0;
        for (int k = 0; k < kRadix; ++k) {
            const size_t t = c[k];
            c[k] = sum;
            sum += t;
        }
        const int shift = 32 + kBits * pass;
        for (size_t i = 0; i < n; ++i) dst[c[(src[i] >> shift) & (kRadix - 1)]++] = src[i];
        std::swap(src, dst);
    }
    if (src != a.data()) std::memcpy(a.data(), src, n * sizeof(std::uint64_t));
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

// ------------------------------------------------------------------ fitting
// Threads work on a node only when it has this many row-features: starting
// and joining them costs more than a small node's work, and on a busy
// machine a descheduled thread stalls the join.
constexpr index_t kParallelWork = index_t(1) << 17;

struct Score {
    double primary = -kInf;
    double secondary = -kInf;
};

struct SplitInfo {
    bool found = false;
    index_t feature = -1;
    int bin = -1;  // codes <= bin go left
    bool missing_left = false;
    double threshold = 0.0;
    Score score;
    bool categorical = false;
    std::array<std::uint64_t, kCatWords> left_bins{};  // categorical: bin codes going left
    std::array<std::uint64_t, kCatWords> left_cats{};  // the same as category codes
};

inline bool has_bit(const std::array<std::uint64_t, kCatWords>& set, int v) {
    return (set[size_t(v >> 6)] >> (v & 63)) & 1u;
}
inline void set_bit(std::array<std::uint64_t, kCatWords>& set, int v) {
    set[size_t(v >> 6)] |= std::uint64_t(1) << (v & 63);
}

struct Totals {
    double W = 0.0;               // criterion weight: sum of the rows' weights
    index_t cnt = 0;              // rows
    index_t cnt_pos = 0;          // rows of positive sample weight
    std::vector<double> channel;  // criterion mass per class
    std::vector<double> mass;     // allowed (class-weighted) mass per class: the node's vote
    std::vector<index_t> allow;   // positive-weight rows allowing each class
};

struct Pending {
    index_t begin = 0, end = 0;
    int depth = 0;
    index_t parent = -1;
    bool is_left = false;
    index_t id = -1;
    Totals tot;
    std::vector<double> hist;  // empty: not built
    SplitInfo split;
    Score gain;
};

struct ScanScratch;

class Builder {
public:
    Builder(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt);
    Tree build();

private:
    // -- data
    TreeOptions opt_;
    index_t m_ = 0, d_ = 0, C_ = 0, S_ = 0, H_ = 0;
    bool labels_ = true;
    int threads_ = 1;
    double mwl_ = 0.0;  // least weight of a child
    index_t small_node_ = 0;
    const std::uint8_t* codes_ = nullptr;
    std::vector<std::uint8_t> codes_local_;
    const std::int32_t* n_bins_ = nullptr;
    const float* lo_ = nullptr;
    const float* hi_ = nullptr;
    std::vector<index_t> offset_;  // histogram slot offset of each feature
    // targets per local row
    std::vector<label_t> y_;
    std::vector<double> omega_;  // criterion weight (labels: also the class mass)
    std::vector<std::uint8_t> positive_;
    std::vector<index_t> rp_;  // CSR of the allowed sets
    // One entry per allowed (row, class): the slot offset 2 + c next to the
    // criterion mass, so the histogram pass reads them together.
    struct Entry {
        index_t slot;
        double value;
    };
    std::vector<Entry> entries_;
    std::vector<label_t> ec_;
    std::vector<double> emass_;
    std::vector<index_t> samples_, scratch_;
    std::vector<std::vector<double>> pool_;
    size_t kept_hist_bytes_ = 0;
    Tree tree_;

    // -- pieces
    std::vector<double> take_hist();
    void give_hist(std::vector<double>& h);
    void build_hist(double* h, index_t begin, index_t end) const;
    void subtract_hist(double* big, const double* small) const;
    Totals totals(index_t begin, index_t end) const;
    bool splittable(const Pending& p) const;
    Score node_score(const Totals& t) const;
    SplitInfo find_split(const double* h, const Totals& tot, index_t begin, index_t end) const;
    SplitInfo categorical_split(index_t j, ScanScratch& sc, int k, const double* M, index_t S, double msl,
                                double tol) const;
    // Adds local row p to one histogram slot (weight, rows, class masses).
    void add_row(double* s, index_t p) const {
        s[0] += omega_[size_t(p)];
        s[1] += 1.0;
        if (labels_) {
            s[2 + y_[size_t(p)]] += omega_[size_t(p)];
        } else {
            const Entry* e = entries_.data() + rp_[size_t(p)];
            const Entry* e1 = entries_.data() + rp_[size_t(p + 1)];
            for (; e < e1; ++e) s[e->slot] += e->value;
        }
    }
    // Nodes of at most this many rows find their split without a histogram.
    bool is_small(const Pending& p) const { return p.tot.cnt <= small_node_; }
    bool needs_hist(const Pending& p) const { return splittable(p) && !is_small(p); }
    void evaluate(Pending& p);
    index_t add_node(Pending& p);
    void set_split(index_t id, const SplitInfo& s);
    void expand(Pending& p, Pending& L, Pending& R);
    double impurity(const Totals& t) const;
};

Builder::Builder(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt) : opt_(opt) {
    detail::check_binned_view(X);
    require(y.n_classes >= 1, "n_classes: expected at least one class");
    require(opt.min_samples_leaf >= 1, "min_samples_leaf: expected an integer >= 1");
    require(opt.min_samples_split >= 2, "min_samples_split: expected an integer >= 2");
    require(opt.max_leaf_nodes < 0 || opt.max_leaf_nodes >= 2, "max_leaf_nodes: expected an integer >= 2");
    require(opt.min_weight_fraction_leaf >= 0 && opt.min_weight_fraction_leaf <= 0.5,
            "min_weight_fraction_leaf: expected a number in [0, 0.5]");
    d_ = X.n_features;
    C_ = y.n_classes;
    S_ = C_ + 2;
    labels_ = y.labels != nullptr;
    require(labels_ || y.allowed != nullptr, "targets: expected labels or an allowed-label mask");
    threads_ = resolve_threads(opt.n_threads);
    n_bins_ = X.n_bins;
    lo_ = X.bin_lo;
    hi_ = X.bin_hi;

    // Local rows: a subset is gathered once so every pass reads contiguous codes.
    if (X.rows == nullptr) {
        m_ = X.n_rows;
        codes_ = X.codes;
    } else {
        m_ = X.n_selected;
        require(m_ >= 1, "rows: expected at least one selected row");
        for (index_t t = 0; t < m_; ++t)
            if (X.rows[t] < 0 || X.rows[t] >= X.n_rows) {
                std::ostringstream msg;
                msg << "rows[" << t << "] = " << X.rows[t] << " is outside [0, " << X.n_rows << ")";
                throw std::invalid_argument(msg.str());
            }
        codes_local_.resize(size_t(m_ * d_));
        const index_t n = X.n_rows, m = m_;
        const std::uint8_t* src = X.codes;
        std::uint8_t* dst = codes_local_.data();
        const index_t* rows = X.rows;
        parallel_for(d_, m * d_ >= kParallelWork ? threads_ : 1, [&](index_t j, int) {
            for (index_t t = 0; t < m; ++t) dst[j * m + t] = src[j * n + rows[t]];
        });
        codes_ = codes_local_.data();
    }

    offset_.resize(size_t(d_ + 1));
    offset_[0] = 0;
    for (index_t j = 0; j < d_; ++j) offset_[size_t(j + 1)] = offset_[size_t(j)] + n_bins_[j] + 1;
    H_ = offset_[size_t(d_)] * S_;
    // Below about one row per histogram slot a node's histogram (zeroing,
    // summing and scanning every slot) costs more than sorting its rows.
    small_node_ = std::max<index_t>(32, offset_[size_t(d_)] / d_);

    // Targets.
    std::vector<double> cw(size_t(C_), 1.0);
    if (y.class_weight)
        for (index_t c = 0; c < C_; ++c) {
            require(std::isfinite(y.class_weight[c]) && y.class_weight[c] >= 0,
                    "class_weight: expected finite, non-negative weights");
            cw[size_t(c)] = y.class_weight[c];
        }
    auto weight = [&](index_t t) {
        if (!y.sample_weight) return 1.0;
        const double w = y.sample_weight[t];
        if (!(std::isfinite(w) && w >= 0)) {
            std::ostringstream msg;
            msg << "sample_weight[" << t << "] = " << w << ": expected a finite, non-negative weight";
            throw std::invalid_argument(msg.str());
        }
        return w;
    };
    omega_.resize(size_t(m_));
    positive_.resize(size_t(m_));
    samples_.reserve(size_t(m_));
    double total = 0.0;
    if (labels_) {
        y_.resize(size_t(m_));
        for (index_t t = 0; t < m_; ++t) {
            const label_t c = y.labels[t];
            if (c < 0 || c >= C_) {
                std::ostringstream msg;
                msg << "y[" << t << "] = " << c << " is outside the label range [0, " << C_ << ")";
                throw std::invalid_argument(msg.str());
            }
            const double w = weight(t);
            y_[size_t(t)] = c;
            omega_[size_t(t)] = w * cw[size_t(c)];
            positive_[size_t(t)] = w > 0;
            total += omega_[size_t(t)];
            // Rows of zero weight are left out, as scikit-learn's splitter
            // does: a zero weight is the same as removing the row.
            if (omega_[size_t(t)] > 0) samples_.push_back(t);
        }
    } else {
        rp_.assign(size_t(m_ + 1), 0);
        size_t n_entries = 0;
        for (index_t t = 0; t < m_ * C_; ++t) n_entries += y.allowed[t] != 0;
        entries_.reserve(n_entries);
        ec_.reserve(n_entries);
        emass_.reserve(n_entries);
        bool any_set = false;
        for (index_t t = 0; t < m_; ++t) {
            const std::uint8_t* row = y.allowed + t * C_;
            const double w = weight(t);
            index_t k = 0;
            double cws = 0.0;
            for (index_t c = 0; c < C_; ++c)
                if (row[c]) {
                    ++k;
                    cws += cw[size_t(c)];
                }
            if (k > 0) {
                any_set = true;
                for (index_t c = 0; c < C_; ++c)
                    if (row[c]) {
                        ec_.push_back(static_cast<label_t>(c));
                        emass_.push_back(w * cw[size_t(c)]);
                        entries_.push_back(Entry{2 + c, opt.criterion == SplitCriterion::SpreadGini
                                                            ? w * cw[size_t(c)] / double(k)
                                                            : w * cw[size_t(c)]});
                    }
                omega_[size_t(t)] = w * cws / double(k);
                positive_[size_t(t)] = w > 0;
                total += omega_[size_t(t)];
                // Rows with an empty set have no target; rows of zero weight
                // are left out as if removed.
                if (omega_[size_t(t)] > 0) samples_.push_back(t);
            }
            rp_[size_t(t + 1)] = static_cast<index_t>(ec_.size());
        }
        require(any_set, "allowed: every row has an empty allowed set; there is nothing to fit");
    }
    require(total > 0 && !samples_.empty(), "sample_weight: the rows to fit have zero total weight");
    mwl_ = opt.min_weight_fraction_leaf * total;
    scratch_.resize(samples_.size());
}

std::vector<double> Builder::take_hist() {
    if (!pool_.empty()) {
        std::vector<double> h = std::move(pool_.back());
        pool_.pop_back();
        return h;
    }
    return std::vector<double>(size_t(H_));
}

void Builder::give_hist(std::vector<double>& h) {
    if (!h.empty()) pool_.push_back(std::move(h));
    h = std::vector<double>();
}

void Builder::build_hist(double* h, index_t begin, index_t end) const {
    const index_t* idx = samples_.data();
    const index_t m = m_, S = S_;
    const bool par = threads_ > 1 && (end - begin) * d_ >= kParallelWork;
    parallel_for(d_, par ? threads_ : 1, [&](index_t j, int) {
        double* hj = h + offset_[size_t(j)] * S;
        std::fill(hj, hj + (n_bins_[j] + 1) * S, 0.0);
        const std::uint8_t* col = codes_ + j * m;
        if (labels_) {
            const label_t* y = y_.data();
            const double* om = omega_.data();
            for (index_t t = begin; t < end; ++t) {
                const index_t p = idx[t];
                double* s = hj + index_t(col[p]) * S;
                const double w = om[p];
                s[0] += w;
                s[1] += 1.0;
                s[2 + y[p]] += w;
            }
        } else {
            for (index_t t = begin; t < end; ++t) {
                const index_t p = idx[t];
                double* s = hj + index_t(col[p]) * S;
                s[0] += omega_[size_t(p)];
                s[1] += 1.0;
                const Entry* e = entries_.data() + rp_[size_t(p)];
                const Entry* e1 = entries_.data() + rp_[size_t(p + 1)];
                for (; e < e1; ++e) s[e->slot] += e->value;
            }
        }
    });
}

void Builder::subtract_hist(double* big, const double* small) const {
    for (index_t k = 0; k < H_; ++k) big[k] -= small[k];
}

Totals Builder::totals(index_t begin, index_t end) const {
    Totals t;
    t.channel.assign(size_t(C_), 0.0);
    t.mass.assign(size_t(C_), 0.0);
    t.allow.assign(size_t(C_), 0);
    double W = 0.0;
    index_t pos_rows = 0;
    double* channel = t.channel.data();
    double* mass = t.mass.data();
    index_t* allow = t.allow.data();
    for (index_t k = begin; k < end; ++k) {
        const index_t p = samples_[size_t(k)];
        const index_t pos = positive_[size_t(p)];
        const double om = omega_[size_t(p)];
        W += om;
        pos_rows += pos;
        if (labels_) {
            const label_t c = y_[size_t(p)];
            channel[c] += om;
            allow[c] += pos;
        } else {
            for (index_t e = rp_[size_t(p)]; e < rp_[size_t(p + 1)]; ++e) {
                const label_t c = ec_[size_t(e)];
                channel[c] += entries_[size_t(e)].value;
                mass[c] += emass_[size_t(e)];
                allow[c] += pos;
            }
        }
    }
    if (labels_) t.mass = t.channel;
    t.W = W;
    t.cnt = end - begin;
    t.cnt_pos = pos_rows;
    return t;
}

// Totals of the rows of a that are not in b (b's rows are a subset of a's).
Totals minus(const Totals& a, const Totals& b) {
    Totals t = a;
    t.W -= b.W;
    t.cnt -= b.cnt;
    t.cnt_pos -= b.cnt_pos;
    for (size_t c = 0; c < t.channel.size(); ++c) {
        t.channel[c] = std::max(0.0, t.channel[c] - b.channel[c]);
        t.mass[c] = std::max(0.0, t.mass[c] - b.mass[c]);
        t.allow[c] -= b.allow[c];
    }
    if (t.cnt_pos == 0) t.W = 0.0;  // no rounding residue on an all-zero-weight side
    return t;
}

bool Builder::splittable(const Pending& p) const {
    const Totals& t = p.tot;
    if (opt_.max_depth >= 0 && p.depth >= opt_.max_depth) return false;
    if (t.cnt < opt_.min_samples_split || t.cnt < 2 * opt_.min_samples_leaf) return false;
    if (t.cnt_pos == 0 || !(t.W > 0) || t.W < 2 * mwl_) return false;
    // Pure: one label is allowed at every row of positive weight.
    for (index_t c = 0; c < C_; ++c)
        if (t.allow[size_t(c)] == t.cnt_pos) return false;
    return true;
}

Score Builder::node_score(const Totals& t) const {
    Score s;
    double sq = 0.0, mx = 0.0;
    for (index_t c = 0; c < C_; ++c) {
        sq += t.channel[size_t(c)] * t.channel[size_t(c)];
        mx = std::max(mx, t.channel[size_t(c)]);
    }
    const double g = t.W > 0 ? sq / t.W : 0.0;
    if (opt_.criterion == SplitCriterion::Coverage) {
        s.primary = mx;
        s.secondary = g;
    } else {
        s.primary = g;
        s.secondary = 0.0;
    }
    return s;
}

double Builder::impurity(const Totals& t) const {
    if (!(t.W > 0)) return 0.0;
    double sq = 0.0, sum = 0.0, mx = 0.0;
    for (index_t c = 0; c < C_; ++c) {
        const double p = t.channel[size_t(c)] / t.W;
        sq += p * p;
        sum += p;
        mx = std::max(mx, p);
    }
    if (opt_.criterion == SplitCriterion::Coverage) return 1.0 - mx;
    if (!labels_ && opt_.criterion == SplitCriterion::Gini) return 2.0 * (sum - sq) / double(C_);
    return 1.0 - sq;
}

// Criterion score of the split with left sums L (one histogram slot's
// layout: weight, rows, class masses) out of node sums T; false if the split
// is not allowed (too few rows or no weight on a side).
template <SplitCriterion K>
inline bool eval_split(const double* L, const double* T, index_t S, double msl, double mwl, Score& out) {
    const double nl = L[1], nr = T[1] - L[1];
    if (nl < msl || nr < msl) return false;
    const double Wl = L[0], Wr = T[0] - L[0];
    const double tiny = 1e-12 * T[0];
    if (!(Wl > tiny) || !(Wr > tiny) || Wl < mwl || Wr < mwl) return false;
    double sl = 0.0, sr = 0.0;
    for (index_t c = 2; c < S; ++c) {
        const double l = L[c], r = T[c] - L[c];
        sl += l * l;
        sr += r * r;
    }
    const double g = sl / Wl + sr / Wr;
    if (K == SplitCriterion::Coverage) {
        double ml = 0.0, mr = 0.0;
        for (index_t c = 2; c < S; ++c) {
            ml = std::max(ml, L[c]);
            mr = std::max(mr, T[c] - L[c]);
        }
        out.primary = ml + mr;
        out.secondary = g;
    } else {
        out.primary = g;
        out.secondary = 0.0;
    }
    return true;
}

// a better than b: larger primary score; within tol, larger secondary.
inline bool better_score(const Score& a, const Score& b, double tol) {
    if (a.primary > b.primary + tol) return true;
    if (a.primary < b.primary - tol) return false;
    if (tol == 0.0) return false;
    return a.secondary > b.secondary;
}

// The best split of one feature from its occupied value bins occ[0..k) (in
// increasing order; slot[r] holds bin occ[r]'s sums), its missing-value
// slot M and the node sums T. Candidates cut between consecutive occupied
// bins; with missing values at the node each cut is tried with them on
// either side, and "every value | missing" is tried too. Sets best.bin (the
// last bin on the left) and returns the bin right of the cut in *next (-1:
// "every value | missing").
template <SplitCriterion K>
SplitInfo scan_slots(const int* occ, const double* const* slot, int k, const double* M, const double* T,
                     index_t S, double msl, double mwl, double tol, double* L, double* LM, int* next) {
    std::fill(L, L + S, 0.0);
    const bool has_missing = M[1] > 0.5;
    SplitInfo best;
    *next = -1;
    Score sc;
    auto consider = [&](const double* left, int bin, int right_bin, bool missing_left) {
        if (!eval_split<K>(left, T, S, msl, mwl, sc)) return;
        if (!best.found || better_score(sc, best.score, tol)) {
            best.found = true;
            best.score = sc;
            best.bin = bin;
            best.missing_left = missing_left;
            *next = right_bin;
        }
    };
    for (int r = 0; r < k; ++r) {
        if (r > 0) {
            if (has_missing) {
                consider(L, occ[r - 1], occ[r], false);
                for (index_t c = 0; c < S; ++c) LM[c] = L[c] + M[c];
                consider(LM, occ[r - 1], occ[r], true);
            } else {
                // No missing values seen here: unseen ones will follow the
                // child with more rows, as in scikit-learn.
                consider(L, occ[r - 1], occ[r], L[1] >= T[1] - L[1]);
            }
        }
        const double* s = slot[r];
        for (index_t c = 0; c < S; ++c) L[c] += s[c];
    }
    if (has_missing && k > 0) consider(L, occ[k - 1], -1, false);  // every value | missing
    return best;
}

// Per-feature scratch of the split search: node sums, left sums, the
// occupied bins and their slots, and (small nodes) rows sorted by bin.
struct ScanScratch {
    std::vector<double> T, L, LM, M, runs;
    std::vector<int> occ;
    std::vector<const double*> slot;
    std::vector<std::uint64_t> items;
};

SplitInfo Builder::find_split(const double* h, const Totals& tot, index_t begin, index_t end) const {
    std::vector<SplitInfo> per(static_cast<size_t>(d_));
    const index_t S = S_;
    const double msl = double(opt_.min_samples_leaf);
    // Coverage sums of different rows can differ by rounding when equal in
    // exact arithmetic; within this tolerance Gini decides.
    const double tol = opt_.criterion == SplitCriterion::Coverage ? 1e-9 * std::max(tot.W, 1e-300) : 0.0;
    const bool par = threads_ > 1 && d_ > 1 && tot.cnt * d_ >= kParallelWork;
    const int workers = par ? threads_ : 1;
    std::vector<ScanScratch> scratch(static_cast<size_t>(workers));
    for (auto& sc : scratch) {
        sc.T.resize(size_t(S));
        sc.L.resize(size_t(S));
        sc.LM.resize(size_t(S));
        sc.M.resize(size_t(S));
    }
    parallel_for(d_, workers, [&](index_t j, int w) {
        ScanScratch& sc = scratch[size_t(w)];
        const int nb = n_bins_[j];
        sc.occ.clear();
        sc.slot.clear();
        const double* M = nullptr;
        if (h != nullptr) {
            // Histogram slots: every bin of the feature, the missing one last.
            const double* hj = h + offset_[size_t(j)] * S;
            std::fill(sc.T.begin(), sc.T.end(), 0.0);
            for (int b = 0; b <= nb; ++b)
                for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += hj[b * S + c];
            for (int b = 0; b < nb; ++b)
                if (hj[b * S + 1] > 0.5) {
                    sc.occ.push_back(b);
                    sc.slot.push_back(hj + b * S);
                }
            M = hj + nb * S;
        } else {
            // A small node: sort its rows by bin and sum the runs, no histogram.
            const std::uint8_t* col = codes_ + j * m_;
            sc.items.resize(size_t(end - begin));
            for (index_t t = begin; t < end; ++t) {
                const index_t p = samples_[size_t(t)];
                sc.items[size_t(t - begin)] = (std::uint64_t(col[p]) << 40) | std::uint64_t(p);
            }
            std::sort(sc.items.begin(), sc.items.end());
            sc.runs.assign(size_t((end - begin) * S), 0.0);
            std::fill(sc.M.begin(), sc.M.end(), 0.0);
            std::fill(sc.T.begin(), sc.T.end(), 0.0);
            double* run = nullptr;
            int cur = -1;
            for (const std::uint64_t item : sc.items) {
                const int code = int(item >> 40);
                const index_t p = index_t(item & ((std::uint64_t(1) << 40) - 1));
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
                add_row(s, p);
            }
            for (size_t r = 0; r < sc.occ.size(); ++r)
                for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += sc.slot[r][c];
            for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += sc.M[size_t(c)];
            M = sc.M.data();
        }
        int next = -1;
        const int k = static_cast<int>(sc.occ.size());
        if (opt_.categorical != nullptr && opt_.categorical[j]) {
            per[size_t(j)] = categorical_split(j, sc, k, M, S, msl, tol);
            return;
        }
        SplitInfo best =
            opt_.criterion == SplitCriterion::Coverage
                ? scan_slots<SplitCriterion::Coverage>(sc.occ.data(), sc.slot.data(), k, M, sc.T.data(), S,
                                                       msl, mwl_, tol, sc.L.data(), sc.LM.data(), &next)
                : scan_slots<SplitCriterion::Gini>(sc.occ.data(), sc.slot.data(), k, M, sc.T.data(), S, msl,
                                                   mwl_, tol, sc.L.data(), sc.LM.data(), &next);
        if (best.found) {
            best.feature = j;
            if (next < 0) {
                best.threshold = kInf;
            } else {
                // Midway between the values either side of the cut, like
                // scikit-learn's exact splitter (and its guard against a
                // midpoint that rounds onto the right value).
                const double a = double(hi_[j * kBinSlots + best.bin]), z = double(lo_[j * kBinSlots + next]);
                double thr = a / 2.0 + z / 2.0;
                if (thr == z || std::isinf(thr)) thr = a;
                best.threshold = thr;
            }
        }
        per[size_t(j)] = best;
    });
    SplitInfo best;
    for (const auto& s : per)
        if (s.found && (!best.found || better_score(s.score, best.score, tol))) best = s;
    return best;
}

// The best subset split of categorical feature j: its occupied categories
// (sc.occ, sc.slot) ordered by their share of one class, then cut like
// numeric bins; one ordering for two classes (the exact best Gini subset),
// one per class otherwise, keeping the best cut.
SplitInfo Builder::categorical_split(index_t j, ScanScratch& sc, int k, const double* M, index_t S,
                                     double msl, double tol) const {
    SplitInfo best;
    if (k < 1) return best;
    std::vector<int> order(static_cast<size_t>(k)), pos(static_cast<size_t>(k)), best_order;
    std::vector<const double*> pslot(static_cast<size_t>(k));
    for (int r = 0; r < k; ++r) pos[size_t(r)] = r;
    const index_t n_orders = C_ == 2 ? 1 : C_;
    for (index_t q = 0; q < n_orders; ++q) {
        const index_t c = C_ == 2 ? 1 : q;
        for (int r = 0; r < k; ++r) order[size_t(r)] = r;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
            const double* sa = sc.slot[size_t(a)];
            const double* sb = sc.slot[size_t(b)];
            const double fa = sa[0] > 0 ? sa[2 + c] / sa[0] : 0.0;
            const double fb = sb[0] > 0 ? sb[2 + c] / sb[0] : 0.0;
            return fa < fb;
        });
        for (int r = 0; r < k; ++r) pslot[size_t(r)] = sc.slot[size_t(order[size_t(r)])];
        int next = -1;
        SplitInfo s =
            opt_.criterion == SplitCriterion::Coverage
                ? scan_slots<SplitCriterion::Coverage>(pos.data(), pslot.data(), k, M, sc.T.data(), S, msl,
                                                       mwl_, tol, sc.L.data(), sc.LM.data(), &next)
                : scan_slots<SplitCriterion::Gini>(pos.data(), pslot.data(), k, M, sc.T.data(), S, msl, mwl_,
                                                   tol, sc.L.data(), sc.LM.data(), &next);
        if (s.found && (!best.found || better_score(s.score, best.score, tol))) {
            best = s;
            best_order = order;
        }
    }
    if (!best.found) return best;
    // best.bin is the last position (in best_order) that goes left.
    best.categorical = true;
    best.feature = j;
    best.threshold = 0.0;
    for (int r = 0; r <= best.bin; ++r) {
        const int bin = sc.occ[size_t(best_order[size_t(r)])];
        set_bit(best.left_bins, bin);
        set_bit(best.left_cats, int(lo_[j * kBinSlots + bin]));
    }
    best.bin = -1;
    return best;
}

index_t Builder::add_node(Pending& p) {
    Tree& t = tree_;
    const index_t id = t.node_count();
    detail::push_unsplit_node(t);
    t.is_categorical.push_back(0);
    for (int w = 0; w < kCatWords; ++w) t.cat_left.push_back(0);
    double sum = 0.0;
    for (double v : p.tot.mass) sum += v;
    for (index_t c = 0; c < C_; ++c)
        t.value.push_back(sum > 0 ? p.tot.mass[size_t(c)] / sum : 1.0 / double(C_));
    t.n_node_samples.push_back(p.tot.cnt);
    t.weighted_n_node_samples.push_back(p.tot.W);
    t.impurity.push_back(impurity(p.tot));
    t.max_depth = std::max(t.max_depth, p.depth);
    if (p.parent >= 0) (p.is_left ? t.left : t.right)[size_t(p.parent)] = id;
    p.id = id;
    return id;
}

void Builder::set_split(index_t id, const SplitInfo& s) {
    tree_.feature[size_t(id)] = s.feature;
    tree_.threshold[size_t(id)] = s.threshold;
    tree_.missing_left[size_t(id)] = s.missing_left ? 1 : 0;
    tree_.split_bin[size_t(id)] = s.bin;
    if (s.categorical) {
        tree_.is_categorical[size_t(id)] = 1;
        for (int w = 0; w < kCatWords; ++w)
            tree_.cat_left[size_t(id * kCatWords + w)] = s.left_cats[size_t(w)];
    }
}

void Builder::evaluate(Pending& p) {
    p.split = SplitInfo();
    if (!splittable(p)) return;
    if (p.hist.empty() && !is_small(p)) {
        p.hist = take_hist();
        build_hist(p.hist.data(), p.begin, p.end);
    }
    p.split = find_split(p.hist.empty() ? nullptr : p.hist.data(), p.tot, p.begin, p.end);
    if (p.split.found) {
        const Score node = node_score(p.tot);
        p.gain.primary = p.split.score.primary - node.primary;
        p.gain.secondary = p.split.score.secondary - node.secondary;
    }
}

// Partitions p's rows by its split and prepares both children: totals, and
// the histograms of those that may split (the smaller child summed over its
// rows, the larger one its parent's histogram minus the smaller's).
void Builder::expand(Pending& p, Pending& L, Pending& R) {
    const SplitInfo& s = p.split;
    const std::uint8_t* col = codes_ + s.feature * m_;
    const int nb = n_bins_[s.feature];
    index_t nl = p.begin, nr = 0;
    for (index_t k = p.begin; k < p.end; ++k) {
        const index_t r = samples_[size_t(k)];
        const int code = col[r];
        const bool left =
            code == nb ? s.missing_left : (s.categorical ? has_bit(s.left_bins, code) : code <= s.bin);
        if (left)
            samples_[size_t(nl++)] = r;
        else
            scratch_[size_t(nr++)] = r;
    }
    std::copy(scratch_.begin(), scratch_.begin() + nr, samples_.begin() + nl);
    L = Pending();
    R = Pending();
    L.begin = p.begin;
    L.end = R.begin = nl;
    R.end = p.end;
    L.depth = R.depth = p.depth + 1;
    L.parent = R.parent = p.id;
    L.is_left = true;
    R.is_left = false;
    // The smaller child's totals from its rows, the larger's by subtraction.
    if (L.end - L.begin <= R.end - R.begin) {
        L.tot = totals(L.begin, L.end);
        R.tot = minus(p.tot, L.tot);
    } else {
        R.tot = totals(R.begin, R.end);
        L.tot = minus(p.tot, R.tot);
    }
    // Children that will split with a histogram need one (small nodes sort
    // their rows instead).
    const bool need_l = needs_hist(L), need_r = needs_hist(R);
    Pending& small = (L.end - L.begin) <= (R.end - R.begin) ? L : R;
    Pending& big = &small == &L ? R : L;
    const bool need_small = &small == &L ? need_l : need_r;
    const bool need_big = &big == &L ? need_l : need_r;
    // Subtracting costs the smaller child's rows plus two passes over a
    // histogram; summing the bigger child directly costs its rows and one.
    const bool subtract = need_big && !p.hist.empty() &&
                          (need_small || (small.end - small.begin) * d_ + H_ < (big.end - big.begin) * d_);
    if (subtract) {
        small.hist = take_hist();
        build_hist(small.hist.data(), small.begin, small.end);
        subtract_hist(p.hist.data(), small.hist.data());
        big.hist = std::move(p.hist);
        p.hist = std::vector<double>();
        if (!need_small) give_hist(small.hist);
    } else {
        give_hist(p.hist);
        if (need_small) {
            small.hist = take_hist();
            build_hist(small.hist.data(), small.begin, small.end);
        }
        if (need_big) {
            big.hist = take_hist();
            build_hist(big.hist.data(), big.begin, big.end);
        }
    }
}

Tree Builder::build() {
    tree_ = Tree();
    tree_.n_features = d_;
    tree_.n_classes = C_;
    Pending root;
    root.begin = 0;
    root.end = static_cast<index_t>(samples_.size());
    root.tot = totals(root.begin, root.end);
    if (opt_.max_leaf_nodes < 0) {
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
                give_hist(p.hist);
                continue;
            }
            set_split(p.id, p.split);
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
        std::vector<Pending> frontier;
        auto worse = [this](const Pending& a, const Pending& b) {
            if (a.gain.primary != b.gain.primary) return a.gain.primary < b.gain.primary;
            if (a.gain.secondary != b.gain.secondary) return a.gain.secondary < b.gain.secondary;
            return a.id > b.id;  // earlier node first on ties
        };
        auto offer = [&](Pending&& p) {
            evaluate(p);
            if (!p.split.found) {
                give_hist(p.hist);
                return;
            }
            const size_t bytes = size_t(H_) * sizeof(double);
            if (!p.hist.empty()) {
                if (kept_hist_bytes_ + bytes > kKeepBytes)
                    give_hist(p.hist);
                else
                    kept_hist_bytes_ += bytes;
            }
            frontier.push_back(std::move(p));
            std::push_heap(frontier.begin(), frontier.end(), worse);
        };
        add_node(root);
        offer(std::move(root));
        index_t leaves = 1;
        while (!frontier.empty() && leaves < opt_.max_leaf_nodes) {
            std::pop_heap(frontier.begin(), frontier.end(), worse);
            Pending p = std::move(frontier.back());
            frontier.pop_back();
            if (!p.hist.empty()) kept_hist_bytes_ -= size_t(H_) * sizeof(double);
            set_split(p.id, p.split);
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

// ----------------------------------------------------------------- binning
template <class T>
void bin_features(const T* X, index_t n, index_t d, index_t row_stride, index_t col_stride,
                  const BinningOptions& opt, std::uint8_t* codes, std::int32_t* n_bins, float* bin_lo,
                  float* bin_hi) {
    require(X != nullptr, "X: no data");
    require(n >= 1, "X: expected at least one row");
    require(d >= 1, "X: expected at least one feature");
    require(n < (index_t(1) << 32), "X: at most 2^32 - 1 rows can be binned");
    require(opt.max_bins >= 2 && opt.max_bins <= kMaxValueBins, "max_bins: expected an integer in [2, 255]");
    require(opt.subsample >= 1, "subsample: expected a positive number of rows");
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
    const int threads = resolve_threads(opt.n_threads);
    const int team = n * d >= (1 << 14) ? threads : 1;
    // Feature columns as contiguous float32: read in place when X already is
    // laid out so, otherwise copied once in row blocks (cache-friendly for
    // row-major X, whose columns are strided).
    const float* F = nullptr;
    std::vector<float> buf;
    if (std::is_same<T, float>::value && row_stride == 1 && col_stride == n) {
        F = reinterpret_cast<const float*>(X);
    } else {
        buf.resize(size_t(n * d));
        constexpr index_t kBlock = 512;
        const index_t blocks = (n + kBlock - 1) / kBlock;
        float* out = buf.data();
        parallel_for(blocks, team, [&](index_t bk, int) {
            const index_t i0 = bk * kBlock, i1 = std::min(n, i0 + kBlock);
            for (index_t j = 0; j < d; ++j)
                for (index_t i = i0; i < i1; ++i)
                    out[j * n + i] = static_cast<float>(X[i * row_stride + j * col_stride]);
        });
        F = buf.data();
    }
    std::vector<std::vector<std::uint64_t>> items(static_cast<size_t>(team)), tmp(static_cast<size_t>(team));
    parallel_for(d, team, [&](index_t j, int w) {
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

// ------------------------------------------------------------------ fitting
Tree fit_hist_tree(const BinnedView& X, const TreeTargets& y, const TreeOptions& opt) {
    Builder b(X, y, opt);
    return b.build();
}

}  // namespace crembo
