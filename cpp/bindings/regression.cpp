// pybind11 bindings of the regression kernels (crembo/regression.hpp), kept
// apart from module.cpp; init_regression is called from its PYBIND11_MODULE.
//
// Hypothesis matrices are (n points, m hypotheses), float32 kept as float32
// and anything else as float64; predictions take the matrix's dtype. The
// GIL is released around every kernel and around the MEMO search (the fit
// callback takes it back while it runs).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <sstream>
#include <string>

#include "common.hpp"
#include "crembo/hist_tree_regression.hpp"
#include "crembo/regression.hpp"
#ifdef CREMBO_WITH_CUDA
#include "crembo/cuda_regression.hpp"
#endif

namespace py = pybind11;
using crembo::index_t;

namespace {

using namespace crembo_py;

template <class T>
carray<T> hyp_matrix(const py::array& a, const char* name) {
    if (a.ndim() != 2) {
        std::ostringstream msg;
        msg << name << ": expected a 2-d array (n points x m hypotheses), got " << a.ndim()
            << " dimension(s)";
        throw py::value_error(msg.str());
    }
    return carray<T>::ensure(a);
}

template <class T>
carray<T> hyp_vector(const py::array& a, const char* name, index_t n) {
    if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n)) {
        std::ostringstream msg;
        msg << name << ": expected a 1-d array of " << n << " values, got shape (";
        for (py::ssize_t d = 0; d < a.ndim(); ++d) msg << (d ? ", " : "") << a.shape(d);
        msg << (a.ndim() == 1 ? ",)" : ")");
        throw py::value_error(msg.str());
    }
    return carray<T>::ensure(a);
}

// Calls f with the hypothesis matrix as float32 (when given so) or float64.
template <class F>
auto with_hypotheses(const py::array& H, const char* name, F&& f) {
    if (is_float32(H)) return f(hyp_matrix<float>(H, name), float{});
    return f(hyp_matrix<double>(H, name), double{});
}

// Calls f(H, pred, n, m): the hypothesis matrix as with_hypotheses gives it
// and pred, a 1-d array of its n values in the matrix's dtype.
template <class F>
auto with_hyp_pred(const py::array& H_in, const char* name, const py::array& pred_in, F&& f) {
    return with_hypotheses(H_in, name, [&](auto H, auto zero) {
        using T = decltype(zero);
        const index_t n = H.shape(0), mm = H.shape(1);
        return f(H, hyp_vector<T>(pred_in, "pred", n), n, mm);
    });
}

template <class T>
py::array_t<T> new_vec(index_t n) {
    return py::array_t<T>(static_cast<py::ssize_t>(n));
}

crembo::MemoOptions reg_options(int max_rounds, double eta, double delta, int patience, bool probe_lowest) {
    crembo::MemoOptions opt;
    opt.oracle = crembo::Oracle::Reweight;
    opt.max_rounds = max_rounds;
    opt.eta = eta;
    opt.delta = delta;
    opt.patience = patience;
    opt.probe_lowest = probe_lowest;
    return opt;
}

// The fit callback: takes the GIL, hands copies of targets and weights to
// the Python callable, copies its n predictions back.
crembo::FitValuesFn make_fit(const py::object& fit, index_t n) {
    if (fit.is_none()) return nullptr;
    return [fit, n](const double* targets, const double* w, double* pred) {
        py::gil_scoped_acquire gil;
        py::array_t<double> t(n), wt(n);
        std::memcpy(t.mutable_data(), targets, sizeof(double) * static_cast<size_t>(n));
        std::memcpy(wt.mutable_data(), w, sizeof(double) * static_cast<size_t>(n));
        py::object result = fit(t, wt);
        if (result.is_none())
            throw std::invalid_argument("the fit callback must return an array of predictions, got None");
        auto arr = carray<double>::ensure(result);
        if (!arr || arr.ndim() != 1 || arr.shape(0) != n) {
            std::ostringstream msg;
            msg << "the fit callback must return " << n << " predictions";
            throw std::invalid_argument(msg.str());
        }
        std::memcpy(pred, arr.data(), sizeof(double) * static_cast<size_t>(n));
    };
}

// The three depth kernels built for the CPU and for CUDA, with the same
// signatures: each backend names its versions and bind_depth_kernels binds
// them once per backend (the CUDA ones under a "cuda_" prefix).
#define CREMBO_DEPTH_BACKEND(Name, Prefix, NS)                                                              \
    struct Name {                                                                                           \
        static constexpr const char* prefix = Prefix;                                                       \
        template <class T>                                                                                  \
        static void point_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double* out) { \
            NS::hypothesis_point_depth<T>(H, n, m, pred, tol, out);                                         \
        }                                                                                                   \
        template <class T>                                                                                  \
        static double empirical_depth(const T* H, index_t n, index_t m, const T* pred, double tol,          \
                                      double delta) {                                                       \
            return NS::hypothesis_empirical_depth<T>(H, n, m, pred, tol, delta);                            \
        }                                                                                                   \
        template <class T>                                                                                  \
        static index_t violations(const T* S, index_t n, index_t m, const T* pred, double t, double tol) {  \
            return NS::hypothesis_violations<T>(S, n, m, pred, t, tol);                                     \
        }                                                                                                   \
    };

CREMBO_DEPTH_BACKEND(CpuDepth, "", crembo)
#ifdef CREMBO_WITH_CUDA
CREMBO_DEPTH_BACKEND(CudaDepth, "cuda_", crembo::cuda)
#endif
#undef CREMBO_DEPTH_BACKEND

template <class K>
void bind_depth_kernels(py::module_& m) {
    auto name = [](const char* base) { return std::string(K::prefix) + base; };
    m.def(
        name("hypothesis_point_depth").c_str(),
        [](const py::array& H_in, const py::array& pred_in, double tol) -> py::array {
            return with_hyp_pred(H_in, "hypotheses", pred_in, [&](auto H, auto pred, index_t n, index_t mm) {
                auto out = new_vec<double>(n);
                {
                    py::gil_scoped_release nogil;
                    K::point_depth(H.data(), n, mm, pred.data(), tol, out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("hypotheses"), py::arg("pred"), py::arg("tol") = 0.0);
    m.def(
        name("hypothesis_empirical_depth").c_str(),
        [](const py::array& H_in, const py::array& pred_in, double tol, double delta) -> double {
            return with_hyp_pred(H_in, "hypotheses", pred_in, [&](auto H, auto pred, index_t n, index_t mm) {
                py::gil_scoped_release nogil;
                return K::empirical_depth(H.data(), n, mm, pred.data(), tol, delta);
            });
        },
        py::arg("hypotheses"), py::arg("pred"), py::arg("tol") = 0.0, py::arg("delta") = 0.0);
    m.def(
        name("hypothesis_violations").c_str(),
        [](const py::array& S_in, const py::array& pred_in, double t, double tol) -> index_t {
            auto count = [&](auto S, auto pred, index_t n, index_t mm) {
                py::gil_scoped_release nogil;
                return K::violations(S.data(), n, mm, pred.data(), t, tol);
            };
            return with_hyp_pred(S_in, "sorted_hypotheses", pred_in, count);
        },
        py::arg("sorted_hypotheses"), py::arg("pred"), py::arg("t"), py::arg("tol") = 0.0);
}

}  // namespace

namespace crembo_py {

void init_regression(py::module_& m) {
    m.def(
        "sort_hypotheses",
        [](const py::array& H_in) -> py::array {
            return with_hypotheses(H_in, "hypotheses", [&](auto H, auto zero) {
                using T = decltype(zero);
                const index_t n = H.shape(0), mm = H.shape(1);
                py::array_t<T> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(mm)});
                {
                    py::gil_scoped_release nogil;
                    crembo::sort_hypotheses<T>(H.data(), n, mm, out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("hypotheses"), "Rows of an (n, m) hypothesis-prediction matrix sorted ascending.");
    m.def("interval_rank", &crembo::interval_rank, py::arg("m"), py::arg("t"),
          "k(t): the smallest k with k/m >= t (the order of the lower interval end).");
    m.def(
        "hypothesis_intervals",
        [](const py::array& S_in, double t) -> py::tuple {
            return with_hypotheses(S_in, "sorted_hypotheses", [&](auto S, auto zero) {
                using T = decltype(zero);
                const index_t n = S.shape(0), mm = S.shape(1);
                auto lo = new_vec<T>(n), hi = new_vec<T>(n);
                {
                    py::gil_scoped_release nogil;
                    crembo::hypothesis_intervals<T>(S.data(), n, mm, t, lo.mutable_data(), hi.mutable_data());
                }
                return py::tuple(py::make_tuple(lo, hi));
            });
        },
        py::arg("sorted_hypotheses"), py::arg("t"), "(lo, hi): the allowed intervals at level t.");
    m.def(
        "hypothesis_medians",
        [](const py::array& S_in) -> py::array {
            return with_hypotheses(S_in, "sorted_hypotheses", [&](auto S, auto zero) {
                using T = decltype(zero);
                const index_t n = S.shape(0), mm = S.shape(1);
                auto out = new_vec<T>(n);
                {
                    py::gil_scoped_release nogil;
                    crembo::hypothesis_medians<T>(S.data(), n, mm, out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("sorted_hypotheses"));
    m.def(
        "clip_to_intervals",
        [](const py::array& S_in, double t, const py::object& prefer_in) -> py::array {
            return with_hypotheses(S_in, "sorted_hypotheses", [&](auto S, auto zero) {
                using T = decltype(zero);
                const index_t n = S.shape(0), mm = S.shape(1);
                carray<T> prefer;
                if (!prefer_in.is_none()) prefer = hyp_vector<T>(prefer_in.cast<py::array>(), "prefer", n);
                auto out = new_vec<T>(n);
                {
                    py::gil_scoped_release nogil;
                    crembo::clip_to_intervals<T>(S.data(), n, mm, t,
                                                 prefer_in.is_none() ? nullptr : prefer.data(),
                                                 out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("sorted_hypotheses"), py::arg("t"), py::arg("prefer") = py::none(),
        "prefer (default: the medians) clipped into the allowed intervals at level t.");
    bind_depth_kernels<CpuDepth>(m);
    m.def(
        "max_point_depth",
        [](const py::array& S_in, double tol) -> py::array {
            return with_hypotheses(S_in, "sorted_hypotheses", [&](auto S, auto zero) {
                using T = decltype(zero);
                const index_t n = S.shape(0), mm = S.shape(1);
                auto out = new_vec<double>(n);
                {
                    py::gil_scoped_release nogil;
                    crembo::max_point_depth<T>(S.data(), n, mm, tol, out.mutable_data());
                }
                return py::array(out);
            });
        },
        py::arg("sorted_hypotheses"), py::arg("tol") = 0.0);
    m.def(
        "regression_oracle",
        [](const py::array& S_in, double t, py::object fit, double tol, int max_rounds, double eta,
           double delta, int patience, const py::object& weights_in,
           const py::object& prefer_in) -> py::dict {
            const auto opt = reg_options(max_rounds, eta, delta, patience, true);
            return with_hypotheses(S_in, "sorted_hypotheses", [&](auto S, auto zero) {
                using T = decltype(zero);
                const index_t n = S.shape(0), mm = S.shape(1);
                carray<double> w;
                carray<T> prefer;
                if (!weights_in.is_none())
                    w = hyp_vector<double>(weights_in.cast<py::array>(), "sample_weight", n);
                if (!prefer_in.is_none()) prefer = hyp_vector<T>(prefer_in.cast<py::array>(), "prefer", n);
                auto fit_fn = make_fit(fit, n);
                crembo::RegOracleResult r;
                {
                    py::gil_scoped_release nogil;
                    r = crembo::regression_oracle<T>(S.data(), n, mm, t, tol, opt, fit_fn,
                                                     weights_in.is_none() ? nullptr : w.data(),
                                                     prefer_in.is_none() ? nullptr : prefer.data());
                }
                return oracle_dict(r);
            });
        },
        py::arg("sorted_hypotheses"), py::arg("t"), py::arg("fit"), py::arg("tol") = 0.0,
        py::arg("max_rounds") = 8, py::arg("eta") = 1.0, py::arg("delta") = 0.0, py::arg("patience") = 0,
        py::arg("sample_weight") = py::none(), py::arg("prefer") = py::none(),
        "One call of the reweighting consistency oracle at level t.");
    m.def(
        "regression_memo_search",
        [](const py::array& S_in, const py::array& cand_in, py::object fit, py::object accept, double tol,
           int max_rounds, double eta, double delta, int patience, const py::object& weights_in,
           bool probe_lowest) -> py::dict {
            const auto opt = reg_options(max_rounds, eta, delta, patience, probe_lowest);
            return with_hypotheses(S_in, "sorted_hypotheses", [&](auto S, auto zero) {
                using T = decltype(zero);
                const index_t n = S.shape(0), mm = S.shape(1);
                auto cand = hyp_vector<double>(cand_in, "candidates", -1);
                carray<double> w;
                if (!weights_in.is_none())
                    w = hyp_vector<double>(weights_in.cast<py::array>(), "sample_weight", n);
                auto fit_fn = make_fit(fit, n);
                auto accept_fn = make_accept(accept);
                crembo::RegMemoResult r;
                {
                    py::gil_scoped_release nogil;
                    r = crembo::regression_memo_search<T>(S.data(), n, mm, cand.data(), cand.shape(0), tol,
                                                          opt, fit_fn, accept_fn,
                                                          weights_in.is_none() ? nullptr : w.data());
                }
                return memo_dict(r.best_candidate, "best_level", r.best_level, r.best_pred, r.trace,
                                 r.n_fits);
            });
        },
        py::arg("sorted_hypotheses"), py::arg("candidates"), py::arg("fit"), py::arg("accept") = py::none(),
        py::arg("tol") = 0.0, py::arg("max_rounds") = 8, py::arg("eta") = 1.0, py::arg("delta") = 0.0,
        py::arg("patience") = 0, py::arg("sample_weight") = py::none(), py::arg("probe_lowest") = true,
        "MEMO for regression: binary search over levels with the reweighting oracle.");

#ifdef CREMBO_WITH_CUDA
    // ------------------------------------------------- CUDA twins (cuda_ prefix)
    bind_depth_kernels<CudaDepth>(m);
#endif

    // ------------------------------------------------- native interval tree
    m.def(
        "interval_leaf_value",
        [](const py::array& lo_in, const py::array& hi_in, const py::object& w_in, double hint) -> double {
            auto lo = hyp_vector<double>(lo_in, "lo", -1);
            const index_t n = lo.shape(0);
            auto hi = hyp_vector<double>(hi_in, "hi", n);
            carray<double> w;
            std::vector<double> ones;
            const double* wp;
            if (w_in.is_none()) {
                ones.assign(static_cast<size_t>(n), 1.0);
                wp = ones.data();
            } else {
                w = hyp_vector<double>(w_in.cast<py::array>(), "sample_weight", n);
                wp = w.data();
            }
            return crembo::interval_leaf_value(lo.data(), hi.data(), wp, n, hint);
        },
        py::arg("lo"), py::arg("hi"), py::arg("sample_weight") = py::none(), py::arg("hint") = 0.0,
        "The minimiser of sum w dist(v, [lo, hi])^2 (nearest hint when a range minimises it).");
    m.def(
        "hist_fit_intervals",
        [](const py::array& codes_in, const py::array& n_bins_in, const py::array& lo_bins_in,
           const py::array& hi_bins_in, const py::object& rows_in, const py::array& lo_in,
           const py::array& hi_in, const py::object& weight_in, int max_depth, index_t min_samples_split,
           index_t min_samples_leaf, double min_weight_fraction_leaf, int rounds) -> py::dict {
            if (codes_in.ndim() != 2)
                throw py::value_error("codes: expected a 2-d array (n_features, n_rows)");
            auto codes = carray<std::uint8_t>::ensure(codes_in);
            const index_t d = codes.shape(0), n = codes.shape(1);
            auto n_bins = hyp_vector<std::int32_t>(n_bins_in, "n_bins", d);
            auto blo = carray<float>::ensure(lo_bins_in);
            auto bhi = carray<float>::ensure(hi_bins_in);
            if (blo.ndim() != 2 || bhi.ndim() != 2 || blo.shape(0) != d || bhi.shape(0) != d ||
                blo.shape(1) != crembo::kBinSlots || bhi.shape(1) != crembo::kBinSlots)
                throw py::value_error("bin_lo, bin_hi: expected (n_features, 256) arrays");
            carray<index_t> rows;
            if (!rows_in.is_none()) rows = hyp_vector<index_t>(rows_in.cast<py::array>(), "rows", -1);
            const auto view = binned_view(codes, n_bins, blo, bhi, rows_in.is_none() ? nullptr : &rows);
            const index_t m_sel = rows_in.is_none() ? n : view.n_selected;
            auto lo = hyp_vector<double>(lo_in, "lo", m_sel);
            auto hi = hyp_vector<double>(hi_in, "hi", m_sel);
            carray<double> w;
            crembo::IntervalTargets targets;
            targets.lo = lo.data();
            targets.hi = hi.data();
            if (!weight_in.is_none()) {
                w = hyp_vector<double>(weight_in.cast<py::array>(), "sample_weight", m_sel);
                targets.sample_weight = w.data();
            }
            crembo::IntervalTreeOptions opt;
            opt.max_depth = max_depth;
            opt.min_samples_split = min_samples_split;
            opt.min_samples_leaf = min_samples_leaf;
            opt.min_weight_fraction_leaf = min_weight_fraction_leaf;
            opt.rounds = rounds;
            crembo::Tree tree;
            {
                py::gil_scoped_release nogil;
                tree = crembo::fit_interval_tree(view, targets, opt);
            }
            return tree_dict(tree, 1);
        },
        py::arg("codes"), py::arg("n_bins"), py::arg("bin_lo"), py::arg("bin_hi"),
        py::arg("rows") = py::none(), py::arg("lo"), py::arg("hi"), py::arg("sample_weight") = py::none(),
        py::arg("max_depth") = -1, py::arg("min_samples_split") = 2, py::arg("min_samples_leaf") = 1,
        py::arg("min_weight_fraction_leaf") = 0.0, py::arg("rounds") = 3,
        "Fits a histogram regression tree to interval targets [lo, hi] on binned rows; returns its arrays.");
}

}  // namespace crembo_py
