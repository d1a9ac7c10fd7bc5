// Leaves of binned rows in a fitted histogram tree (binned_leaves,
// crembo/hist_tree.hpp): the walk CREMBO makes after every student fit, on
// the rows' one-byte codes rather than their raw values (an eighth of the
// memory traffic at float64 features), reading a raw value only where a bin
// straddles a threshold.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "crembo/detail/binned.hpp"
#include "crembo/detail/checks.hpp"
#include "crembo/detail/parallel.hpp"
#include "crembo/fast_tree.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo {

namespace {

// Rows per task: enough work to pay for handing a task out.
constexpr index_t kLeafBlock = 16384;
// Rows stepped together, level by level.
constexpr int kLeafChunk = 256;

[[noreturn]] void bad_node(index_t k, const char* what) {
    std::ostringstream msg;
    msg << "tree node " << k << ": " << what;
    throw std::invalid_argument(msg.str());
}

// One node of the walk. Codes <= left_code go left; the code `straddle`
// (-1: none) holds values on both sides and compares the raw value; the
// missing code goes to missing_left. A leaf steps to itself, so every row
// can take as many steps as the tree is deep, without a test for "at a
// leaf".
struct Step {
    const std::uint8_t* column;  // the split feature's codes (feature 0's at a leaf)
    std::int32_t left_code;
    std::int32_t straddle;
    std::int32_t missing;  // the missing code n_bins[feature]
    std::int32_t missing_left;
    std::int32_t left, right;
    std::int32_t feature;
    std::int32_t categorical;
};

// Node k as a step over X's bins: the last bin all of whose values go left,
// and the bin after it when its values lie on both sides of the threshold.
Step make_step(const BinnedView& X, const TreeView& t, index_t k) {
    if (t.left[k] < 0) {
        const auto self = std::int32_t(k);
        return Step{X.codes, -1, -1, -1, 0, self, self, 0, 0};
    }
    const index_t f = t.feature[k];
    const int nb = X.n_bins[f];
    Step s{X.codes + f * X.n_rows,
           -1,
           -1,
           nb,
           t.missing_left[k] != 0 ? 1 : 0,
           std::int32_t(t.left[k]),
           std::int32_t(t.right[k]),
           std::int32_t(f),
           0};
    if (t.is_categorical != nullptr && t.is_categorical[k] != 0) {
        s.categorical = 1;
        return s;
    }
    const float* lo = X.bin_lo + f * kBinSlots;
    const float* hi = X.bin_hi + f * kBinSlots;
    const double thr = t.threshold[k];
    int b = 0;
    while (b < nb && double(hi[b]) <= thr) ++b;
    s.left_code = b - 1;
    if (b < nb && double(lo[b]) <= thr) s.straddle = b;
    return s;
}

}  // namespace

template <class T>
void binned_leaves(const BinnedView& X, const T* raw_X, std::ptrdiff_t rs, std::ptrdiff_t cs,
                   const TreeView& t, index_t* out, int n_threads) {
    detail::check_binned_view(X);
    if (t.n_nodes < 1 || t.n_nodes > std::numeric_limits<std::int32_t>::max())
        throw std::invalid_argument("tree: expected between 1 and 2^31 - 1 nodes");
    if (!t.left || !t.right || !t.feature || !t.threshold || !t.missing_left)
        throw std::invalid_argument("tree: missing arrays");
    // The layout check every tree walk shares (children after their
    // parent, so walks end; features in range), and each node's depth.
    const std::vector<int> depth =
        check_tree_layout(t.n_nodes, t.left, t.right, t.feature, t.threshold, X.n_features, bad_node);
    const int max_depth = *std::max_element(depth.begin(), depth.end());
    const index_t n = X.rows == nullptr ? X.n_rows : X.n_selected;
    if (n > 0 && out == nullptr) throw std::invalid_argument("binned_leaves: null output");
    for (index_t k = 0; X.rows != nullptr && k < n; ++k)
        if (X.rows[k] < 0 || X.rows[k] >= X.n_rows)
            throw std::invalid_argument("binned data: row index out of range");
    std::vector<Step> steps(size_t(t.n_nodes));
    bool straddles = false, categorical = false;
    for (index_t k = 0; k < t.n_nodes; ++k) {
        if (t.left[k] >= 0 && t.is_categorical != nullptr && t.is_categorical[k] != 0 &&
            t.cat_left == nullptr)
            throw std::invalid_argument("tree: categorical splits without cat_left");
        steps[size_t(k)] = make_step(X, t, k);
        straddles = straddles || steps[size_t(k)].straddle >= 0;
        categorical = categorical || steps[size_t(k)].categorical != 0;
    }
    if (straddles && raw_X == nullptr)
        throw std::invalid_argument("binned_leaves: a bin straddles a threshold and no raw rows were given");
    const Step* st = steps.data();
    // A straddling bin: the row's raw value decides, as apply's would.
    auto raw_left = [&](index_t node, index_t row) {
        return double(static_cast<float>(raw_X[row * rs + index_t(st[node].feature) * cs])) <=
               t.threshold[node];
    };
    // The general step, for trees with categorical splits.
    auto goes_left = [&](index_t node, index_t row) {
        const Step& s = st[node];
        const int code = s.column[row];
        if (code == s.missing) return s.missing_left != 0;
        if (s.categorical) {
            // A categorical feature's bin holds one category, its code in bin_lo.
            const int cat = int(X.bin_lo[index_t(s.feature) * kBinSlots + code]);
            return ((t.cat_left[node * kCatWords + (cat >> 6)] >> (cat & 63)) & 1u) != 0;
        }
        if (code == s.straddle) return raw_left(node, row);
        return code <= s.left_code;
    };
    // Rows [c0, c0 + m) level by level: the rows' steps are independent, so
    // their loads overlap; the child is picked by a mask. The missing code
    // lies above every value bin, so "code <= left_code" sends it right.
    auto walk_chunk = [&](index_t c0, int m, std::int32_t* node, auto row_of) {
        for (int k = 0; k < m; ++k) node[k] = 0;
        for (int level = 0; level < max_depth; ++level) {
            if (categorical) {
                for (int k = 0; k < m; ++k) {
                    const Step& s = st[node[k]];
                    if (s.left == node[k]) continue;
                    node[k] = goes_left(node[k], row_of(c0 + k)) ? s.left : s.right;
                }
                continue;
            }
            for (int k = 0; k < m; ++k) {
                const Step& s = st[node[k]];
                const index_t row = row_of(c0 + k);
                const std::int32_t code = s.column[row];
                std::int32_t left =
                    -std::int32_t((code <= s.left_code) | ((code == s.missing) & s.missing_left));
                if (code == s.straddle)
                    left = -std::int32_t(raw_left(node[k], row));  // rare: rows unseen here at fit
                node[k] = (s.left & left) | (s.right & ~left);
            }
        }
        for (int k = 0; k < m; ++k) out[c0 + k] = node[k];
    };
    const index_t blocks = (n + kLeafBlock - 1) / kLeafBlock;
    const int threads = n >= 2 * kLeafBlock ? detail::resolve_threads(n_threads) : 1;
    detail::parallel_for(blocks, threads, [&](index_t b, int) {
        const index_t lo = b * kLeafBlock, hi = std::min(n, lo + kLeafBlock);
        std::int32_t node[kLeafChunk];
        for (index_t c0 = lo; c0 < hi; c0 += kLeafChunk) {
            const int m = int(std::min<index_t>(kLeafChunk, hi - c0));
            if (X.rows == nullptr)
                walk_chunk(c0, m, node, [](index_t k) { return k; });
            else
                walk_chunk(c0, m, node, [&](index_t k) { return X.rows[k]; });
        }
    });
}

template void binned_leaves<float>(const BinnedView&, const float*, std::ptrdiff_t, std::ptrdiff_t,
                                   const TreeView&, index_t*, int);
template void binned_leaves<double>(const BinnedView&, const double*, std::ptrdiff_t, std::ptrdiff_t,
                                    const TreeView&, index_t*, int);

}  // namespace crembo
