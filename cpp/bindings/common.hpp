// Helpers shared by the binding files (one per domain, each with an init_*
// function that module.cpp calls): array conversion and checks, the accept
// callback, and the dicts both MEMO bindings and both tree fitters return.
// Internal to the extension module.
#pragma once

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cmath>
#include <initializer_list>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "crembo/core.hpp"
#include "crembo/hist_tree.hpp"

namespace crembo_py {

namespace py = pybind11;
using crembo::index_t;
using crembo::label_t;

constexpr auto kIn = py::array::c_style | py::array::forcecast;
template <class T>
using carray = py::array_t<T, kIn>;

// Compared by kind and size: a dtype that went through pickle is an equal
// but distinct object.
inline bool is_float32(const py::array& a) { return a.dtype().kind() == 'f' && a.dtype().itemsize() == 4; }

// A 1-d NumPy copy of a vector.
template <class T>
py::array_t<T> vector_copy(const std::vector<T>& v) {
    return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

// The accept callback of a MEMO search: takes the GIL while Python runs.
// It refers to accept, which must outlive it, and copies no Python object,
// so it may be made and dropped while the GIL is released.
inline crembo::AcceptFn make_accept(const py::object& accept) {
    if (accept.is_none()) return nullptr;
    const py::object* callable = &accept;
    return [callable]() {
        py::gil_scoped_acquire gil;
        (*callable)();
    };
}

inline py::dict probe_dict(const crembo::ProbeRecord& r) {
    py::dict d;
    d["candidate"] = r.candidate;
    d["threshold"] = r.threshold;
    d["consistent"] = r.consistent;
    d["violations"] = r.violations;
    d["rounds"] = r.rounds;
    return d;
}

// One oracle call's result (OracleResult or RegOracleResult).
template <class R>
py::dict oracle_dict(const R& r) {
    py::dict d;
    d["consistent"] = r.consistent;
    d["violations"] = r.violations;
    d["rounds"] = r.rounds;
    d["pred"] = vector_copy(r.pred);
    return d;
}

// A MEMO search's result; level_key names the best level ("best_threshold"
// for classification, "best_level" for regression).
template <class Pred>
py::dict memo_dict(index_t best_candidate, const char* level_key, double best_level,
                   const std::vector<Pred>& best_pred, const std::vector<crembo::ProbeRecord>& trace,
                   index_t n_fits) {
    py::dict d;
    d["best_candidate"] = best_candidate;
    d[level_key] = best_candidate >= 0 ? py::object(py::float_(best_level)) : py::object(py::none());
    d["best_pred"] = vector_copy(best_pred);
    py::list records;
    for (const auto& rec : trace) records.append(probe_dict(rec));
    d["trace"] = records;
    d["n_fits"] = n_fits;
    return d;
}

// The view of binned rows over already converted arrays; rows may be null
// (every row in order).
inline crembo::BinnedView binned_view(const carray<std::uint8_t>& codes, const carray<std::int32_t>& n_bins,
                                      const carray<float>& bin_lo, const carray<float>& bin_hi,
                                      const carray<index_t>* rows) {
    crembo::BinnedView view;
    view.codes = codes.data();
    view.n_rows = codes.shape(1);
    view.n_features = codes.shape(0);
    view.n_bins = n_bins.data();
    view.bin_lo = bin_lo.data();
    view.bin_hi = bin_hi.data();
    if (rows) {
        view.rows = rows->data();
        view.n_selected = rows->shape(0);
    }
    return view;
}

// A fitted tree's arrays, value reshaped to (nodes, 1, value_width).
inline py::dict tree_dict(const crembo::Tree& tree, py::ssize_t value_width) {
    py::dict out;
    const py::ssize_t nodes = tree.node_count();
    out["children_left"] = py::array(vector_copy(tree.left));
    out["children_right"] = py::array(vector_copy(tree.right));
    out["feature"] = py::array(vector_copy(tree.feature));
    out["threshold"] = py::array(vector_copy(tree.threshold));
    out["missing_go_to_left"] = py::array(vector_copy(tree.missing_left));
    out["split_bin"] = py::array(vector_copy(tree.split_bin));
    out["value"] = py::array(vector_copy(tree.value)).attr("reshape")(nodes, 1, value_width);
    out["n_node_samples"] = py::array(vector_copy(tree.n_node_samples));
    out["weighted_n_node_samples"] = py::array(vector_copy(tree.weighted_n_node_samples));
    out["impurity"] = py::array(vector_copy(tree.impurity));
    out["max_depth"] = tree.max_depth;
    return out;
}

[[noreturn]] inline void value_error(const std::string& msg) { throw py::value_error(msg); }

// Label arrays become int32 only when every value is an integer that fits:
// a plain cast would wrap 2**32 to 0 or truncate 0.7 to 0 without a word.
inline carray<label_t> checked_labels(const py::array& a, const char* name) {
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

// NumPy's forced casts would silently drop an imaginary part or parse
// strings as numbers: only real numbers (booleans, integers, floats, and
// object arrays holding numbers) are converted.
inline void require_real(const py::array& a, const char* name) {
    const char kind = a.dtype().kind();
    if (kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f' || kind == 'O') return;
    throw py::type_error(std::string(name) + ": expected real numbers, got an array of dtype " +
                         std::string(py::str(a.dtype())));
}

// The parts of crembo._core, one per binding file; module.cpp calls each.
void init_kernels(py::module_& m);     // kernels.cpp: beliefs, depth, thresholds, allowed labels (CPU, CUDA)
void init_memo(py::module_& m);        // memo.cpp: the consistency oracle and the MEMO search
void init_hist_tree(py::module_& m);   // hist_tree.cpp: binning and the histogram classifier tree
void init_fast_tree(py::module_& m);   // fast_tree.cpp: FastTree and VoteForest
void init_regression(py::module_& m);  // regression.cpp: regression kernels, MEMO and the interval tree
void init_hist_parallel(py::module_& m);  // hist_parallel.cpp: the data-parallel tree's histograms and splits

}  // namespace crembo_py
