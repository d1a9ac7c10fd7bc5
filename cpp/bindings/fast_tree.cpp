// Bindings of the deployed trees (crembo/fast_tree.hpp): FastTree (one tree
// flattened into arrays) and VoteForest (a voting ensemble's trees).
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
#include "crembo/fast_tree.hpp"

namespace crembo_py {

namespace {

// ------------------------------------------------------------ fast trees
// crembo.FastTree: a decision tree flattened into arrays and evaluated by the
// header-only crembo/fast_tree.hpp. predict() on one row is the latency path:
// it checks the shape and dtype (cheap) and keeps the GIL for small batches,
// where releasing it costs more than the walk; larger batches release it and
// split rows over threads.
// How predict() turns class indices into labels.
enum class LabelKind {
    Integer,  // integer (or boolean) classes: int_labels, cast back to the classes' dtype
    Float,    // floating classes: float_labels, cast back likewise
    Other,    // anything else (strings, objects): classes.take(indices)
};

struct PyFastTree {
    crembo::FastTree tree;
    py::array classes;
    LabelKind label_kind = LabelKind::Other;
    std::vector<std::int64_t> int_labels;
    std::vector<double> float_labels;
    bool cast_out = false;  // labels come out as int64/float64; cast back to the classes' dtype
};

constexpr py::ssize_t kReleaseGilRows = 256;

crembo::TreePrecision parse_precision(const std::string& s) {
    if (s == "float32") return crembo::TreePrecision::Float32;
    if (s == "float64") return crembo::TreePrecision::Float64;
    value_error("precision: expected 'float32' (scikit-learn's comparison) or 'float64', got '" + s + "'");
}

// Integer arrays converted exactly: a forced cast would truncate 1.5 to 1 or
// wrap 2**32 to 0 without a word.
template <class T>
carray<T> exact_ints(const py::array& a, const char* name) {
    const char kind = a.dtype().kind();
    const auto lo = static_cast<double>(std::numeric_limits<T>::min());  // -2^(bits - 1), exact
    auto bad = [&](py::ssize_t i) {
        std::ostringstream msg;
        msg << name << "[" << i << "] is not an integer in [" << std::numeric_limits<T>::min() << ", "
            << std::numeric_limits<T>::max() << "]";
        value_error(msg.str());
    };
    if (kind == 'b' ||
        ((kind == 'i' || kind == 'u') && a.dtype().itemsize() < static_cast<py::ssize_t>(sizeof(T))) ||
        (kind == 'i' && a.dtype().itemsize() == static_cast<py::ssize_t>(sizeof(T))))
        return carray<T>::ensure(a);  // every value fits
    if (kind == 'u') {
        auto v = py::array_t<std::uint64_t, kIn>::ensure(a);
        for (py::ssize_t i = 0; i < v.size(); ++i)
            if (v.data()[i] > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) bad(i);
    } else if (kind == 'i') {
        auto v = py::array_t<std::int64_t, kIn>::ensure(a);
        for (py::ssize_t i = 0; i < v.size(); ++i)
            if (v.data()[i] < std::numeric_limits<T>::min() || v.data()[i] > std::numeric_limits<T>::max())
                bad(i);
    } else {  // floats, or objects holding numbers
        auto v = py::array_t<double, kIn>::ensure(a);
        if (!v) throw py::type_error(std::string(name) + ": expected an array of integers");
        for (py::ssize_t i = 0; i < v.size(); ++i) {
            const double x = v.data()[i];
            if (!(x >= lo && x < -lo) || x != std::floor(x)) bad(i);
        }
    }
    auto out = carray<T>::ensure(a);
    if (!out) throw py::type_error(std::string(name) + ": expected an array of integers");
    return out;
}

template <class T>
carray<T> tree_array(const py::object& a, const char* name, py::ssize_t n) {
    py::array any = py::array::ensure(a);
    if (!any) throw py::type_error(std::string(name) + ": expected an array of numbers");
    require_real(any, name);
    if (any.ndim() != 1 || (n >= 0 && any.shape(0) != n)) {
        std::ostringstream msg;
        msg << name << ": expected a 1-d array";
        if (n >= 0) msg << " of " << n << " values (one per node)";
        value_error(msg.str());
    }
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, std::uint8_t>) {
        return exact_ints<T>(any, name);
    } else {
        auto arr = carray<T>::ensure(any);
        if (!arr) throw py::type_error(std::string(name) + ": expected an array of numbers");
        return arr;
    }
}

// scikit-learn's per-node split arrays, checked for shape and converted once.
struct SplitArrays {
    py::ssize_t n = 0;
    carray<std::int64_t> left, right, feature;
    carray<double> threshold;
    carray<std::uint8_t> nan_left;  // read only when has_nan_left
    bool has_nan_left = false;

    SplitArrays(const py::object& left_in, const py::object& right_in, const py::object& feature_in,
                const py::object& threshold_in, const py::object& nan_left_in) {
        left = tree_array<std::int64_t>(left_in, "children_left", -1);
        n = left.shape(0);
        right = tree_array<std::int64_t>(right_in, "children_right", n);
        feature = tree_array<std::int64_t>(feature_in, "feature", n);
        threshold = tree_array<double>(threshold_in, "threshold", n);
        if (!nan_left_in.is_none()) {
            nan_left = tree_array<std::uint8_t>(nan_left_in, "missing_go_to_left", n);
            has_nan_left = true;
        }
    }
    // A default-constructed array_t is not null (it holds an empty array),
    // so "not given" is tracked by has_nan_left, never by testing the array.
    const std::uint8_t* nan_left_data() const { return has_nan_left ? nan_left.data() : nullptr; }
};

PyFastTree make_fast_tree(const py::object& left_in, const py::object& right_in, const py::object& feature_in,
                          const py::object& threshold_in, const py::object& leaf_class_in,
                          const py::object& proba_in, index_t n_features, const py::object& classes_in,
                          const py::object& nan_left_in, const std::string& precision) {
    const SplitArrays split(left_in, right_in, feature_in, threshold_in, nan_left_in);
    const py::ssize_t n = split.n;
    auto leaf_class = tree_array<std::int32_t>(leaf_class_in, "leaf_class", n);
    py::array proba_any = py::array::ensure(proba_in);
    if (!proba_any) throw py::type_error("proba: expected an array of numbers");
    require_real(proba_any, "proba");
    auto proba = carray<double>::ensure(proba_any);
    if (!proba || proba.ndim() != 2 || proba.shape(0) != n)
        value_error("proba: expected a 2-d array with one row of class probabilities per node");
    const py::ssize_t C = proba.shape(1);
    py::array classes = py::array::ensure(classes_in);
    if (!classes || classes.ndim() != 1 || classes.shape(0) != C)
        value_error("classes: expected a 1-d array with one label per column of proba");

    PyFastTree out;
    std::vector<std::string> names;
    for (py::ssize_t c = 0; c < C; ++c) names.push_back(py::str(classes.attr("__getitem__")(c)));
    out.tree =
        crembo::FastTree(n, split.left.data(), split.right.data(), split.feature.data(),
                         split.threshold.data(), split.nan_left_data(), n_features, C, leaf_class.data(),
                         proba.data(), parse_precision(precision), std::move(names));
    out.classes = classes;
    const char kind = classes.dtype().kind();
    if (kind == 'i' || kind == 'u' || kind == 'b') {
        auto v = py::array_t<std::int64_t, kIn>::ensure(classes);
        if (v) {
            out.label_kind = LabelKind::Integer;
            out.int_labels.assign(v.data(), v.data() + C);
            out.cast_out = !classes.dtype().is(py::dtype::of<std::int64_t>());
        }
    } else if (kind == 'f') {
        auto v = py::array_t<double, kIn>::ensure(classes);
        if (v) {
            out.label_kind = LabelKind::Float;
            out.float_labels.assign(v.data(), v.data() + C);
            out.cast_out = !classes.dtype().is(py::dtype::of<double>());
        }
    }
    return out;
}

// Calls f(data, n, row_stride, col_stride) with X's rows: float32 and float64
// arrays in place (any strides), anything else converted once, to float32 as
// scikit-learn does (float64 for precision="float64").
template <class F>
void with_tree_rows(index_t n_features, crembo::TreePrecision precision, const py::array& X, F&& f,
                    const char* model = "tree") {
    if (X.ndim() != 2) {
        std::ostringstream msg;
        msg << "X: expected a 2-d array of shape (n_samples, n_features), got " << X.ndim()
            << " dimension(s)";
        value_error(msg.str());
    }
    if (X.shape(1) != n_features) {
        std::ostringstream msg;
        msg << "X has " << X.shape(1) << " features, but the " << model << " was built for " << n_features;
        value_error(msg.str());
    }
    const py::ssize_t n = X.shape(0);
    auto in_place = [&](auto* data) {
        const py::ssize_t size = sizeof(*data);
        const py::ssize_t rs = X.strides(0), cs = X.strides(1);
        if (rs % size || cs % size) return false;
        f(data, n, rs / size, cs / size);
        return true;
    };
    const py::dtype dt = X.dtype();
    if (dt.is(py::dtype::of<double>())) {
        if (in_place(static_cast<const double*>(X.data()))) return;
    } else if (dt.is(py::dtype::of<float>())) {
        if (in_place(static_cast<const float*>(X.data()))) return;
    }
    require_real(X, "X");
    auto convert = [&](auto zero) {
        using T = decltype(zero);
        auto Xc = py::array_t<T, kIn>::ensure(X);
        if (!Xc)
            throw py::type_error("X: expected an array of numbers, got dtype " + std::string(py::str(dt)));
        f(Xc.data(), n, py::ssize_t(Xc.shape(1)), py::ssize_t(1));
    };
    if (precision == crembo::TreePrecision::Float64)
        convert(double{});
    else
        convert(float{});
}

// X as an ndarray: arrays as they are (no copy), anything else (lists,
// DataFrames) through numpy.asarray.
py::array as_rows(const py::object& X) {
    if (py::isinstance<py::array>(X)) return py::reinterpret_borrow<py::array>(X);
    py::array a = py::array::ensure(X);
    if (!a) throw py::type_error("X: expected an array-like of numbers of shape (n_samples, n_features)");
    return a;
}

template <class Fill>
void fill_rows(const crembo::FastTree& tree, const py::array& X, Fill&& fill, int n_threads = 0) {
    with_tree_rows(tree.n_features(), tree.precision(), X,
                   [&](const auto* data, py::ssize_t n, py::ssize_t rs, py::ssize_t cs) {
                       std::optional<py::gil_scoped_release> nogil;
                       if (n >= kReleaseGilRows) nogil.emplace();
                       tree.for_each_leaf(data, n, rs, cs, fill,
                                          n_threads > 0 ? n_threads : crembo::get_num_threads());
                   });
}

py::object fast_tree_predict(const PyFastTree& self, const py::object& X_in) {
    const py::array X = as_rows(X_in);
    const crembo::FastTree& tree = self.tree;
    const py::ssize_t n = X.ndim() == 2 ? X.shape(0) : 0;
    if (self.label_kind == LabelKind::Integer) {
        py::array_t<std::int64_t> out(n);
        std::int64_t* o = out.mutable_data();
        const std::int64_t* labels = self.int_labels.data();
        fill_rows(tree, X, [&](index_t i, std::int32_t l) { o[i] = labels[tree.leaf_class(l)]; });
        if (self.cast_out) return out.attr("astype")(self.classes.dtype());
        return std::move(out);
    }
    if (self.label_kind == LabelKind::Float) {
        py::array_t<double> out(n);
        double* o = out.mutable_data();
        const double* labels = self.float_labels.data();
        fill_rows(tree, X, [&](index_t i, std::int32_t l) { o[i] = labels[tree.leaf_class(l)]; });
        if (self.cast_out) return out.attr("astype")(self.classes.dtype());
        return std::move(out);
    }
    py::array_t<std::int64_t> idx(n);
    std::int64_t* o = idx.mutable_data();
    fill_rows(tree, X, [&](index_t i, std::int32_t l) { o[i] = tree.leaf_class(l); });
    return self.classes.attr("take")(idx);
}

py::dict fast_tree_state(const PyFastTree& self) {
    const crembo::FastTree& t = self.tree;
    const index_t n = t.n_nodes(), C = t.n_classes();
    py::array_t<std::int64_t> left(n), right(n), feature(n);
    py::array_t<double> threshold(n);
    py::array_t<std::int32_t> leaf_class(n);
    py::array_t<std::uint8_t> nan_left(n);
    auto proba = new_array<double>({n, C});
    for (index_t i = 0; i < n; ++i) {
        left.mutable_data()[i] = t.children_left(i);
        right.mutable_data()[i] = t.children_right(i);
        feature.mutable_data()[i] = t.feature(i);
        threshold.mutable_data()[i] = t.threshold(i);
        leaf_class.mutable_data()[i] = t.leaf_class(i);
        nan_left.mutable_data()[i] = t.missing_go_to_left(i);
        std::memcpy(proba.mutable_data() + i * C, t.leaf_proba(i), sizeof(double) * static_cast<size_t>(C));
    }
    py::dict d;
    d["children_left"] = left;
    d["children_right"] = right;
    d["feature"] = feature;
    d["threshold"] = threshold;
    d["leaf_class"] = leaf_class;
    d["proba"] = proba;
    d["n_features"] = t.n_features();
    d["classes"] = self.classes;
    d["missing_go_to_left"] = nan_left;
    d["precision"] = t.precision() == crembo::TreePrecision::Float32 ? "float32" : "float64";
    return d;
}

}  // namespace

void init_fast_tree(py::module_& m) {
    py::class_<PyFastTree>(m, "FastTree", py::dynamic_attr(),
                           "A decision tree flattened into arrays and evaluated natively.")
        .def(py::init(&make_fast_tree), py::arg("children_left"), py::arg("children_right"),
             py::arg("feature"), py::arg("threshold"), py::arg("leaf_class"), py::arg("proba"),
             py::arg("n_features"), py::arg("classes"), py::arg("missing_go_to_left") = py::none(),
             py::arg("precision") = "float32")
        .def("predict", &fast_tree_predict, py::arg("X"),
             "Class labels of the rows of X (n_samples, n_features).")
        .def(
            "predict_proba",
            [](const PyFastTree& self, const py::object& X_in) {
                const py::array X = as_rows(X_in);
                const crembo::FastTree& tree = self.tree;
                const index_t C = tree.n_classes();
                auto out = new_array<double>({X.ndim() == 2 ? X.shape(0) : 0, C});
                double* o = out.mutable_data();
                fill_rows(tree, X, [&](index_t i, std::int32_t l) {
                    const double* p = tree.leaf_proba(l);
                    for (index_t c = 0; c < C; ++c) o[i * C + c] = p[c];
                });
                return out;
            },
            py::arg("X"), "Class probabilities (n_samples, n_classes), columns ordered as classes_.")
        .def(
            "apply",
            [](const PyFastTree& self, const py::object& X_in, int n_threads) {
                const py::array X = as_rows(X_in);
                py::array_t<std::int64_t> out(X.ndim() == 2 ? X.shape(0) : 0);
                std::int64_t* o = out.mutable_data();
                fill_rows(self.tree, X, [&](index_t i, std::int32_t l) { o[i] = l; }, n_threads);
                return out;
            },
            py::arg("X"), py::arg("n_threads") = 0,
            "Index of the leaf each row of X reaches (scikit-learn's apply); n_threads 0: crembo's default.")
        .def(
            "to_text",
            [](const PyFastTree& self) {
                std::ostringstream os;
                self.tree.save(os);
                return os.str();
            },
            "The tree in the text format crembo/fast_tree.hpp loads.")
        .def("_state", &fast_tree_state)
        .def_property_readonly("classes_", [](const PyFastTree& self) { return self.classes; })
        .def_property_readonly("n_features_in_",
                               [](const PyFastTree& self) { return self.tree.n_features(); })
        .def_property_readonly("n_classes_", [](const PyFastTree& self) { return self.tree.n_classes(); })
        .def_property_readonly("node_count", [](const PyFastTree& self) { return self.tree.n_nodes(); })
        .def_property_readonly("n_leaves", [](const PyFastTree& self) { return self.tree.n_leaves(); })
        .def_property_readonly("max_depth", [](const PyFastTree& self) { return self.tree.max_depth(); })
        .def_property_readonly("precision", [](const PyFastTree& self) {
            return self.tree.precision() == crembo::TreePrecision::Float32 ? "float32" : "float64";
        });
    m.def(
        "fast_tree_text_state",
        [](const std::string& text) {
            std::istringstream is(text);
            crembo::FastTree tree = crembo::FastTree::load(is);
            PyFastTree tmp;
            tmp.tree = std::move(tree);
            py::list names;
            for (const auto& s : tmp.tree.class_names()) names.append(py::str(s));
            if (tmp.tree.class_names().empty())
                for (index_t c = 0; c < tmp.tree.n_classes(); ++c) names.append(py::str(std::to_string(c)));
            tmp.classes = py::array(names);
            return fast_tree_state(tmp);
        },
        py::arg("text"), "Parse the fast-tree text format into the arrays FastTree is built from.");

    // crembo._core.VoteForest: the trees of a voting ensemble in one node
    // array; beliefs(X) counts their votes natively (crembo.teachers uses it
    // for forests, extra trees and bagged trees).
    py::class_<crembo::VoteForest>(m, "VoteForest",
                                   "The trees of a voting ensemble, counting their votes natively.")
        .def(py::init<index_t, index_t>(), py::arg("n_features"), py::arg("n_classes"))
        .def(
            "add_tree",
            [](crembo::VoteForest& self, const py::object& left_in, const py::object& right_in,
               const py::object& feature_in, const py::object& threshold_in, const py::object& leaf_class_in,
               const py::object& nan_left_in) {
                const SplitArrays split(left_in, right_in, feature_in, threshold_in, nan_left_in);
                auto leaf_class = tree_array<std::int64_t>(leaf_class_in, "leaf_class", split.n);
                self.add_tree(split.n, split.left.data(), split.right.data(), split.feature.data(),
                              split.threshold.data(), split.nan_left_data(), leaf_class.data());
            },
            py::arg("children_left"), py::arg("children_right"), py::arg("feature"), py::arg("threshold"),
            py::arg("leaf_class"), py::arg("missing_go_to_left") = py::none(),
            "Append a tree in scikit-learn's layout; leaf_class[i] is the class index voted at leaf i.")
        .def(
            "beliefs",
            [](const crembo::VoteForest& self, const py::object& X_in, int n_threads, index_t block_rows) {
                if (self.n_trees() == 0) value_error("forest: no trees were added");
                const py::array X = as_rows(X_in);
                const index_t C = self.n_classes();
                auto out = new_array<double>({X.ndim() == 2 ? X.shape(0) : 0, C});
                double* o = out.mutable_data();
                const int nt = n_threads > 0 ? n_threads : crembo::get_num_threads();
                with_tree_rows(
                    self.n_features(), crembo::TreePrecision::Float32, X,
                    [&](const auto* data, py::ssize_t n, py::ssize_t rs, py::ssize_t cs) {
                        py::gil_scoped_release nogil;
                        self.vote(data, n, rs, cs, o, nt, block_rows);
                    },
                    "forest");
                return out;
            },
            py::arg("X"), py::arg("n_threads") = 0, py::arg("block_rows") = 0,
            "Share of the trees voting for each class, (n_samples, n_classes); n_threads 0: crembo's "
            "default; "
            "block_rows (a tuning knob): rows walked through every tree at a time, 0: the default.")
        .def_property_readonly("n_trees", &crembo::VoteForest::n_trees)
        .def_property_readonly("node_count", &crembo::VoteForest::n_nodes)
        .def_property_readonly("n_features_in_", &crembo::VoteForest::n_features)
        .def_property_readonly("n_classes_", &crembo::VoteForest::n_classes);
}

}  // namespace crembo_py
