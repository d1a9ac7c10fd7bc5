// Bindings of the belief, depth, threshold and allowed-label kernels
// (crembo/core.hpp), the CUDA twins of six of them (crembo/cuda.hpp, under a
// "cuda_" prefix) and the thread count. The GIL is released around every
// kernel.
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
#include "crembo/core.hpp"
#ifdef CREMBO_WITH_CUDA
#include "crembo/cuda.hpp"
#endif

namespace crembo_py {

namespace {

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

void init_kernels(py::module_& m) {
    m.def("set_num_threads", &crembo::set_num_threads, py::arg("n"),
          "Threads used by the parallel kernels (0 restores the default).");
    m.def("get_num_threads", &crembo::get_num_threads);
    m.def("built_with_openmp", &crembo::built_with_openmp);

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

    m.def(
        "distinct_entries",
        [](const py::array& P, double lo, double hi) -> py::tuple {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                std::vector<T> values;
                std::vector<index_t> counts;
                {
                    py::gil_scoped_release nogil;
                    crembo::distinct_entries<T>(p.data(), p.shape(0), p.shape(1), T(lo), T(hi), values,
                                                counts);
                }
                return py::tuple(py::make_tuple(vector_copy(values), vector_copy(counts)));
            });
        },
        py::arg("beliefs"), py::arg("lo") = 0.0, py::arg("hi") = 1.0);

    m.def(
        "budget_from_counts",
        [](const py::array& values_in, const py::array& counts_in, index_t K) -> py::array {
            auto pick = [&](auto zero) {
                using T = decltype(zero);
                auto v = vector<T>(values_in, "values", -1);
                auto c = vector<index_t>(counts_in, "counts", v.shape(0));
                const std::vector<T> values(v.data(), v.data() + v.shape(0));
                const std::vector<index_t> counts(c.data(), c.data() + c.shape(0));
                return py::array(vector_copy(crembo::budget_from_counts<T>(values, counts, K)));
            };
            return is_float32(values_in) ? pick(float{}) : pick(double{});
        },
        py::arg("values"), py::arg("counts"), py::arg("n_thresholds"));

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

    m.def(
        "leaf_sums",
        [](const py::array& P, const py::array& leaves_in, const py::object& w_in, const py::array& cols_in,
           index_t n_nodes) -> py::array {
            return dispatch(P, [&](auto p, auto zero) {
                using T = decltype(zero);
                const index_t n = p.shape(0);
                for (const auto& [a, name] : {std::pair{&leaves_in, "leaves"}, std::pair{&cols_in, "cols"}}) {
                    const char kind = a->dtype().kind();
                    if (kind != 'i' && kind != 'u')
                        throw py::type_error(std::string(name) +
                                             ": expected integers, got an array of dtype " +
                                             std::string(py::str(a->dtype())));
                }
                auto leaves = vector<std::int64_t>(leaves_in, "leaves", n);
                auto cols = vector<std::int64_t>(cols_in, "cols", -1);
                carray<double> w;
                if (!w_in.is_none()) w = vector<double>(w_in.cast<py::array>(), "sample_weight", n);
                const index_t k = cols.shape(0);
                if (n_nodes < 0) throw py::value_error("n_nodes: expected a non-negative count");
                auto out = new_array<double>({n_nodes, k});
                {
                    py::gil_scoped_release nogil;
                    crembo::leaf_sums<T>(p.data(), n, p.shape(1), leaves.data(),
                                         w_in.is_none() ? nullptr : w.data(), cols.data(), k, n_nodes,
                                         out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("beliefs"), py::arg("leaves"), py::arg("sample_weight"), py::arg("cols"), py::arg("n_nodes"));

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

}  // namespace crembo_py
