// pybind11 bindings of the crembo core: the one file that knows Python.
//
// Arrays arrive as NumPy arrays. Belief matrices keep float32 when given
// float32 and use float64 otherwise; C-contiguous input is used in place and
// anything else is copied once. The Python layer validates arguments before
// calling in; the core validates again and its std::invalid_argument becomes
// ValueError. The GIL is released around every kernel and around the MEMO
// search (the student-fit callbacks take it back while they run).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>

#include "common.hpp"
#include "crembo/core.hpp"
#include "crembo/fast_tree.hpp"
#include "crembo/hist_tree.hpp"
#ifdef CREMBO_WITH_CUDA
#include "crembo/cuda.hpp"
#endif

namespace py = pybind11;
using crembo::index_t;

// Regression kernels (deep hypotheses for regression): cpp/bindings/regression.cpp.
void bind_regression(py::module_& m);
// The data-parallel histogram tree's pieces: cpp/bindings/hist_parallel.cpp.
void bind_hist_parallel(py::module_& m);
using crembo::label_t;

namespace {

using namespace crembo_py;

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

// Label arrays become int32 only when every value is an integer that fits:
// a plain cast would wrap 2**32 to 0 or truncate 0.7 to 0 without a word.
carray<label_t> checked_labels(const py::array& a, const char* name) {
    const char kind = a.dtype().kind();
    if ((kind == 'i' || kind == 'u') && a.dtype().itemsize() <= 2) return carray<label_t>::ensure(a);
    if (kind == 'i' && a.dtype().itemsize() == 4) return carray<label_t>::ensure(a);
    if (kind != 'i' && kind != 'u' && kind != 'f') {
        std::ostringstream msg;
        msg << name << ": expected integer labels, got an array of dtype kind '" << kind << "'";
        throw py::value_error(msg.str());
    }
    if (kind != 'f') {
        // Exact range check in 64-bit integers (doubles would round 2**53+1).
        auto ints = py::array_t<long long, kIn>::ensure(a);
        const long long* v = ints.data();
        for (py::ssize_t i = 0; i < ints.size(); ++i) {
            if (v[i] < INT32_MIN || v[i] > INT32_MAX) {
                std::ostringstream msg;
                msg << name << "[" << i << "] is outside the range of label indices";
                throw py::value_error(msg.str());
            }
        }
        return carray<label_t>::ensure(a);
    }
    auto wide = py::array_t<double, kIn>::ensure(a);
    const double* v = wide.data();
    for (py::ssize_t i = 0; i < wide.size(); ++i) {
        if (!std::isfinite(v[i]) || v[i] != std::floor(v[i]) || v[i] < INT32_MIN || v[i] > INT32_MAX) {
            std::ostringstream msg;
            msg << name << "[" << i << "] = " << v[i] << " is not an integer label index";
            throw py::value_error(msg.str());
        }
    }
    return carray<label_t>::ensure(a);
}

template <class T>
carray<T> matrix(const py::array& a, const char* name) {
    if (a.ndim() != 2) {
        std::ostringstream msg;
        msg << name << ": expected a 2-d array, got " << a.ndim() << " dimension(s)";
        value_error(msg.str());
    }
    return carray<T>::ensure(a);
}

template <class T>
carray<T> vector(const py::array& a, const char* name, index_t n) {
    if (a.ndim() != 1) {
        std::ostringstream msg;
        msg << name << ": expected a 1-d array, got " << a.ndim() << " dimension(s)";
        value_error(msg.str());
    }
    if (n >= 0 && a.shape(0) != n) {
        std::ostringstream msg;
        msg << name << ": expected " << n << " values, got " << a.shape(0);
        value_error(msg.str());
    }
    if constexpr (std::is_same_v<T, label_t>) return checked_labels(a, name);
    return carray<T>::ensure(a);
}

// Calls f with the belief matrix as float32 (when given so) or float64.
template <class F>
auto dispatch(const py::array& P, F&& f) {
    if (is_float32(P)) return f(matrix<float>(P, "beliefs"), float{});
    return f(matrix<double>(P, "beliefs"), double{});
}

template <class T>
py::array_t<T> new_array(std::initializer_list<py::ssize_t> shape) {
    return py::array_t<T>(std::vector<py::ssize_t>(shape));
}

crembo::Oracle parse_oracle(const std::string& s) {
    if (s == "reweight") return crembo::Oracle::Reweight;
    if (s == "single") return crembo::Oracle::SingleFit;
    value_error("oracle: expected 'reweight' or 'single', got '" + s + "'");
}

// The student-fit callbacks. Each takes the GIL, hands NumPy copies to the
// Python callable and copies its predictions back into the core's buffer.
struct Callbacks {
    index_t n, C;
    py::object fit_labels, fit_mask, accept;

    void take_predictions(const py::object& result, label_t* pred) const {
        if (result.is_none())
            throw std::invalid_argument("the fit callback must return an array of predictions, got None");
        auto any = py::array::ensure(result);
        if (!any) throw std::invalid_argument("the fit callback must return an array of predictions");
        auto arr = checked_labels(any, "the fit callback's predictions");
        if (arr.ndim() != 1 || arr.shape(0) != n) {
            std::ostringstream msg;
            msg << "the fit callback returned " << arr.size() << " predictions, expected " << n;
            throw std::invalid_argument(msg.str());
        }
        std::memcpy(pred, arr.data(), sizeof(label_t) * static_cast<size_t>(n));
    }

    crembo::FitLabelsFn labels_fn() const {
        if (fit_labels.is_none()) return nullptr;
        return [this](const label_t* targets, const double* w, label_t* pred) {
            py::gil_scoped_acquire gil;
            py::array_t<label_t> t(n);
            py::array_t<double> wt(n);
            std::memcpy(t.mutable_data(), targets, sizeof(label_t) * static_cast<size_t>(n));
            std::memcpy(wt.mutable_data(), w, sizeof(double) * static_cast<size_t>(n));
            take_predictions(fit_labels(t, wt), pred);
        };
    }

    crembo::FitMaskFn mask_fn() const {
        if (fit_mask.is_none()) return nullptr;
        return [this](const std::uint8_t* mask, label_t* pred) {
            py::gil_scoped_acquire gil;
            py::array_t<bool> m({n, C});
            std::memcpy(m.mutable_data(), mask, static_cast<size_t>(n * C));
            take_predictions(fit_mask(m), pred);
        };
    }

    crembo::AcceptFn accept_fn() const { return make_accept(accept); }
};

crembo::MemoOptions make_options(const std::string& oracle, int max_rounds, double eta, double delta,
                                 int patience, bool probe_lowest = true, bool warm_start = false,
                                 bool adaptive_eta = false) {
    crembo::MemoOptions opt;
    opt.oracle = parse_oracle(oracle);
    opt.max_rounds = max_rounds;
    opt.eta = eta;
    opt.delta = delta;
    opt.patience = patience;
    opt.probe_lowest = probe_lowest;
    opt.warm_start = warm_start;
    opt.adaptive_eta = adaptive_eta;
    return opt;
}

}  // namespace

namespace {

// ------------------------------------------------------------ fast trees
// crembo.FastTree: a decision tree flattened into arrays and evaluated by the
// header-only crembo/fast_tree.hpp. predict() on one row is the latency path:
// it checks the shape and dtype (cheap) and keeps the GIL for small batches,
// where releasing it costs more than the walk; larger batches release it and
// split rows over threads.
struct PyFastTree {
    crembo::FastTree tree;
    py::array classes;
    int label_kind = 2;  // 0: integer labels, 1: float labels, 2: anything else (take from classes)
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

// NumPy's forced casts would silently drop an imaginary part or parse
// strings as numbers: only real numbers (booleans, integers, floats, and
// object arrays holding numbers) are converted.
void require_real(const py::array& a, const char* name) {
    const char kind = a.dtype().kind();
    if (kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f' || kind == 'O') return;
    throw py::type_error(std::string(name) + ": expected real numbers, got an array of dtype " +
                         std::string(py::str(a.dtype())));
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
            out.label_kind = 0;
            out.int_labels.assign(v.data(), v.data() + C);
            out.cast_out = !classes.dtype().is(py::dtype::of<std::int64_t>());
        }
    } else if (kind == 'f') {
        auto v = py::array_t<double, kIn>::ensure(classes);
        if (v) {
            out.label_kind = 1;
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
    if (self.label_kind == 0) {
        py::array_t<std::int64_t> out(n);
        std::int64_t* o = out.mutable_data();
        const std::int64_t* labels = self.int_labels.data();
        fill_rows(tree, X, [&](index_t i, std::int32_t l) { o[i] = labels[tree.leaf_class(l)]; });
        if (self.cast_out) return out.attr("astype")(self.classes.dtype());
        return std::move(out);
    }
    if (self.label_kind == 1) {
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

void bind_fast_tree(py::module_& m) {
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

}  // namespace

// ------------------------------------------------------- histogram trees
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

crembo::SplitCriterion hist_criterion(const std::string& s) {
    if (s == "gini") return crembo::SplitCriterion::Gini;
    if (s == "coverage") return crembo::SplitCriterion::Coverage;
    if (s == "spread_gini") return crembo::SplitCriterion::SpreadGini;
    value_error("criterion: expected 'gini', 'coverage' or 'spread_gini', got '" + s + "'");
}

// --------------------------------------- kernels with a CPU and a CUDA build
// Six kernels exist in the core and in cuda/ with the same signatures; each
// backend names its versions and bind_shared_kernels binds them once per
// backend (the CUDA ones under a "cuda_" prefix).
#define CREMBO_KERNEL_BACKEND(Name, Prefix, NS)                                                       \
    struct Name {                                                                                     \
        static constexpr const char* prefix = Prefix;                                                 \
        template <class T>                                                                            \
        static void beliefs_from_votes(const label_t* v, index_t m, index_t n, index_t C, T* out) {   \
            NS::beliefs_from_votes<T>(v, m, n, C, out);                                               \
        }                                                                                             \
        template <class T>                                                                            \
        static void point_depth(const T* P, index_t n, index_t C, const label_t* pred, T* out) {      \
            NS::point_depth<T>(P, n, C, pred, out);                                                   \
        }                                                                                             \
        template <class T>                                                                            \
        static T empirical_depth(const T* P, index_t n, index_t C, const label_t* pred, double d) {   \
            return NS::empirical_depth<T>(P, n, C, pred, d);                                          \
        }                                                                                             \
        template <class T>                                                                            \
        static void allowed_labels(const T* P, index_t n, index_t C, T t, std::uint8_t* mask) {       \
            NS::allowed_labels<T>(P, n, C, t, mask);                                                  \
        }                                                                                             \
        template <class T>                                                                            \
        static index_t count_violations(const T* P, index_t n, index_t C, const label_t* pred, T t) { \
            return NS::count_violations<T>(P, n, C, pred, t);                                         \
        }                                                                                             \
        template <class T>                                                                            \
        static T max_achievable_depth(const T* P, index_t n, index_t C) {                             \
            return NS::max_achievable_depth<T>(P, n, C);                                              \
        }                                                                                             \
    };

CREMBO_KERNEL_BACKEND(CpuKernels, "", crembo)
#ifdef CREMBO_WITH_CUDA
CREMBO_KERNEL_BACKEND(CudaKernels, "cuda_", crembo::cuda)
#endif
#undef CREMBO_KERNEL_BACKEND

template <class K>
void bind_shared_kernels(py::module_& m) {
    auto name = [](const char* base) { return std::string(K::prefix) + base; };
    m.def(
        name("beliefs_from_votes").c_str(),
        [](const py::array& votes_in, index_t n_classes, bool float32) -> py::array {
            if (votes_in.ndim() != 2) value_error("votes: expected a 2-d array (m hypotheses x n points)");
            auto votes = carray<label_t>::ensure(votes_in);
            const index_t mm = votes.shape(0), n = votes.shape(1);
            auto run = [&](auto zero) {
                using T = decltype(zero);
                auto out = new_array<T>({n, n_classes});
                {
                    py::gil_scoped_release nogil;
                    K::template beliefs_from_votes<T>(votes.data(), mm, n, n_classes, out.mutable_data());
                }
                return py::array(out);
            };
            return float32 ? run(float{}) : run(double{});
        },
        py::arg("votes"), py::arg("n_classes"), py::arg("float32") = false);
    m.def(
        name("point_depth").c_str(),
        [](const py::array& P, const py::array& pred_in) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto pred = vector<label_t>(pred_in, "pred", n);
                auto out = new_array<T>({n});
                {
                    py::gil_scoped_release nogil;
                    K::template point_depth<T>(p.data(), n, C, pred.data(), out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("pred"));
    m.def(
        name("empirical_depth").c_str(),
        [](const py::array& P, const py::array& pred_in, double delta) -> double {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto pred = vector<label_t>(pred_in, "pred", n);
                py::gil_scoped_release nogil;
                return double(K::template empirical_depth<T>(p.data(), n, C, pred.data(), delta));
            });
        },
        py::arg("beliefs"), py::arg("pred"), py::arg("delta") = 0.0);
    m.def(
        name("allowed_labels").c_str(),
        [](const py::array& P, double t) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                auto out = new_array<bool>({p.shape(0), p.shape(1)});
                {
                    py::gil_scoped_release nogil;
                    K::template allowed_labels<T>(p.data(), p.shape(0), p.shape(1), T(t),
                                                  reinterpret_cast<std::uint8_t*>(out.mutable_data()));
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("threshold"));
    m.def(
        name("count_violations").c_str(),
        [](const py::array& P, const py::array& pred_in, double t) -> index_t {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0);
                auto pred = vector<label_t>(pred_in, "pred", n);
                py::gil_scoped_release nogil;
                return K::template count_violations<T>(p.data(), n, p.shape(1), pred.data(), T(t));
            });
        },
        py::arg("beliefs"), py::arg("pred"), py::arg("threshold"));
    m.def(
        name("max_achievable_depth").c_str(),
        [](const py::array& P) -> double {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release nogil;
                return double(K::template max_achievable_depth<T>(p.data(), p.shape(0), p.shape(1)));
            });
        },
        py::arg("beliefs"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "crembo native core: beliefs, depth, thresholds, consistency and the MEMO search";
#ifdef CREMBO_VERSION
    m.attr("__version__") = CREMBO_VERSION;
#endif
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });

    m.def("set_num_threads", &crembo::set_num_threads, py::arg("n"),
          "Threads used by the parallel kernels (0 restores the default).");
    m.def("get_num_threads", &crembo::get_num_threads);
    m.def("built_with_openmp", &crembo::built_with_openmp);
    bind_fast_tree(m);

    // ------------------------------------------------------------ beliefs
    bind_shared_kernels<CpuKernels>(m);

    m.def(
        "check_beliefs",
        [](const py::array& P, double tol) {
            dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release nogil;
                crembo::check_beliefs<T>(p.data(), p.shape(0), p.shape(1), tol);
                return 0;
            });
        },
        py::arg("beliefs"), py::arg("tol"));

    m.def(
        "normalize_beliefs",
        [](const py::array& P) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                auto out = new_array<T>({p.shape(0), p.shape(1)});
                std::memcpy(out.mutable_data(), p.data(), sizeof(T) * static_cast<size_t>(p.size()));
                {
                    py::gil_scoped_release nogil;
                    crembo::normalize_beliefs<T>(out.mutable_data(), p.shape(0), p.shape(1));
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"));

    // -------------------------------------------------------------- depth

    m.def(
        "depth_profile",
        [](const py::array& depth_in, const py::array& thr_in) -> py::array {
            auto depth = vector<double>(depth_in, "depth", -1);
            auto thr = vector<double>(thr_in, "thresholds", -1);
            auto out = new_array<double>({thr.shape(0)});
            {
                py::gil_scoped_release nogil;
                crembo::depth_profile<double>(depth.data(), depth.shape(0), thr.data(), thr.shape(0),
                                              out.mutable_data());
            }
            return py::array(out);
        },
        py::arg("depth"), py::arg("thresholds"));

    m.def(
        "row_argmax",
        [](const py::array& P) -> py::tuple {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0);
                auto arg = new_array<label_t>({n});
                auto mx = new_array<T>({n});
                {
                    py::gil_scoped_release nogil;
                    crembo::row_argmax<T>(p.data(), n, p.shape(1), arg.mutable_data(), mx.mutable_data());
                }
                return py::tuple(py::make_tuple(arg, mx));
            });
        },
        py::arg("beliefs"));

    // --------------------------------------------------------- thresholds
    m.def(
        "candidate_thresholds",
        [](const py::array& P, double lo, double hi) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                std::vector<T> v;
                {
                    py::gil_scoped_release nogil;
                    v = crembo::candidate_thresholds<T>(p.data(), p.shape(0), p.shape(1), T(lo), T(hi));
                }
                return py::array(py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data()));
            });
        },
        py::arg("beliefs"), py::arg("lo") = 0.0, py::arg("hi") = 1.0);

    m.def(
        "budgeted_thresholds",
        [](const py::array& P, index_t K, double lo, double hi) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                std::vector<T> v;
                {
                    py::gil_scoped_release nogil;
                    v = crembo::budgeted_thresholds<T>(p.data(), p.shape(0), p.shape(1), K, T(lo), T(hi));
                }
                return py::array(py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data()));
            });
        },
        py::arg("beliefs"), py::arg("n_thresholds"), py::arg("lo") = 0.0, py::arg("hi") = 1.0);

    // ------------------------------------------- allowed labels, consistency

    m.def(
        "allowed_targets",
        [](const py::array& P, double t, const py::object& prefer_in) -> py::tuple {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0);
                carray<label_t> prefer;
                if (!prefer_in.is_none()) prefer = vector<label_t>(prefer_in.cast<py::array>(), "prefer", n);
                auto out = new_array<label_t>({n});
                index_t empty;
                {
                    py::gil_scoped_release nogil;
                    empty = crembo::allowed_targets<T>(p.data(), n, p.shape(1), T(t),
                                                       prefer_in.is_none() ? nullptr : prefer.data(),
                                                       out.mutable_data());
                }
                return py::tuple(py::make_tuple(out, empty));
            });
        },
        py::arg("beliefs"), py::arg("threshold"), py::arg("prefer") = py::none());

    // ---------------------------------------------------------------- MEMO
    m.def(
        "consistency_oracle",
        [](const py::array& P, double t, py::object fit_labels, py::object fit_mask,
           const std::string& oracle, int max_rounds, double eta, double delta, int patience,
           const py::object& weights_in, const py::object& prefer_in, bool adaptive_eta) -> py::dict {
            const auto opt =
                make_options(oracle, max_rounds, eta, delta, patience, true, false, adaptive_eta);
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                carray<double> w;
                carray<label_t> prefer;
                if (!weights_in.is_none())
                    w = vector<double>(weights_in.cast<py::array>(), "sample_weight", n);
                if (!prefer_in.is_none()) prefer = vector<label_t>(prefer_in.cast<py::array>(), "prefer", n);
                Callbacks cb{n, C, fit_labels, fit_mask, py::none()};
                crembo::OracleResult r;
                {
                    py::gil_scoped_release nogil;
                    r = crembo::consistency_oracle<T>(p.data(), n, C, T(t), opt, cb.labels_fn(), cb.mask_fn(),
                                                      weights_in.is_none() ? nullptr : w.data(),
                                                      prefer_in.is_none() ? nullptr : prefer.data());
                }
                return oracle_dict(r);
            });
        },
        py::arg("beliefs"), py::arg("threshold"), py::arg("fit_labels") = py::none(),
        py::arg("fit_mask") = py::none(), py::arg("oracle") = "reweight", py::arg("max_rounds") = 8,
        py::arg("eta") = 1.0, py::arg("delta") = 0.0, py::arg("patience") = 0,
        py::arg("sample_weight") = py::none(), py::arg("prefer") = py::none(),
        py::arg("adaptive_eta") = false);

    m.def(
        "memo_search",
        [](const py::array& P, const py::array& cand_in, py::object fit_labels, py::object fit_mask,
           py::object accept, const std::string& oracle, int max_rounds, double eta, double delta,
           int patience, const py::object& weights_in, bool probe_lowest, bool warm_start,
           bool adaptive_eta) -> py::dict {
            const auto opt = make_options(oracle, max_rounds, eta, delta, patience, probe_lowest, warm_start,
                                          adaptive_eta);
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto cand = vector<T>(cand_in, "candidates", -1);
                carray<double> w;
                if (!weights_in.is_none())
                    w = vector<double>(weights_in.cast<py::array>(), "sample_weight", n);
                Callbacks cb{n, C, fit_labels, fit_mask, accept};
                crembo::MemoResult r;
                {
                    py::gil_scoped_release nogil;
                    r = crembo::memo_search<T>(p.data(), n, C, cand.data(), cand.shape(0), opt,
                                               cb.labels_fn(), cb.mask_fn(), cb.accept_fn(),
                                               weights_in.is_none() ? nullptr : w.data());
                }
                return memo_dict(r.best_candidate, "best_threshold", r.best_threshold, r.best_pred, r.trace,
                                 r.n_fits);
            });
        },
        py::arg("beliefs"), py::arg("candidates"), py::arg("fit_labels") = py::none(),
        py::arg("fit_mask") = py::none(), py::arg("accept") = py::none(), py::arg("oracle") = "reweight",
        py::arg("max_rounds") = 8, py::arg("eta") = 1.0, py::arg("delta") = 0.0, py::arg("patience") = 0,
        py::arg("sample_weight") = py::none(), py::arg("probe_lowest") = true, py::arg("warm_start") = false,
        py::arg("adaptive_eta") = false);

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

    m.def(
        "hist_fit",
        [](const py::array& codes_in, const py::array& n_bins_in, const py::array& lo_in,
           const py::array& hi_in, const py::object& rows_in, index_t n_classes, const py::object& labels_in,
           const py::object& allowed_in, const py::object& weight_in, const py::object& class_weight_in,
           const std::string& criterion, int max_depth, index_t min_samples_split, index_t min_samples_leaf,
           double min_weight_fraction_leaf, index_t max_leaf_nodes, int n_threads,
           const py::object& categorical_in) -> py::dict {
            hist_check_2d(codes_in, "codes");
            auto codes = carray<std::uint8_t>::ensure(codes_in);
            const index_t d = codes.shape(0), n = codes.shape(1);
            auto n_bins = vector<std::int32_t>(n_bins_in, "n_bins", d);
            auto lo = matrix<float>(lo_in, "bin_lo");
            auto hi = matrix<float>(hi_in, "bin_hi");
            if (lo.shape(0) != d || hi.shape(0) != d || lo.shape(1) != crembo::kBinSlots ||
                hi.shape(1) != crembo::kBinSlots)
                value_error("bin_lo, bin_hi: expected (n_features, 256) arrays");
            carray<index_t> rows;
            if (!rows_in.is_none()) rows = vector<index_t>(rows_in.cast<py::array>(), "rows", -1);
            const auto view = binned_view(codes, n_bins, lo, hi, rows_in.is_none() ? nullptr : &rows);
            const index_t m = rows_in.is_none() ? n : view.n_selected;
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

    // ---------------------------------------------------------- regression
    bind_regression(m);
    bind_hist_parallel(m);

    // ---------------------------------------------------------------- CUDA
#ifdef CREMBO_WITH_CUDA
    m.attr("cuda_built") = true;
    m.def("cuda_available", &crembo::cuda::available);
    m.def("cuda_device_name", &crembo::cuda::device_name);
    bind_shared_kernels<CudaKernels>(m);
#else
    m.attr("cuda_built") = false;
    m.def("cuda_available", []() { return false; });
    m.def("cuda_device_name", []() { return std::string(); });
#endif
}
