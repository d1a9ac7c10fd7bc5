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
#include <type_traits>
#include <sstream>
#include <string>

#include "crembo/core.hpp"
#ifdef CREMBO_WITH_CUDA
#include "crembo/cuda.hpp"
#endif

namespace py = pybind11;
using crembo::index_t;
using crembo::label_t;

namespace {

constexpr auto kIn = py::array::c_style | py::array::forcecast;
template <class T>
using carray = py::array_t<T, kIn>;

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

// Compared by kind and size: a dtype that went through pickle is an equal
// but distinct object.
bool is_float32(const py::array& a) { return a.dtype().kind() == 'f' && a.dtype().itemsize() == 4; }

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

py::dict probe_to_dict(const crembo::ProbeRecord& r) {
    py::dict d;
    d["candidate"] = r.candidate;
    d["threshold"] = r.threshold;
    d["consistent"] = r.consistent;
    d["violations"] = r.violations;
    d["rounds"] = r.rounds;
    return d;
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

    crembo::AcceptFn accept_fn() const {
        if (accept.is_none()) return nullptr;
        return [this]() {
            py::gil_scoped_acquire gil;
            accept();
        };
    }
};

crembo::MemoOptions make_options(const std::string& oracle, int max_rounds, double eta,
                                 double delta, int patience) {
    crembo::MemoOptions opt;
    opt.oracle = parse_oracle(oracle);
    opt.max_rounds = max_rounds;
    opt.eta = eta;
    opt.delta = delta;
    opt.patience = patience;
    return opt;
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

    // ------------------------------------------------------------ beliefs
    m.def(
        "beliefs_from_votes",
        [](const py::array& votes_in, index_t n_classes, bool float32) -> py::array {
            if (votes_in.ndim() != 2) value_error("votes: expected a 2-d array (m hypotheses x n points)");
            auto votes = carray<label_t>::ensure(votes_in);
            const index_t mm = votes.shape(0), n = votes.shape(1);
            auto run = [&](auto zero) {
                using T = decltype(zero);
                auto out = new_array<T>({n, n_classes});
                {
                    py::gil_scoped_release nogil;
                    crembo::beliefs_from_votes<T>(votes.data(), mm, n, n_classes, out.mutable_data());
                }
                return py::array(out);
            };
            return float32 ? run(float{}) : run(double{});
        },
        py::arg("votes"), py::arg("n_classes"), py::arg("float32") = false);

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
        "point_depth",
        [](const py::array& P, const py::array& pred_in) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto pred = vector<label_t>(pred_in, "pred", n);
                auto out = new_array<T>({n});
                {
                    py::gil_scoped_release nogil;
                    crembo::point_depth<T>(p.data(), n, C, pred.data(), out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("pred"));

    m.def(
        "empirical_depth",
        [](const py::array& P, const py::array& pred_in, double delta) -> double {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto pred = vector<label_t>(pred_in, "pred", n);
                py::gil_scoped_release nogil;
                return double(crembo::empirical_depth<T>(p.data(), n, C, pred.data(), delta));
            });
        },
        py::arg("beliefs"), py::arg("pred"), py::arg("delta") = 0.0);

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
        "max_achievable_depth",
        [](const py::array& P) -> double {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release nogil;
                return double(crembo::max_achievable_depth<T>(p.data(), p.shape(0), p.shape(1)));
            });
        },
        py::arg("beliefs"));

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
        "allowed_labels",
        [](const py::array& P, double t) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                auto out = new_array<bool>({p.shape(0), p.shape(1)});
                {
                    py::gil_scoped_release nogil;
                    crembo::allowed_labels<T>(p.data(), p.shape(0), p.shape(1), T(t),
                                              reinterpret_cast<std::uint8_t*>(out.mutable_data()));
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("threshold"));

    m.def(
        "count_violations",
        [](const py::array& P, const py::array& pred_in, double t) -> index_t {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0);
                auto pred = vector<label_t>(pred_in, "pred", n);
                py::gil_scoped_release nogil;
                return crembo::count_violations<T>(p.data(), n, p.shape(1), pred.data(), T(t));
            });
        },
        py::arg("beliefs"), py::arg("pred"), py::arg("threshold"));

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
           const py::object& weights_in, const py::object& prefer_in) -> py::dict {
            const auto opt = make_options(oracle, max_rounds, eta, delta, patience);
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                carray<double> w;
                carray<label_t> prefer;
                if (!weights_in.is_none()) w = vector<double>(weights_in.cast<py::array>(), "sample_weight", n);
                if (!prefer_in.is_none()) prefer = vector<label_t>(prefer_in.cast<py::array>(), "prefer", n);
                Callbacks cb{n, C, fit_labels, fit_mask, py::none()};
                crembo::OracleResult r;
                {
                    py::gil_scoped_release nogil;
                    r = crembo::consistency_oracle<T>(p.data(), n, C, T(t), opt, cb.labels_fn(),
                                                      cb.mask_fn(), weights_in.is_none() ? nullptr : w.data(),
                                                      prefer_in.is_none() ? nullptr : prefer.data());
                }
                py::dict d;
                d["consistent"] = r.consistent;
                d["violations"] = r.violations;
                d["rounds"] = r.rounds;
                d["pred"] = py::array_t<label_t>(static_cast<py::ssize_t>(r.pred.size()), r.pred.data());
                return d;
            });
        },
        py::arg("beliefs"), py::arg("threshold"), py::arg("fit_labels") = py::none(),
        py::arg("fit_mask") = py::none(), py::arg("oracle") = "reweight", py::arg("max_rounds") = 8,
        py::arg("eta") = 1.0, py::arg("delta") = 0.0, py::arg("patience") = 0,
        py::arg("sample_weight") = py::none(), py::arg("prefer") = py::none());

    m.def(
        "memo_search",
        [](const py::array& P, const py::array& cand_in, py::object fit_labels, py::object fit_mask,
           py::object accept, const std::string& oracle, int max_rounds, double eta, double delta, int patience,
           const py::object& weights_in) -> py::dict {
            const auto opt = make_options(oracle, max_rounds, eta, delta, patience);
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto cand = vector<T>(cand_in, "candidates", -1);
                carray<double> w;
                if (!weights_in.is_none()) w = vector<double>(weights_in.cast<py::array>(), "sample_weight", n);
                Callbacks cb{n, C, fit_labels, fit_mask, accept};
                crembo::MemoResult r;
                {
                    py::gil_scoped_release nogil;
                    r = crembo::memo_search<T>(p.data(), n, C, cand.data(), cand.shape(0), opt,
                                               cb.labels_fn(), cb.mask_fn(), cb.accept_fn(),
                                               weights_in.is_none() ? nullptr : w.data());
                }
                py::dict d;
                d["best_candidate"] = r.best_candidate;
                d["best_threshold"] = r.best_candidate >= 0 ? py::object(py::float_(r.best_threshold))
                                                            : py::object(py::none());
                d["best_pred"] = py::array_t<label_t>(static_cast<py::ssize_t>(r.best_pred.size()),
                                                      r.best_pred.data());
                py::list trace;
                for (const auto& rec : r.trace) trace.append(probe_to_dict(rec));
                d["trace"] = trace;
                d["n_fits"] = r.n_fits;
                return d;
            });
        },
        py::arg("beliefs"), py::arg("candidates"), py::arg("fit_labels") = py::none(),
        py::arg("fit_mask") = py::none(), py::arg("accept") = py::none(),
        py::arg("oracle") = "reweight", py::arg("max_rounds") = 8, py::arg("eta") = 1.0,
        py::arg("delta") = 0.0, py::arg("patience") = 0, py::arg("sample_weight") = py::none());

    // ---------------------------------------------------------------- CUDA
#ifdef CREMBO_WITH_CUDA
    m.attr("cuda_built") = true;
    m.def("cuda_available", &crembo::cuda::available);
    m.def("cuda_device_name", &crembo::cuda::device_name);
    m.def(
        "cuda_beliefs_from_votes",
        [](const py::array& votes_in, index_t n_classes, bool float32) -> py::array {
            if (votes_in.ndim() != 2) value_error("votes: expected a 2-d array (m hypotheses x n points)");
            auto votes = carray<label_t>::ensure(votes_in);
            const index_t mm = votes.shape(0), n = votes.shape(1);
            auto run = [&](auto zero) {
                using T = decltype(zero);
                auto out = new_array<T>({n, n_classes});
                {
                    py::gil_scoped_release nogil;
                    crembo::cuda::beliefs_from_votes<T>(votes.data(), mm, n, n_classes, out.mutable_data());
                }
                return py::array(out);
            };
            return float32 ? run(float{}) : run(double{});
        },
        py::arg("votes"), py::arg("n_classes"), py::arg("float32") = false);
    m.def(
        "cuda_point_depth",
        [](const py::array& P, const py::array& pred_in) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto pred = vector<label_t>(pred_in, "pred", n);
                auto out = new_array<T>({n});
                {
                    py::gil_scoped_release nogil;
                    crembo::cuda::point_depth<T>(p.data(), n, C, pred.data(), out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("pred"));
    m.def(
        "cuda_empirical_depth",
        [](const py::array& P, const py::array& pred_in, double delta) -> double {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0), C = p.shape(1);
                auto pred = vector<label_t>(pred_in, "pred", n);
                py::gil_scoped_release nogil;
                return double(crembo::cuda::empirical_depth<T>(p.data(), n, C, pred.data(), delta));
            });
        },
        py::arg("beliefs"), py::arg("pred"), py::arg("delta") = 0.0);
    m.def(
        "cuda_allowed_labels",
        [](const py::array& P, double t) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                auto out = new_array<bool>({p.shape(0), p.shape(1)});
                {
                    py::gil_scoped_release nogil;
                    crembo::cuda::allowed_labels<T>(p.data(), p.shape(0), p.shape(1), T(t),
                                                    reinterpret_cast<std::uint8_t*>(out.mutable_data()));
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("threshold"));
    m.def(
        "cuda_count_violations",
        [](const py::array& P, const py::array& pred_in, double t) -> index_t {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0);
                auto pred = vector<label_t>(pred_in, "pred", n);
                py::gil_scoped_release nogil;
                return crembo::cuda::count_violations<T>(p.data(), n, p.shape(1), pred.data(), T(t));
            });
        },
        py::arg("beliefs"), py::arg("pred"), py::arg("threshold"));
    m.def(
        "cuda_max_achievable_depth",
        [](const py::array& P) -> double {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release nogil;
                return double(crembo::cuda::max_achievable_depth<T>(p.data(), p.shape(0), p.shape(1)));
            });
        },
        py::arg("beliefs"));
#else
    m.attr("cuda_built") = false;
    m.def("cuda_available", []() { return false; });
    m.def("cuda_device_name", []() { return std::string(); });
#endif
}
