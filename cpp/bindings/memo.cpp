// Bindings of the consistency oracle and the MEMO search (crembo/core.hpp).
// The GIL is released around the search; the student-fit callbacks take it
// back while they run.
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

namespace crembo_py {

namespace {

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
                                 bool adaptive_eta = false, const std::string& search = "binary") {
    crembo::MemoOptions opt;
    if (search == "binary")
        opt.search = crembo::Search::Binary;
    else if (search == "gallop")
        opt.search = crembo::Search::Gallop;
    else
        throw py::value_error("search: expected 'binary' or 'gallop', got '" + search + "'");
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

void init_memo(py::module_& m) {
    // The feasibility probe's give-up rule (core.hpp), mirrored by crembo.dask.
    m.attr("HOPELESS_SHARE") = crembo::kHopelessShare;
    m.attr("HOPELESS_MIN") = crembo::kHopelessMin;
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
           int patience, const py::object& weights_in, bool probe_lowest, bool warm_start, bool adaptive_eta,
           const std::string& search) -> py::dict {
            const auto opt = make_options(oracle, max_rounds, eta, delta, patience, probe_lowest, warm_start,
                                          adaptive_eta, search);
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
        py::arg("adaptive_eta") = false, py::arg("search") = "binary");
}

}  // namespace crembo_py
