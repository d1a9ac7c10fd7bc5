// The histogram classifier tree's builder (fit_hist_tree, crembo/hist_tree.hpp):
// grows the tree depth first or best first from the histograms
// (crembo/detail/histogram.hpp) and split finding (crembo/detail/split.hpp).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "crembo/detail/binned.hpp"
#include "crembo/detail/histogram.hpp"
#include "crembo/detail/parallel.hpp"
#include "crembo/detail/split.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo {

namespace {

using detail::HistLayout;
using detail::RowTargets;
using detail::Score;
using detail::SplitContext;
using detail::SplitInfo;
using detail::Totals;

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
    // Local rows: a subset is gathered once so every pass reads contiguous codes.
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
    layout_ = HistLayout(X.n_bins, d, y.n_classes);
    double total = 0.0;
    targets_ = detail::prepare_targets(y, m_, opt.criterion, samples_, total);
    detail::require(total > 0 && !samples_.empty(), "sample_weight: the rows to fit have zero total weight");
    ctx_.min_weight_leaf = opt.min_weight_fraction_leaf * total;
    scratch_.resize(samples_.size());
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

std::vector<double> Builder::take_hist() {
    if (!pool_.empty()) {
        std::vector<double> h = std::move(pool_.back());
        pool_.pop_back();
        return h;
    }
    return std::vector<double>(size_t(layout_.size()));
}

void Builder::give_hist(std::vector<double>& h) {
    if (!h.empty()) pool_.push_back(std::move(h));
    h = std::vector<double>();
}

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
        std::sort(sc.items.begin(), sc.items.end());
        sc.runs.assign(size_t((end - begin) * S), 0.0);
        std::fill(sc.M.begin(), sc.M.end(), 0.0);
        std::fill(sc.T.begin(), sc.T.end(), 0.0);
        double* run = nullptr;
        int cur = -1;
        for (const std::uint64_t item : sc.items) {
            const int code = int(item >> 40);
            const index_t r = index_t(item & ((std::uint64_t(1) << 40) - 1));
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
            detail::add_row(s, targets_, r);
        }
        for (size_t r = 0; r < sc.occ.size(); ++r)
            for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += sc.slot[r][c];
        for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += sc.M[size_t(c)];
        sc.missing = sc.M.data();
    });
}

void Builder::evaluate(Pending& p) {
    p.split = SplitInfo();
    if (!detail::splittable(p.tot, p.depth, ctx_)) return;
    if (p.hist.empty() && !is_small(p)) build_hist(p.hist, p);
    p.split = p.hist.empty() ? small_node_split(p) : detail::find_split(layout_, p.hist.data(), p.tot, ctx_);
    if (p.split.found) p.gain = detail::split_gain(p.split, p.tot, ctx_);
}

// Partitions p's rows by its split and prepares both children: totals, and
// the histograms of those that may split (the smaller child summed over its
// rows, the larger one its parent's histogram minus the smaller's).
void Builder::expand(Pending& p, Pending& L, Pending& R) {
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
    root.tot = detail::node_totals(targets_, samples_.data(), index_t(samples_.size()));
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
                give_hist(p.hist);
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
        const size_t hist_bytes = size_t(layout_.size()) * sizeof(double);
        std::vector<Pending> frontier;
        auto worse = [](const Pending& a, const Pending& b) {
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
            if (!p.hist.empty()) {
                if (kept_hist_bytes_ + hist_bytes > kKeepBytes)
                    give_hist(p.hist);
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
            if (!p.hist.empty()) kept_hist_bytes_ -= hist_bytes;
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
