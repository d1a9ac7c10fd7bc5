// Header-only evaluator of flattened decision trees: the deployment half of
// crembo. It depends on nothing but the C++17 standard library (OpenMP is
// used when the including translation unit is compiled with it), so a C++
// program can embed it without Python and without linking crembo_core.
//
// A tree is given by scikit-learn's flat arrays: for node i,
//   children_left[i], children_right[i]  child node indices (-1 at a leaf)
//   feature[i], threshold[i]             the split "x[feature] <= threshold"
//   missing_go_to_left[i]                where a NaN goes (may be omitted)
// plus, at every leaf, a class index and a row of class probabilities.
//
// Comparison semantics match scikit-learn exactly: it casts X to float32 and
// compares that float32 with the float64 threshold, x <= t going left. For a
// float32 x, `x <= t` equals `x <= rd(t)`, where rd(t) is the largest float32
// not above t, so with TreePrecision::Float32 the evaluator stores rd(t) and
// compares in float32: the same decision bit for bit, for every input. With
// TreePrecision::Float64 the input is compared as a double with t, for trees
// trained on float64 features.
//
// Files: save()/load() read and write a small text format,
//
//   crembo-fast-tree 1
//   precision float32            (or float64)
//   features <d>
//   classes <C> <name_0> ... <name_{C-1}>   (names percent-encoded: no spaces)
//   nodes <n>
//   split <feature> <threshold> <left> <right> <nan_left>     (one line per node,
//   leaf <class> <p_0> ... <p_{C-1}>                            in node order)
//   end
//
// numbers printed with 17 significant digits so they read back exactly;
// crembo.export.export_native writes it from Python.
//
// Every constructor and load() validates the tree (its layout, and leaf
// probabilities in [0, 1] that sum to 1, or are all 0) and throws
// std::invalid_argument naming the bad node; evaluation itself never checks
// (a validated tree cannot index out of range), so it is cheap. load() sizes
// nothing from the header alone, so a short hostile file cannot make it
// allocate more than the file could describe.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace crembo {

enum class TreePrecision {
    Float32,  // scikit-learn: the input is cast to float32 before comparing
    Float64,  // the input is compared as a double
};

// The largest float32 that is <= t (t itself when it is a float32).
inline float round_down_to_float(double t) {
    if (std::isnan(t)) return std::numeric_limits<float>::quiet_NaN();
    float f = static_cast<float>(t);
    if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
}

// Checks the split structure of a tree in scikit-learn's layout: a leaf has
// both children -1; a split has two distinct children stored after it (so
// walks always end), a feature in [0, d) and a threshold that is not NaN;
// every node but the root has exactly one parent. Calls bad(i, what), which
// must throw, at the first problem; returns the depth of every node.
template <class Bad>
std::vector<int> check_tree_layout(std::int64_t n, const std::int64_t* cl, const std::int64_t* cr,
                                   const std::int64_t* feat, const double* thr, std::int64_t d, Bad&& bad) {
    std::vector<int> depth(static_cast<size_t>(n), -1);
    depth[0] = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        if (cl[i] < 0 || cr[i] < 0) {
            if (cl[i] != -1 || cr[i] != -1) bad(i, "a leaf must have children_left = children_right = -1");
        } else {
            if (cl[i] <= i || cl[i] >= n || cr[i] <= i || cr[i] >= n || cl[i] == cr[i])
                bad(i, "children must be distinct nodes stored after their parent");
            if (feat[i] < 0 || feat[i] >= d) bad(i, "split feature outside [0, n_features)");
            if (std::isnan(thr[i])) bad(i, "NaN threshold");
        }
        if (depth[i] < 0) bad(i, "not reachable from the root");
        if (cl[i] >= 0) {
            for (std::int64_t c : {cl[i], cr[i]}) {
                if (depth[c] >= 0) bad(c, "has two parents");
                depth[c] = depth[i] + 1;
            }
        }
    }
    return depth;
}

class FastTree {
public:
    using index_t = std::int64_t;

    FastTree() = default;

    // n_nodes nodes in scikit-learn's layout (children after their parent).
    // missing_go_to_left may be null (NaN then goes right, as a failed
    // comparison does). leaf_class[i] in [0, n_classes) and the n_classes
    // probabilities proba[i * n_classes ...] are read at leaves only.
    FastTree(index_t n_nodes, const std::int64_t* children_left, const std::int64_t* children_right,
             const std::int64_t* feature, const double* threshold, const std::uint8_t* missing_go_to_left,
             index_t n_features, index_t n_classes, const std::int32_t* leaf_class, const double* proba,
             TreePrecision precision = TreePrecision::Float32, std::vector<std::string> class_names = {}) {
        build(n_nodes, children_left, children_right, feature, threshold, missing_go_to_left, n_features,
              n_classes, leaf_class, proba, precision, std::move(class_names));
    }

    // ------------------------------------------------------------ shape
    index_t n_nodes() const { return static_cast<index_t>(nodes_.size()); }
    index_t n_features() const { return n_features_; }
    index_t n_classes() const { return n_classes_; }
    index_t n_leaves() const { return n_leaves_; }
    int max_depth() const { return max_depth_; }
    TreePrecision precision() const { return precision_; }
    const std::vector<std::string>& class_names() const { return class_names_; }

    // The arrays the tree was built from (for serialization).
    bool is_leaf(index_t i) const { return nodes_[i].leaf != 0; }
    std::int64_t children_left(index_t i) const { return is_leaf(i) ? -1 : nodes_[i].left; }
    std::int64_t children_right(index_t i) const { return is_leaf(i) ? -1 : nodes_[i].right; }
    std::int64_t feature(index_t i) const { return is_leaf(i) ? -2 : nodes_[i].feature; }
    double threshold(index_t i) const { return threshold64_[i]; }
    bool missing_go_to_left(index_t i) const { return nodes_[i].nan_left != 0; }
    std::int32_t leaf_class(index_t i) const { return leaf_class_[i]; }
    const double* leaf_proba(index_t i) const { return proba_.data() + i * n_classes_; }

    // ------------------------------------------------------- evaluation
    // The leaf reached by one row; element j of the row is row[j * col_stride].
    template <class T>
    std::int32_t leaf(const T* row, std::ptrdiff_t col_stride = 1) const noexcept {
        if (precision_ == TreePrecision::Float32) return walk<T, float>(row, col_stride);
        return walk<T, double>(row, col_stride);
    }

    // The class index of one row.
    template <class T>
    std::int32_t predict_one(const T* row, std::ptrdiff_t col_stride = 1) const noexcept {
        return leaf_class_[leaf(row, col_stride)];
    }

    // Calls f(i, leaf) for every row i of the n x d matrix X (element (i, j)
    // at X[i * row_stride + j * col_stride]), rows split over n_threads
    // threads (0: OpenMP's default; small batches run on one thread).
    template <class T, class F>
    void for_each_leaf(const T* X, index_t n, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride, F&& f,
                       int n_threads = 0) const {
        if (precision_ == TreePrecision::Float32)
            run<T, float>(X, n, row_stride, col_stride, f, n_threads);
        else
            run<T, double>(X, n, row_stride, col_stride, f, n_threads);
    }

    // Class indices of the rows of a C-contiguous n x n_features() matrix.
    template <class T>
    void predict(const T* X, index_t n, std::int32_t* out, int n_threads = 0) const {
        for_each_leaf(
            X, n, n_features_, 1, [&](index_t i, std::int32_t l) { out[i] = leaf_class_[l]; }, n_threads);
    }

    // Class probabilities (n x n_classes(), row-major) of a C-contiguous matrix.
    template <class T>
    void predict_proba(const T* X, index_t n, double* out, int n_threads = 0) const {
        const index_t C = n_classes_;
        for_each_leaf(
            X, n, n_features_, 1,
            [&](index_t i, std::int32_t l) {
                const double* p = proba_.data() + static_cast<index_t>(l) * C;
                for (index_t c = 0; c < C; ++c) out[i * C + c] = p[c];
            },
            n_threads);
    }

    // Leaf node indices (scikit-learn's apply) of a C-contiguous matrix.
    template <class T>
    void apply(const T* X, index_t n, std::int64_t* out, int n_threads = 0) const {
        for_each_leaf(X, n, n_features_, 1, [&](index_t i, std::int32_t l) { out[i] = l; }, n_threads);
    }

    // ---------------------------------------------------------------- I/O
    void save(std::ostream& os) const {
        std::ostringstream s;
        s.precision(17);
        s << "crembo-fast-tree 1\n";
        s << "precision " << (precision_ == TreePrecision::Float32 ? "float32" : "float64") << "\n";
        s << "features " << n_features_ << "\n";
        s << "classes " << n_classes_;
        for (const auto& name : class_names_) s << ' ' << encode_name(name);
        s << "\nnodes " << nodes_.size() << "\n";
        for (index_t i = 0; i < n_nodes(); ++i) {
            const Node& nd = nodes_[i];
            if (!nd.leaf) {
                s << "split " << nd.feature << ' ' << threshold64_[i] << ' ' << nd.left << ' ' << nd.right
                  << ' ' << int(nd.nan_left) << "\n";
            } else {
                s << "leaf " << leaf_class_[i];
                for (index_t c = 0; c < n_classes_; ++c) s << ' ' << proba_[i * n_classes_ + c];
                s << "\n";
            }
        }
        s << "end\n";
        os << s.str();
        if (!os) throw std::runtime_error("FastTree::save: write failed");
    }

    void save(const std::string& path) const {
        std::ofstream f(path);
        if (!f) throw std::invalid_argument("FastTree::save: cannot open '" + path + "' for writing");
        save(f);
    }

    static FastTree load(std::istream& is) {
        Reader r(is);
        r.expect("crembo-fast-tree");
        if (r.integer("version") != 1) r.fail("unsupported format version (this reader knows version 1)");
        r.expect("precision");
        const std::string prec = r.word("precision");
        TreePrecision precision;
        if (prec == "float32")
            precision = TreePrecision::Float32;
        else if (prec == "float64")
            precision = TreePrecision::Float64;
        else
            r.fail("precision must be float32 or float64, got '" + prec + "'");
        r.expect("features");
        const index_t d = r.integer("features");
        r.expect("classes");
        const index_t C = r.integer("classes");
        if (C < 1 || C > (1 << 24)) r.fail("classes must be between 1 and 2^24");
        std::vector<std::string> names;
        const std::string rest = r.rest_of_line();
        {
            std::istringstream ls(rest);
            std::string tok;
            while (ls >> tok) names.push_back(decode_name(tok));
        }
        if (!names.empty() && static_cast<index_t>(names.size()) != C)
            r.fail("classes: names do not match the count");
        r.expect("nodes");
        const index_t n = r.integer("nodes");
        if (n < 1 || n > (index_t(1) << 30)) r.fail("nodes must be between 1 and 2^30");
        // Nothing is sized from the header alone: a node line takes at least
        // 8 bytes, and a valid tree has (n + 1) / 2 leaves of at least 2 bytes
        // per class, so n nodes and n x C probabilities must fit in what the
        // stream still holds (when it can tell), and the arrays grow only as
        // nodes are actually read.
        const index_t left_bytes = r.remaining();
        if (left_bytes >= 0 && (n > left_bytes / 8 || n * C > left_bytes))
            r.fail("nodes: " + std::to_string(n) + " nodes of " + std::to_string(C) +
                   " classes cannot fit in the " + std::to_string(left_bytes) + " bytes left in the file");
        const size_t guess = static_cast<size_t>(std::min<index_t>(n, 1 << 16));
        std::vector<std::int64_t> left, right, feat;
        std::vector<double> thr, leaf_proba;
        std::vector<std::uint8_t> nan_left;
        std::vector<std::int32_t> cls;
        for (auto* v : {&left, &right, &feat}) v->reserve(guess);
        thr.reserve(guess);
        nan_left.reserve(guess);
        cls.reserve(guess);
        index_t n_leaves = 0;
        for (index_t i = 0; i < n; ++i) {
            const std::string kind = r.word("node kind");
            if (kind == "split") {
                feat.push_back(r.integer("feature"));
                thr.push_back(r.number("threshold"));
                left.push_back(r.integer("left"));
                right.push_back(r.integer("right"));
                nan_left.push_back(r.integer("nan_left") != 0);
                cls.push_back(-1);
            } else if (kind == "leaf") {
                const index_t c = r.integer("class");
                if (c < 0 || c >= C) r.fail("leaf class out of range");
                cls.push_back(static_cast<std::int32_t>(c));
                for (index_t k = 0; k < C; ++k) leaf_proba.push_back(r.number("probability"));
                left.push_back(-1);
                right.push_back(-1);
                feat.push_back(-2);
                thr.push_back(-2.0);
                nan_left.push_back(0);
                ++n_leaves;
            } else {
                r.fail("expected 'split' or 'leaf', got '" + kind + "'");
            }
        }
        r.expect("end");
        // Every split has two children, so a tree of L leaves has 2L - 1
        // nodes; checked before the n x C probability array is made.
        if (n != 2 * n_leaves - 1)
            r.fail("nodes: " + std::to_string(n) + " nodes but " + std::to_string(n_leaves) +
                   " leaves (a tree of L leaves has 2L - 1 nodes)");
        std::vector<double> proba(static_cast<size_t>(n * C), 0.0);
        for (index_t i = 0, leaf = 0; i < n; ++i) {
            if (cls[i] < 0) continue;  // a split line
            std::copy(leaf_proba.begin() + leaf * C, leaf_proba.begin() + (leaf + 1) * C,
                      proba.begin() + i * C);
            ++leaf;
        }
        return FastTree(n, left.data(), right.data(), feat.data(), thr.data(), nan_left.data(), d, C,
                        cls.data(), proba.data(), precision, std::move(names));
    }

    static FastTree load(const std::string& path) {
        std::ifstream f(path);
        if (!f) throw std::invalid_argument("FastTree::load: cannot open '" + path + "'");
        return load(f);
    }

private:
    // A leaf has feature 0 and both children equal to itself, so a walk of a
    // fixed number of steps (the batch kernel) stays on it once it is there.
    struct Node {
        float threshold;       // rd(t) in Float32 mode (unused in Float64 mode)
        std::int32_t feature;  // 0 at a leaf
        std::int32_t left;
        std::int32_t right;
        std::uint8_t nan_left;
        std::uint8_t leaf;
    };

    std::vector<Node> nodes_;
    std::vector<double> threshold64_;
    std::vector<std::int32_t> leaf_class_;
    std::vector<double> proba_;
    std::vector<std::string> class_names_;
    index_t n_features_ = 0, n_classes_ = 0, n_leaves_ = 0;
    int max_depth_ = 0;
    TreePrecision precision_ = TreePrecision::Float32;

    // How far a leaf's probabilities may sum from 1 (files written with
    // fewer digits than save() uses still load).
    static constexpr double kProbaSumTol = 1e-5;
    // Below this many rows per thread a batch runs on one thread.
    static constexpr index_t kRowsPerThread = 1 << 14;
    // Rows walked together by the batch kernel (independent walks overlap).
    static constexpr int kBlock = 8;

    // One step down from node i: branch-free, so unpredictable splits cost
    // no mispredictions. NaN fails "x <= t" and goes right unless the node
    // sends missing values left.
    template <class T, class V>
    std::int32_t step(std::int32_t i, const T* row, std::ptrdiff_t cs) const noexcept {
        const Node& nd = nodes_[i];
        const V x = static_cast<V>(row[nd.feature * cs]);
        V t;
        if constexpr (std::is_same<V, float>::value)
            t = nd.threshold;
        else
            t = threshold64_[i];
        const bool go_left = (x <= t) | (nd.nan_left & (x != x));
        return go_left ? nd.left : nd.right;
    }

    template <class T, class V>
    std::int32_t walk(const T* row, std::ptrdiff_t cs) const noexcept {
        std::int32_t i = 0;
        while (!nodes_[i].leaf) i = step<T, V>(i, row, cs);
        return i;
    }

    // Rows [lo, hi): blocks of kBlock rows walk max_depth_ steps in lockstep
    // (a leaf loops on itself), the tail one row at a time.
    template <class T, class V, class F>
    void run_rows(const T* X, index_t lo, index_t hi, std::ptrdiff_t rs, std::ptrdiff_t cs, F& f) const {
        index_t r = lo;
        for (; r + kBlock <= hi; r += kBlock) {
            std::int32_t idx[kBlock] = {};
            for (int s = 0; s < max_depth_; ++s)
                for (int k = 0; k < kBlock; ++k) idx[k] = step<T, V>(idx[k], X + (r + k) * rs, cs);
            for (int k = 0; k < kBlock; ++k) f(r + k, idx[k]);
        }
        for (; r < hi; ++r) f(r, walk<T, V>(X + r * rs, cs));
    }

    template <class T, class V, class F>
    void run(const T* X, index_t n, std::ptrdiff_t rs, std::ptrdiff_t cs, F& f, int n_threads) const {
        if (n < kBlock) {  // the single-row path
            for (index_t i = 0; i < n; ++i) f(i, walk<T, V>(X + i * rs, cs));
            return;
        }
        int nt = 1;
#ifdef _OPENMP
        const int avail = n_threads > 0 ? n_threads : omp_get_max_threads();
        const index_t by_size = n / kRowsPerThread;
        nt = static_cast<int>(by_size < avail ? (by_size < 1 ? 1 : by_size) : avail);
#else
        (void)n_threads;
#endif
        if (nt <= 1) {
            run_rows<T, V>(X, 0, n, rs, cs, f);
            return;
        }
#ifdef _OPENMP
        const index_t chunk = (n + nt - 1) / nt;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int p = 0; p < nt; ++p) {
            const index_t lo = p * chunk, hi = lo + chunk < n ? lo + chunk : n;
            if (lo < hi) run_rows<T, V>(X, lo, hi, rs, cs, f);
        }
#endif
    }

    [[noreturn]] static void bad_node(index_t i, const std::string& what) {
        std::ostringstream msg;
        msg << "tree node " << i << ": " << what;
        throw std::invalid_argument(msg.str());
    }

    void build(index_t n, const std::int64_t* cl, const std::int64_t* cr, const std::int64_t* feat,
               const double* thr, const std::uint8_t* nan_left, index_t d, index_t C, const std::int32_t* cls,
               const double* proba, TreePrecision precision, std::vector<std::string> names) {
        if (n < 1) throw std::invalid_argument("tree: expected at least one node");
        if (n > std::numeric_limits<std::int32_t>::max())
            throw std::invalid_argument("tree: more than 2^31 - 1 nodes");
        if (d < 1 || d > std::numeric_limits<std::int32_t>::max())
            throw std::invalid_argument("tree: n_features must be between 1 and 2^31 - 1");
        if (C < 1) throw std::invalid_argument("tree: expected at least one class");
        if (!names.empty() && static_cast<index_t>(names.size()) != C)
            throw std::invalid_argument("tree: class_names must be empty or hold one name per class");
        if (!cl || !cr || !feat || !thr || !cls || !proba) throw std::invalid_argument("tree: null array");
        nodes_.assign(static_cast<size_t>(n), Node{});
        threshold64_.assign(thr, thr + n);
        leaf_class_.assign(static_cast<size_t>(n), -1);
        proba_.assign(static_cast<size_t>(n * C), 0.0);
        const std::vector<int> depth = check_tree_layout(
            n, cl, cr, feat, thr, d, [](index_t i, const char* what) { bad_node(i, what); });
        n_leaves_ = 0;
        max_depth_ = 0;
        for (index_t i = 0; i < n; ++i) {
            Node& nd = nodes_[i];
            nd.nan_left = nan_left ? (nan_left[i] != 0) : 0;
            if (cl[i] < 0) {
                if (cls[i] < 0 || cls[i] >= C) bad_node(i, "leaf class outside [0, n_classes)");
                double sum = 0.0;
                for (index_t c = 0; c < C; ++c) {
                    const double p = proba[i * C + c];
                    if (!(p >= 0.0 && p <= 1.0)) bad_node(i, "leaf probability outside [0, 1] (or NaN)");
                    proba_[i * C + c] = p;
                    sum += p;
                }
                // A row sums to 1; an all-zero row is what scikit-learn's
                // predict_proba gives at a leaf no training weight reached.
                if (sum != 0.0 && !(std::fabs(sum - 1.0) <= kProbaSumTol))
                    bad_node(i, "leaf probabilities do not sum to 1");
                nd.feature = 0;
                nd.leaf = 1;
                nd.left = nd.right = static_cast<std::int32_t>(i);
                nd.threshold = 0.0f;
                leaf_class_[i] = cls[i];
                ++n_leaves_;
            } else {
                nd.feature = static_cast<std::int32_t>(feat[i]);
                nd.left = static_cast<std::int32_t>(cl[i]);
                nd.right = static_cast<std::int32_t>(cr[i]);
                nd.threshold = round_down_to_float(thr[i]);
            }
            if (depth[i] > max_depth_) max_depth_ = depth[i];
        }
        n_features_ = d;
        n_classes_ = C;
        precision_ = precision;
        class_names_ = std::move(names);
    }

    // Names are written without spaces: '%', whitespace and non-printable
    // bytes become %XX.
    static std::string encode_name(const std::string& s) {
        static const char* hex = "0123456789ABCDEF";
        std::string out;
        for (unsigned char ch : s) {
            if (ch == '%' || ch <= 0x20 || ch == 0x7f) {
                out += '%';
                out += hex[ch >> 4];
                out += hex[ch & 15];
            } else {
                out += static_cast<char>(ch);
            }
        }
        return out.empty() ? std::string("%") : out;  // a lone '%' is the empty name
    }

    static std::string decode_name(const std::string& s) {
        if (s == "%") return std::string();
        std::string out;
        for (size_t k = 0; k < s.size(); ++k) {
            if (s[k] == '%' && k + 2 < s.size()) {
                const std::string h = s.substr(k + 1, 2);
                char* end = nullptr;
                const long v = std::strtol(h.c_str(), &end, 16);
                if (h.size() != 2 || end != h.c_str() + 2)
                    throw std::invalid_argument("fast tree file: bad %-escape in a class name");
                out += static_cast<char>(v);
                k += 2;
            } else if (s[k] == '%') {
                throw std::invalid_argument("fast tree file: bad %-escape in a class name");
            } else {
                out += s[k];
            }
        }
        return out;
    }

    // A whitespace-token reader that reports the token it choked on.
    struct Reader {
        std::istream& is;
        explicit Reader(std::istream& s) : is(s) {}
        [[noreturn]] void fail(const std::string& what) const {
            throw std::invalid_argument("fast tree file: " + what);
        }
        std::string word(const char* what) {
            std::string w;
            if (!(is >> w)) fail(std::string("unexpected end of input reading ") + what);
            return w;
        }
        void expect(const char* kw) {
            const std::string w = word(kw);
            if (w != kw) fail(std::string("expected '") + kw + "', got '" + w + "'");
        }
        index_t integer(const char* what) {
            const std::string w = word(what);
            char* end = nullptr;
            errno = 0;
            const long long v = std::strtoll(w.c_str(), &end, 10);
            if (end != w.c_str() + w.size() || errno == ERANGE)
                fail(std::string("expected an integer for ") + what + ", got '" + w + "'");
            return static_cast<index_t>(v);
        }
        double number(const char* what) {
            const std::string w = word(what);
            char* end = nullptr;
            const double v = std::strtod(w.c_str(), &end);
            if (end != w.c_str() + w.size())
                fail(std::string("expected a number for ") + what + ", got '" + w + "'");
            return v;
        }
        // Bytes left in the stream, or -1 when it cannot tell (not seekable).
        index_t remaining() {
            const std::istream::pos_type here = is.tellg();
            if (here == std::istream::pos_type(-1)) return -1;
            is.seekg(0, std::ios::end);
            const std::istream::pos_type end = is.tellg();
            is.seekg(here);
            if (end == std::istream::pos_type(-1) || !is) {
                is.clear();
                is.seekg(here);
                return -1;
            }
            return static_cast<index_t>(end - here);
        }
        std::string rest_of_line() {
            std::string line;
            std::getline(is, line);
            return line;
        }
    };
};

// A voting ensemble of decision trees (a random forest, extra trees, bagged
// trees) packed into one node array: each tree votes for the class of the
// leaf a row reaches, and vote() counts the votes of all trees for a batch
// of rows in one pass, without a per-tree output array. This is how crembo
// turns a forest into the belief p(y|x) = share of trees voting y.
//
// Trees are added in scikit-learn's layout (as FastTree takes them) with the
// float32 comparison of scikit-learn's trees: x is cast to float32 and
// compared with rd(threshold). A tree trained on a subset of the ensemble's
// columns (bagging's max_features) is added with the tree's feature indices
// already mapped to the ensemble's columns.
class VoteForest {
public:
    using index_t = std::int64_t;

    VoteForest(index_t n_features, index_t n_classes) : n_features_(n_features), n_classes_(n_classes) {
        if (n_features < 1 || n_features > std::numeric_limits<std::int32_t>::max())
            throw std::invalid_argument("forest: n_features must be between 1 and 2^31 - 1");
        if (n_classes < 1 || n_classes > (std::int64_t(1) << 24))
            throw std::invalid_argument("forest: n_classes must be between 1 and 2^24");
        // Node c < n_classes is class c's sink, which every leaf voting for
        // c points at: it loops on itself, so a walk ends there.
        nodes_.reserve(static_cast<size_t>(n_classes));
        for (index_t c = 0; c < n_classes; ++c) {
            const auto self = static_cast<std::int32_t>(c);
            nodes_.push_back(Node{0.0f, 0, self, self});
        }
    }

    index_t n_trees() const { return static_cast<index_t>(roots_.size()); }
    // Nodes of the trees added, leaves included (as given to add_tree).
    index_t n_nodes() const { return tree_nodes_; }
    index_t n_features() const { return n_features_; }
    index_t n_classes() const { return n_classes_; }

    // Appends one tree: n_nodes nodes, children stored after their parent,
    // -1 children at leaves; leaf_class[i] (read at leaves only) is the
    // ensemble class index the tree votes for. missing_go_to_left may be
    // null. Throws std::invalid_argument naming the tree and node.
    void add_tree(index_t n, const std::int64_t* cl, const std::int64_t* cr, const std::int64_t* feat,
                  const double* thr, const std::uint8_t* nan_left, const std::int64_t* leaf_class) {
        const index_t tree = n_trees();
        auto bad = [&](index_t i, const char* what) {
            std::ostringstream msg;
            msg << "forest tree " << tree << ", node " << i << ": " << what;
            throw std::invalid_argument(msg.str());
        };
        if (n < 1) bad(0, "expected at least one node");
        if (!cl || !cr || !feat || !thr || !leaf_class) throw std::invalid_argument("forest: null array");
        const index_t base = static_cast<index_t>(nodes_.size());
        check_tree_layout(n, cl, cr, feat, thr, n_features_, bad);
        // Split nodes are stored in their order (a left child often next to
        // its parent); a leaf becomes its class's sink node.
        std::vector<std::int32_t> where(static_cast<size_t>(n));
        index_t splits = 0;
        for (index_t i = 0; i < n; ++i) {
            if (cl[i] < 0) {
                if (leaf_class[i] < 0 || leaf_class[i] >= n_classes_)
                    bad(i, "leaf class outside [0, n_classes)");
                where[i] = static_cast<std::int32_t>(leaf_class[i]);
            } else {
                where[i] = static_cast<std::int32_t>(base + splits++);
            }
        }
        if (base + splits > std::numeric_limits<std::int32_t>::max())
            throw std::invalid_argument("forest: more than 2^31 - 1 nodes in all");
        nodes_.reserve(static_cast<size_t>(base + splits));
        for (index_t i = 0; i < n; ++i) {
            if (cl[i] < 0) continue;
            const std::uint32_t nl = (nan_left && nan_left[i]) ? kNanLeft : 0u;
            any_nan_left_ = any_nan_left_ || nl != 0u;
            nodes_.push_back(Node{round_down_to_float(thr[i]), static_cast<std::uint32_t>(feat[i]) | nl,
                                  where[cl[i]], where[cr[i]]});
        }
        roots_.push_back(where[0]);
        tree_nodes_ += n;
    }

    // out (n x n_classes, row-major) = the share of the trees voting for
    // each class (votes / n_trees), for the n x n_features matrix X with
    // element (i, j) at X[i * rs + j * cs]. Rows are split over n_threads
    // threads (0: OpenMP's default); each thread walks blocks of block_rows
    // rows (0: the default) through every tree, so that a tree's nodes are
    // fetched once per block.
    template <class T>
    void vote(const T* X, index_t n, std::ptrdiff_t rs, std::ptrdiff_t cs, double* out, int n_threads = 0,
              index_t block_rows = 0) const {
        if (n <= 0) return;
        if (roots_.empty()) throw std::invalid_argument("forest: no trees were added");
        const double n_trees = static_cast<double>(roots_.size());
        int nt = 1;
#ifdef _OPENMP
        nt = n_threads > 0 ? n_threads : omp_get_max_threads();
#else
        (void)n_threads;
#endif
        index_t kRows = block_rows;
        if (kRows <= 0) {
            // Equal blocks of at most kBlockRows rows, as many per thread:
            // a thread left with a short last block waits for the others.
            const index_t per_thread = (n + nt * kBlockRows - 1) / (nt * kBlockRows);
            const index_t blocks = nt * per_thread;
            kRows = std::max<index_t>(kMinBlockRows, (n + blocks - 1) / blocks);
        }
        const index_t n_blocks = (n + kRows - 1) / kRows;
        if (nt > n_blocks) nt = static_cast<int>(n_blocks);
        auto run = [&](index_t b) {
            const index_t lo = b * kRows, hi = lo + kRows < n ? lo + kRows : n;
            double* o = out + lo * n_classes_;
            std::fill(o, out + hi * n_classes_, 0.0);
            auto add = [&](index_t i, std::int32_t sink) { out[i * n_classes_ + sink] += 1.0; };
            // The walk specialised for contiguous rows and for blocks where
            // no NaN can go left (no node sends it left, or the block has
            // none): fewer operations per step, the same leaves.
            const bool nan_left = any_nan_left_ && has_nan(X, lo, hi, rs, cs);
            if (cs == 1)
                walk_trees<true>(nan_left, X, lo, hi, rs, cs, add);
            else
                walk_trees<false>(nan_left, X, lo, hi, rs, cs, add);
            for (double* p = o; p < out + hi * n_classes_; ++p) *p /= n_trees;
        };
        if (nt <= 1) {
            for (index_t b = 0; b < n_blocks; ++b) run(b);
            return;
        }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (index_t b = 0; b < n_blocks; ++b) run(b);
#endif
    }

private:
    struct Node {
        float threshold;        // rd(t)
        std::uint32_t feature;  // column, with kNanLeft set when NaN goes left; 0 at a sink
        std::int32_t left;      // global node indices; a sink points at itself
        std::int32_t right;
    };
    static constexpr std::uint32_t kNanLeft = 0x80000000u;
    // Rows per block (at most): every tree walks a whole block before the
    // next tree, so a tree's nodes are fetched from memory once per block.
    // Measured on a 50-tree forest (15.5k split nodes per tree, 2 threads):
    // 85,000 rows in 119 ms as 4 blocks of 21,250 against 138-144 ms as 16k
    // blocks (5 full, 1 short) and 159 ms as 3 blocks; 10^6 rows in
    // 1.46-1.50 s as 20k-42k blocks (a multiple of the threads) against
    // 1.55-1.72 s as 16k blocks. Earlier, 4k blocks took 0.43 s against
    // 0.3 s for 16k, and 256 0.6-0.8 s.
    static constexpr index_t kBlockRows = 32768;
    static constexpr index_t kMinBlockRows = 1024;
    static constexpr int kLanes = 8;  // rows walked together (independent loads overlap)
    // Steps between checks for "every lane on a leaf" (extra steps at a
    // leaf change nothing): 85,000 rows x 50 trees on one thread 185 ms
    // against 198 ms checking after every step (3: 185, 6: 189, 8: 194).
    static constexpr int kStepsPerCheck = 4;

    std::vector<Node> nodes_;  // the class sinks, then every tree's split nodes
    std::vector<std::int32_t> roots_;
    index_t n_features_, n_classes_;
    index_t tree_nodes_ = 0;
    bool any_nan_left_ = false;  // some node sends NaN left

    // True when a value of rows [lo, hi) is NaN.
    template <class T>
    bool has_nan(const T* X, index_t lo, index_t hi, std::ptrdiff_t rs, std::ptrdiff_t cs) const noexcept {
        bool nan = false;
        for (index_t r = lo; r < hi; ++r) {
            const T* row = X + r * rs;
            for (index_t j = 0; j < n_features_; ++j) nan |= row[j * cs] != row[j * cs];
        }
        return nan;
    }

    template <bool Contiguous, bool NanLeft, class T>
    std::int32_t step(std::int32_t i, const T* row, std::ptrdiff_t cs) const noexcept {
        const Node& nd = nodes_[i];
        const std::ptrdiff_t col = static_cast<std::ptrdiff_t>(nd.feature & ~kNanLeft);
        const float x = static_cast<float>(row[Contiguous ? col : col * cs]);
        if (NanLeft) {
            const bool go_left = (x <= nd.threshold) | (((nd.feature & kNanLeft) != 0) & (x != x));
            return go_left ? nd.left : nd.right;
        }
        // A select by mask: as `x <= t ? left : right` GCC 12 made a branch
        // of it, on a side no predictor can guess (3x slower, measured).
        const std::int32_t m = -static_cast<std::int32_t>(x <= nd.threshold);
        return (nd.left & m) | (nd.right & ~m);
    }

    // Rows [lo, hi) through every tree, one tree after another.
    template <bool Contiguous, class T, class F>
    void walk_trees(bool nan_left, const T* X, index_t lo, index_t hi, std::ptrdiff_t rs, std::ptrdiff_t cs,
                    F& f) const {
        for (std::int32_t root : roots_) {
            if (nan_left)
                walk_rows<Contiguous, true>(root, X, lo, hi, rs, cs, f);
            else
                walk_rows<Contiguous, false>(root, X, lo, hi, rs, cs, f);
        }
    }

    // Rows [lo, hi) through one tree: kLanes rows step together (their
    // loads overlap; a leaf loops on itself) until all of them sit on a
    // leaf (a class sink, index < n_classes), the tail one row at a time.
    template <bool Contiguous, bool NanLeft, class T, class F>
    void walk_rows(std::int32_t root, const T* X, index_t lo, index_t hi, std::ptrdiff_t rs,
                   std::ptrdiff_t cs, F& f) const {
        const auto first_split = static_cast<std::int32_t>(n_classes_);
        index_t r = lo;
        for (; r + kLanes <= hi; r += kLanes) {
            std::int32_t idx[kLanes];
            for (int k = 0; k < kLanes; ++k) idx[k] = root;
            bool splits_left = root >= first_split;
            while (splits_left) {
                for (int s = 0; s < kStepsPerCheck; ++s)
                    for (int k = 0; k < kLanes; ++k)
                        idx[k] = step<Contiguous, NanLeft>(idx[k], X + (r + k) * rs, cs);
                splits_left = false;
                for (int k = 0; k < kLanes; ++k) splits_left |= idx[k] >= first_split;
            }
            for (int k = 0; k < kLanes; ++k) f(r + k, idx[k]);
        }
        for (; r < hi; ++r) {
            std::int32_t i = root;
            while (i >= first_split) i = step<Contiguous, NanLeft>(i, X + r * rs, cs);
            f(r, i);
        }
    }
};

}  // namespace crembo
