// Split finding of the histogram classifier tree (crembo/detail/split.hpp).
#include "crembo/detail/split.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "crembo/detail/binned.hpp"
#include "crembo/detail/checks.hpp"

namespace crembo {
namespace detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

inline void set_bit(std::array<std::uint64_t, kCatWords>& set, int v) {
    set[size_t(v >> 6)] |= std::uint64_t(1) << (v & 63);
}

// Criterion score of the split with left sums L (one histogram slot's
// layout: weight, rows, class masses) out of node sums T; false if the split
// is not allowed (too few rows or no weight on a side).
// FixedS: the stride when known at compile time (two classes: 4), else 0.
template <SplitCriterion K, int FixedS>
inline bool eval_split(const double* L, const double* T, index_t S_, double msl, double mwl, Score& out) {
    const index_t S = FixedS ? index_t(FixedS) : S_;
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

// The best split of one feature from its occupied value bins occ[0..k) (in
// increasing order; slot[r] holds bin occ[r]'s sums), its missing-value
// slot M and the node sums T. Candidates cut between consecutive occupied
// bins; with missing values at the node each cut is tried with them on
// either side, and "every value | missing" is tried too. Sets best.bin (the
// last bin on the left) and returns the bin right of the cut in *next (-1:
// "every value | missing").
template <SplitCriterion K, int FixedS>
SplitInfo scan_slots(const int* occ, const double* const* slot, int k, const double* M, const double* T,
                     index_t S_, double msl, double mwl, double tol, double* L, double* LM, int* next) {
    const index_t S = FixedS ? index_t(FixedS) : S_;
    std::fill(L, L + S, 0.0);
    const bool has_missing = M[1] > 0.5;
    SplitInfo best;
    *next = -1;
    Score sc;
    auto consider = [&](const double* left, int bin, int right_bin, bool missing_left) {
        if (!eval_split<K, FixedS>(left, T, S, msl, mwl, sc)) return;
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

SplitInfo scan(const SplitContext& ctx, const int* occ, const double* const* slot, int k, FeatureSlots& sc,
               double tol, int* next) {
    const index_t S = ctx.n_classes + 2;
    const double msl = double(ctx.opt.min_samples_leaf), mwl = ctx.min_weight_leaf;
    const double *M = sc.missing, *T = sc.T.data();
    double *L = sc.L.data(), *LM = sc.LM.data();
    // Two classes get the stride as a constant (the same operations, unrolled).
    if (ctx.opt.criterion == SplitCriterion::Coverage)
        return S == 4 ? scan_slots<SplitCriterion::Coverage, 4>(occ, slot, k, M, T, S, msl, mwl, tol, L, LM,
                                                                next)
                      : scan_slots<SplitCriterion::Coverage, 0>(occ, slot, k, M, T, S, msl, mwl, tol, L, LM,
                                                                next);
    return S == 4 ? scan_slots<SplitCriterion::Gini, 4>(occ, slot, k, M, T, S, msl, mwl, tol, L, LM, next)
                  : scan_slots<SplitCriterion::Gini, 0>(occ, slot, k, M, T, S, msl, mwl, tol, L, LM, next);
}

// The best subset split of categorical feature j: its occupied categories
// (sc.occ, sc.slot) ordered by their share of one class, then cut like
// numeric bins; one ordering for two classes (the exact best Gini subset),
// one per class otherwise, keeping the best cut.
SplitInfo categorical_split(index_t j, FeatureSlots& sc, const SplitContext& ctx, double tol) {
    SplitInfo best;
    const int k = static_cast<int>(sc.occ.size());
    if (k < 1) return best;
    const index_t C = ctx.n_classes;
    std::vector<int> order(static_cast<size_t>(k)), pos(static_cast<size_t>(k)), best_order;
    std::vector<const double*> pslot(static_cast<size_t>(k));
    for (int r = 0; r < k; ++r) pos[size_t(r)] = r;
    const index_t n_orders = C == 2 ? 1 : C;
    for (index_t q = 0; q < n_orders; ++q) {
        const index_t c = C == 2 ? 1 : q;
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
        SplitInfo s = scan(ctx, pos.data(), pslot.data(), k, sc, tol, &next);
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
        set_bit(best.left_cats, int(ctx.bin_lo[j * kBinSlots + bin]));
    }
    best.bin = -1;
    return best;
}

}  // namespace

SplitContext make_split_context(const BinnedView& X, index_t n_classes, bool labels, const TreeOptions& opt,
                                double total) {
    require(opt.min_samples_leaf >= 1, "min_samples_leaf: expected an integer >= 1");
    require(opt.min_samples_split >= 2, "min_samples_split: expected an integer >= 2");
    require(opt.max_leaf_nodes < 0 || opt.max_leaf_nodes >= 2, "max_leaf_nodes: expected an integer >= 2");
    require(opt.min_weight_fraction_leaf >= 0 && opt.min_weight_fraction_leaf <= 0.5,
            "min_weight_fraction_leaf: expected a number in [0, 0.5]");
    SplitContext ctx;
    ctx.opt = opt;
    ctx.n_features = X.n_features;
    ctx.n_classes = n_classes;
    ctx.n_bins = X.n_bins;
    ctx.bin_lo = X.bin_lo;
    ctx.bin_hi = X.bin_hi;
    ctx.labels = labels;
    ctx.min_weight_leaf = opt.min_weight_fraction_leaf * total;
    ctx.threads = resolve_threads(opt.n_threads);
    return ctx;
}

bool splittable(const Totals& t, int depth, const SplitContext& ctx) {
    const TreeOptions& opt = ctx.opt;
    if (opt.max_depth >= 0 && depth >= opt.max_depth) return false;
    if (t.cnt < opt.min_samples_split || t.cnt < 2 * opt.min_samples_leaf) return false;
    if (t.cnt == 0 || !(t.W > 0) || t.W < 2 * ctx.min_weight_leaf) return false;
    // Pure: one label is allowed at every row.
    for (index_t c = 0; c < ctx.n_classes; ++c)
        if (t.allow[size_t(c)] == t.cnt) return false;
    return true;
}

Score node_score(const Totals& t, const SplitContext& ctx) {
    Score s;
    double sq = 0.0, mx = 0.0;
    for (index_t c = 0; c < ctx.n_classes; ++c) {
        sq += t.channel[size_t(c)] * t.channel[size_t(c)];
        mx = std::max(mx, t.channel[size_t(c)]);
    }
    const double g = t.W > 0 ? sq / t.W : 0.0;
    if (ctx.opt.criterion == SplitCriterion::Coverage) {
        s.primary = mx;
        s.secondary = g;
    } else {
        s.primary = g;
        s.secondary = 0.0;
    }
    return s;
}

double impurity(const Totals& t, const SplitContext& ctx) {
    if (!(t.W > 0)) return 0.0;
    double sq = 0.0, sum = 0.0, mx = 0.0;
    for (index_t c = 0; c < ctx.n_classes; ++c) {
        const double p = t.channel[size_t(c)] / t.W;
        sq += p * p;
        sum += p;
        mx = std::max(mx, p);
    }
    if (ctx.opt.criterion == SplitCriterion::Coverage) return 1.0 - mx;
    if (!ctx.labels && ctx.opt.criterion == SplitCriterion::Gini)
        return 2.0 * (sum - sq) / double(ctx.n_classes);
    return 1.0 - sq;
}

void slots_from_histogram(const double* hj, int n_bins, index_t S, FeatureSlots& sc) {
    // Every bin of the feature, the missing one last.
    std::fill(sc.T.begin(), sc.T.end(), 0.0);
    for (int b = 0; b <= n_bins; ++b)
        for (index_t c = 0; c < S; ++c) sc.T[size_t(c)] += hj[b * S + c];
    for (int b = 0; b < n_bins; ++b)
        if (hj[b * S + 1] > 0.5) {
            sc.occ.push_back(b);
            sc.slot.push_back(hj + b * S);
        }
    sc.missing = hj + n_bins * S;
}

double cut_threshold(const float* bin_lo, const float* bin_hi, index_t j, int bin, int next) {
    if (next < 0) return kInf;
    const double a = double(bin_hi[j * kBinSlots + bin]), z = double(bin_lo[j * kBinSlots + next]);
    double thr = a / 2.0 + z / 2.0;
    if (thr == z || std::isinf(thr)) thr = a;
    return thr;
}

SplitInfo feature_split(index_t j, FeatureSlots& sc, const SplitContext& ctx, double tol) {
    if (ctx.opt.categorical != nullptr && ctx.opt.categorical[j]) return categorical_split(j, sc, ctx, tol);
    int next = -1;
    SplitInfo best =
        scan(ctx, sc.occ.data(), sc.slot.data(), static_cast<int>(sc.occ.size()), sc, tol, &next);
    if (best.found) {
        best.feature = j;
        best.threshold = cut_threshold(ctx.bin_lo, ctx.bin_hi, j, best.bin, next);
    }
    return best;
}

SplitInfo find_split(const HistLayout& layout, const double* h, const Totals& tot, const SplitContext& ctx) {
    require(layout.n_features() == ctx.n_features && layout.n_classes() == ctx.n_classes,
            "find_split: the histogram layout does not match the context");
    const index_t S = layout.stride();
    return best_split(tot, ctx, [&](index_t j, FeatureSlots& sc) {
        slots_from_histogram(h + layout.feature_offset(j), layout.n_bins(j), S, sc);
    });
}

index_t append_node(Tree& t, const Totals& tot, int depth, index_t parent, bool is_left,
                    const SplitContext& ctx) {
    const index_t id = t.node_count();
    const index_t C = ctx.n_classes;
    push_unsplit_node(t);
    t.is_categorical.push_back(0);
    for (int w = 0; w < kCatWords; ++w) t.cat_left.push_back(0);
    const std::vector<double>& vote = tot.vote();
    double sum = 0.0;
    for (double v : vote) sum += v;
    for (index_t c = 0; c < C; ++c) t.value.push_back(sum > 0 ? vote[size_t(c)] / sum : 1.0 / double(C));
    t.n_node_samples.push_back(tot.cnt);
    t.weighted_n_node_samples.push_back(tot.W);
    t.impurity.push_back(impurity(tot, ctx));
    t.max_depth = std::max(t.max_depth, depth);
    if (parent >= 0) (is_left ? t.left : t.right)[size_t(parent)] = id;
    return id;
}

void set_split(Tree& t, index_t id, const SplitInfo& s) {
    t.feature[size_t(id)] = s.feature;
    t.threshold[size_t(id)] = s.threshold;
    t.missing_left[size_t(id)] = s.missing_left ? 1 : 0;
    t.split_bin[size_t(id)] = s.bin;
    if (s.categorical) {
        t.is_categorical[size_t(id)] = 1;
        for (int w = 0; w < kCatWords; ++w) t.cat_left[size_t(id * kCatWords + w)] = s.left_cats[size_t(w)];
    }
}

}  // namespace detail
}  // namespace crembo
