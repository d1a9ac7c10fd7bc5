// Bindings of the histogram classifier tree (crembo/hist_tree.hpp): binning
// once (hist_bin) and fitting on the binned rows (hist_fit). The GIL is
// released around both.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>

#include "common.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo_py {

namespace {

// Calls f(data, row_stride, col_stride) on X: float32 and float64 arrays in
// place (any strides), anything else converted once to float64.
template <class F>
void hist_with_matrix(const py::array& X, F&& f) {
    auto in_place = [&](auto* data) {
        const py::ssize_t size = sizeof(*data);
        const py::ssize_t rs = X.strides(0), cs = X.strides(1);
        if (rs % size || cs % size) return false;
        f(data, index_t(rs / size), index_t(cs / size));
        return true;
    };
    const py::dtype dt = X.dtype();
    if (dt.is(py::dtype::of<double>()) && in_place(static_cast<const double*>(X.data()))) return;
    if (dt.is(py::dtype::of<float>()) && in_place(static_cast<const float*>(X.data()))) return;
    require_real(X, "X");
    auto Xc = py::array_t<double, kIn>::ensure(X);
    if (!Xc) throw py::type_error("X: expected an array of numbers, got dtype " + std::string(py::str(dt)));
    f(Xc.data(), index_t(Xc.shape(1)), index_t(1));
}

void hist_check_2d(const py::array& X, const char* name) {
    if (X.ndim() != 2) {
        std::ostringstream msg;
        msg << name << ": expected a 2-d array, got " << X.ndim() << " dimension(s)";
        value_error(msg.str());
    }
}

// A call's binned rows (codes d x n, bin counts and edges, an optional row
// subset), checked, kept alive, and the view over them.
struct BinnedArgs {
    carray<std::uint8_t> codes;
    carray<std::int32_t> n_bins;
    carray<float> lo, hi;
    carray<index_t> rows;
    crembo::BinnedView view;

    BinnedArgs(const py::array& codes_in, const py::array& n_bins_in, const py::array& lo_in,
               const py::array& hi_in, const py::object& rows_in) {
        hist_check_2d(codes_in, "codes");
        codes = carray<std::uint8_t>::ensure(codes_in);
        const index_t d = codes.shape(0);
        n_bins = vector<std::int32_t>(n_bins_in, "n_bins", d);
        lo = matrix<float>(lo_in, "bin_lo");
        hi = matrix<float>(hi_in, "bin_hi");
        if (lo.shape(0) != d || hi.shape(0) != d || lo.shape(1) != crembo::kBinSlots ||
            hi.shape(1) != crembo::kBinSlots)
            value_error("bin_lo, bin_hi: expected (n_features, 256) arrays");
        if (!rows_in.is_none()) rows = vector<index_t>(rows_in.cast<py::array>(), "rows", -1);
        view = binned_view(codes, n_bins, lo, hi, rows_in.is_none() ? nullptr : &rows);
    }
};

crembo::SplitCriterion hist_criterion(const std::string& s) {
    if (s == "gini") return crembo::SplitCriterion::Gini;
    if (s == "coverage") return crembo::SplitCriterion::Coverage;
    if (s == "spread_gini") return crembo::SplitCriterion::SpreadGini;
    value_error("criterion: expected 'gini', 'coverage' or 'spread_gini', got '" + s + "'");
}

}  // namespace

void init_hist_tree(py::module_& m) {
    // ---------------------------------------------------- histogram trees
    m.def(
        "hist_bin",
        [](const py::array& X, int max_bins, index_t subsample, std::uint64_t seed,
           int n_threads) -> py::tuple {
            hist_check_2d(X, "X");
            const index_t n = X.shape(0), d = X.shape(1);
            auto codes = new_array<std::uint8_t>({d, n});
            auto n_bins = new_array<std::int32_t>({d});
            auto lo = new_array<float>({d, crembo::kBinSlots});
            auto hi = new_array<float>({d, crembo::kBinSlots});
            crembo::BinningOptions opt;
            opt.max_bins = max_bins;
            opt.subsample = subsample;
            opt.seed = seed;
            opt.n_threads = n_threads;
            hist_with_matrix(X, [&](const auto* data, index_t rs, index_t cs) {
                py::gil_scoped_release nogil;
                crembo::bin_features(data, n, d, rs, cs, opt, codes.mutable_data(), n_bins.mutable_data(),
                                     lo.mutable_data(), hi.mutable_data());
            });
            return py::make_tuple(codes, n_bins, lo, hi);
        },
        py::arg("X"), py::arg("max_bins") = crembo::kMaxValueBins, py::arg("subsample") = 200000,
        py::arg("seed") = 0, py::arg("n_threads") = 0,
        "Bins X (n x d) once: (codes d x n uint8, n_bins, bin_lo, bin_hi); code n_bins[j] marks NaN.");

    m.def("hist_release_buffers", &crembo::release_hist_buffers,
          "Frees the packed-rows buffer that count-mode fits keep between fits; returns the bytes freed.");

    m.def(
        "hist_fit",
        [](const py::array& codes_in, const py::array& n_bins_in, const py::array& lo_in,
           const py::array& hi_in, const py::object& rows_in, index_t n_classes, const py::object& labels_in,
           const py::object& allowed_in, const py::object& weight_in, const py::object& class_weight_in,
           const std::string& criterion, int max_depth, index_t min_samples_split, index_t min_samples_leaf,
           double min_weight_fraction_leaf, index_t max_leaf_nodes, int n_threads,
           const py::object& categorical_in) -> py::dict {
            const BinnedArgs binned(codes_in, n_bins_in, lo_in, hi_in, rows_in);
            const crembo::BinnedView& view = binned.view;
            const index_t d = view.n_features;
            const index_t m = rows_in.is_none() ? view.n_rows : view.n_selected;
            crembo::TreeTargets targets;
            targets.n_classes = n_classes;
            carray<label_t> labels;
            carray<std::uint8_t> allowed;
            carray<double> w, cw;
            if (!labels_in.is_none()) {
                labels = vector<label_t>(labels_in.cast<py::array>(), "y", m);
                targets.labels = labels.data();
            } else if (!allowed_in.is_none()) {
                allowed = matrix<std::uint8_t>(allowed_in.cast<py::array>(), "allowed");
                if (allowed.shape(0) != m || allowed.shape(1) != n_classes) {
                    std::ostringstream msg;
                    msg << "allowed: expected shape (" << m << ", " << n_classes << "), got ("
                        << allowed.shape(0) << ", " << allowed.shape(1) << ")";
                    value_error(msg.str());
                }
                targets.allowed = allowed.data();
            } else {
                value_error("hist_fit: expected labels or an allowed-label mask");
            }
            if (!weight_in.is_none()) {
                w = vector<double>(weight_in.cast<py::array>(), "sample_weight", m);
                targets.sample_weight = w.data();
            }
            if (!class_weight_in.is_none()) {
                cw = vector<double>(class_weight_in.cast<py::array>(), "class_weight", n_classes);
                targets.class_weight = cw.data();
            }
            crembo::TreeOptions opt;
            opt.criterion = hist_criterion(criterion);
            opt.max_depth = max_depth;
            opt.min_samples_split = min_samples_split;
            opt.min_samples_leaf = min_samples_leaf;
            opt.min_weight_fraction_leaf = min_weight_fraction_leaf;
            opt.max_leaf_nodes = max_leaf_nodes;
            opt.n_threads = n_threads;
            carray<std::uint8_t> categorical;
            if (!categorical_in.is_none()) {
                categorical = vector<std::uint8_t>(categorical_in.cast<py::array>(), "categorical", d);
                opt.categorical = categorical.data();
            }
            crembo::Tree tree;
            {
                py::gil_scoped_release nogil;
                tree = crembo::fit_hist_tree(view, targets, opt);
            }
            py::dict out = tree_dict(tree, tree.n_classes);
            const py::ssize_t nodes = tree.node_count();
            out["is_categorical"] = py::array(vector_copy(tree.is_categorical));
            out["cat_left"] = py::array(vector_copy(tree.cat_left)).attr("reshape")(nodes, crembo::kCatWords);
            return out;
        },
        py::arg("codes"), py::arg("n_bins"), py::arg("bin_lo"), py::arg("bin_hi"),
        py::arg("rows") = py::none(), py::arg("n_classes"), py::arg("labels") = py::none(),
        py::arg("allowed") = py::none(), py::arg("sample_weight") = py::none(),
        py::arg("class_weight") = py::none(), py::arg("criterion") = "gini", py::arg("max_depth") = -1,
        py::arg("min_samples_split") = 2, py::arg("min_samples_leaf") = 1,
        py::arg("min_weight_fraction_leaf") = 0.0, py::arg("max_leaf_nodes") = -1, py::arg("n_threads") = 0,
        py::arg("categorical") = py::none(),
        "Fits a histogram tree to binned rows (labels or an allowed-label mask); returns its arrays.");

    m.def(
        "hist_leaves",
        [](const py::array& codes_in, const py::array& n_bins_in, const py::array& lo_in,
           const py::array& hi_in, const py::object& rows_in, const py::object& X_in,
           const py::array& left_in, const py::array& right_in, const py::array& feature_in,
           const py::array& threshold_in, const py::array& missing_left_in,
           const py::object& is_categorical_in, const py::object& cat_left_in, int n_threads) -> py::array {
            const BinnedArgs binned(codes_in, n_bins_in, lo_in, hi_in, rows_in);
            const crembo::BinnedView& view = binned.view;
            const index_t d = view.n_features, n_rows = view.n_rows;
            auto left = vector<index_t>(left_in, "children_left", -1);
            const index_t nodes = left.shape(0);
            auto right = vector<index_t>(right_in, "children_right", nodes);
            auto feature = vector<index_t>(feature_in, "feature", nodes);
            auto threshold = vector<double>(threshold_in, "threshold", nodes);
            auto missing_left = vector<std::uint8_t>(missing_left_in, "missing_go_to_left", nodes);
            crembo::TreeView tree;
            tree.n_nodes = nodes;
            tree.left = left.data();
            tree.right = right.data();
            tree.feature = feature.data();
            tree.threshold = threshold.data();
            tree.missing_left = missing_left.data();
            carray<std::uint8_t> is_cat;
            carray<std::uint64_t> cat_left;
            if (!is_categorical_in.is_none()) {
                is_cat = vector<std::uint8_t>(is_categorical_in.cast<py::array>(), "is_categorical", nodes);
                cat_left = matrix<std::uint64_t>(cat_left_in.cast<py::array>(), "cat_left");
                if (cat_left.shape(0) != nodes || cat_left.shape(1) != crembo::kCatWords)
                    value_error("cat_left: expected an (n_nodes, 4) array");
                tree.is_categorical = is_cat.data();
                tree.cat_left = cat_left.data();
            }
            const index_t n = rows_in.is_none() ? view.n_rows : view.n_selected;
            auto out = new_array<index_t>({n});
            index_t* o = out.mutable_data();
            if (X_in.is_none()) {
                py::gil_scoped_release nogil;
                crembo::binned_leaves<double>(view, nullptr, 0, 0, tree, o, n_threads);
                return out;
            }
            const auto X = X_in.cast<py::array>();
            hist_check_2d(X, "X");
            if (X.shape(0) != n_rows || X.shape(1) != d) {
                std::ostringstream msg;
                msg << "X: expected the binned rows' raw values, shape (" << n_rows << ", " << d << "), got ("
                    << X.shape(0) << ", " << X.shape(1) << ")";
                value_error(msg.str());
            }
            hist_with_matrix(X, [&](const auto* data, index_t rs, index_t cs) {
                py::gil_scoped_release nogil;
                crembo::binned_leaves(view, data, rs, cs, tree, o, n_threads);
            });
            return out;
        },
        py::arg("codes"), py::arg("n_bins"), py::arg("bin_lo"), py::arg("bin_hi"), py::arg("rows"),
        py::arg("X"), py::arg("children_left"), py::arg("children_right"), py::arg("feature"),
        py::arg("threshold"), py::arg("missing_go_to_left"), py::arg("is_categorical") = py::none(),
        py::arg("cat_left") = py::none(), py::arg("n_threads") = 0,
        "The leaf each selected binned row reaches in a tree (walked on the codes; X, the raw rows that were "
        "binned, decides bins that straddle a threshold).");
}

}  // namespace crembo_py
