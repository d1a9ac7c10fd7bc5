// Bindings of the data-parallel histogram tree's pieces
// (crembo/hist_parallel.hpp), used by crembo.dask: per-partition node
// histograms, and the splits of a level's nodes from their summed
// histograms (the in-memory tree's split search).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "crembo/hist_parallel.hpp"

namespace crembo_py {

namespace {

template <class T>
carray<T> shaped(const py::array& a, const char* name, int ndim, py::ssize_t n0 = -1, py::ssize_t n1 = -1) {
    if (a.ndim() != ndim) {
        std::ostringstream msg;
        msg << name << ": expected a " << ndim << "-d array, got " << a.ndim() << " dimension(s)";
        value_error(msg.str());
    }
    if ((n0 >= 0 && a.shape(0) != n0) || (ndim == 2 && n1 >= 0 && a.shape(1) != n1)) {
        std::ostringstream msg;
        msg << name << ": expected " << (ndim == 2 ? "shape (" : "length ") << n0;
        if (ndim == 2) msg << ", " << n1 << ")";
        msg << ", got " << a.shape(0);
        if (ndim == 2) msg << " x " << a.shape(1);
        value_error(msg.str());
    }
    return carray<T>::ensure(a);
}

crembo::SplitCriterion criterion_of(const std::string& s) {
    if (s == "gini") return crembo::SplitCriterion::Gini;
    if (s == "coverage") return crembo::SplitCriterion::Coverage;
    if (s == "spread_gini") return crembo::SplitCriterion::SpreadGini;
    value_error("criterion: expected 'gini', 'coverage' or 'spread_gini', got '" + s + "'");
}

}  // namespace

void init_hist_parallel(py::module_& m) {
    m.def(
        "hist_node_histograms",
        [](const py::array& codes_in, const py::array& n_bins_in, const py::array& slot_in, index_t n_slots,
           const py::array& labels_in, const py::array& omega_in, index_t n_classes) {
            auto codes = shaped<std::uint8_t>(codes_in, "codes", 2);
            const index_t d = codes.shape(0), n = codes.shape(1);
            auto n_bins = shaped<std::int32_t>(n_bins_in, "n_bins", 1, d);
            auto slot = shaped<std::int32_t>(slot_in, "slot", 1, n);
            auto labels = shaped<label_t>(labels_in, "labels", 1, n);
            auto omega = shaped<double>(omega_in, "omega", 1, n);
            if (n_slots < 0) value_error("n_slots: expected a non-negative count");
            crembo::ParallelBins bins;
            bins.n_features = d;
            bins.n_bins = n_bins.data();
            const index_t H = crembo::parallel_hist_size(bins, n_classes);
            py::array_t<double> out(std::vector<py::ssize_t>{n_slots, H});
            {
                py::gil_scoped_release nogil;
                crembo::node_histograms(bins, n_classes, codes.data(), n, slot.data(), n_slots, labels.data(),
                                        omega.data(), out.mutable_data());
            }
            return out;
        },
        py::arg("codes"), py::arg("n_bins"), py::arg("slot"), py::arg("n_slots"), py::arg("labels"),
        py::arg("omega"), py::arg("n_classes"),
        "Histograms (n_slots x size) of one partition's rows by node slot (slot -1: skipped).");

    m.def(
        "hist_split_nodes",
        [](const py::object& hist_in, const py::array& W_in, const py::array& cnt_in,
           const py::array& channel_in, const py::array& allow_in, const py::array& depth_in,
           const py::array& n_bins_in, const py::array& lo_in, const py::array& hi_in, index_t n_classes,
           const std::string& criterion, int max_depth, index_t min_samples_split, index_t min_samples_leaf,
           double min_weight_fraction_leaf, double total_weight, int n_threads) -> py::dict {
            auto W = shaped<double>(W_in, "W", 1);
            const index_t k = W.shape(0);
            auto cnt = shaped<index_t>(cnt_in, "cnt", 1, k);
            auto channel = shaped<double>(channel_in, "channel", 2, k, n_classes);
            auto allow = shaped<index_t>(allow_in, "allow", 2, k, n_classes);
            auto depth = shaped<std::int32_t>(depth_in, "depth", 1, k);
            auto n_bins = shaped<std::int32_t>(n_bins_in, "n_bins", 1);
            const index_t d = n_bins.shape(0);
            auto lo = shaped<float>(lo_in, "bin_lo", 2, d, crembo::kBinSlots);
            auto hi = shaped<float>(hi_in, "bin_hi", 2, d, crembo::kBinSlots);
            crembo::ParallelBins bins;
            bins.n_features = d;
            bins.n_bins = n_bins.data();
            bins.bin_lo = lo.data();
            bins.bin_hi = hi.data();
            const index_t H = crembo::parallel_hist_size(bins, n_classes);
            carray<double> hist;
            const bool with_hist = !hist_in.is_none();
            if (with_hist) hist = shaped<double>(hist_in.cast<py::array>(), "hist", 2, k, H);
            crembo::TreeOptions opt;
            opt.criterion = criterion_of(criterion);
            opt.max_depth = max_depth;
            opt.min_samples_split = min_samples_split;
            opt.min_samples_leaf = min_samples_leaf;
            opt.min_weight_fraction_leaf = min_weight_fraction_leaf;
            opt.n_threads = n_threads;
            std::vector<crembo::NodeSplit> res(static_cast<size_t>(k));
            {
                py::gil_scoped_release nogil;
                for (index_t i = 0; i < k; ++i) {
                    crembo::NodeSums s;
                    s.W = W.data()[i];
                    s.cnt = cnt.data()[i];
                    s.channel = channel.data() + i * n_classes;
                    s.allow = allow.data() + i * n_classes;
                    s.depth = depth.data()[i];
                    res[size_t(i)] = crembo::split_node(bins, n_classes, opt, total_weight, s,
                                                        with_hist ? hist.data() + i * H : nullptr);
                }
            }
            py::array_t<std::uint8_t> splittable(k), found(k), missing_left(k);
            py::array_t<std::int64_t> feature(k);
            py::array_t<std::int32_t> bin(k);
            py::array_t<double> threshold(k), impurity(k);
            for (index_t i = 0; i < k; ++i) {
                const auto& r = res[size_t(i)];
                splittable.mutable_data()[i] = r.splittable;
                found.mutable_data()[i] = r.found;
                missing_left.mutable_data()[i] = r.missing_left;
                feature.mutable_data()[i] = r.found ? r.feature : -2;
                bin.mutable_data()[i] = r.found ? r.bin : -1;
                threshold.mutable_data()[i] = r.found ? r.threshold : -2.0;
                impurity.mutable_data()[i] = r.impurity;
            }
            py::dict out;
            out["splittable"] = splittable;
            out["found"] = found;
            out["feature"] = feature;
            out["bin"] = bin;
            out["missing_left"] = missing_left;
            out["threshold"] = threshold;
            out["impurity"] = impurity;
            return out;
        },
        py::arg("hist"), py::arg("W"), py::arg("cnt"), py::arg("channel"), py::arg("allow"), py::arg("depth"),
        py::arg("n_bins"), py::arg("bin_lo"), py::arg("bin_hi"), py::arg("n_classes"),
        py::arg("criterion") = "gini", py::arg("max_depth") = -1, py::arg("min_samples_split") = 2,
        py::arg("min_samples_leaf") = 1, py::arg("min_weight_fraction_leaf") = 0.0,
        py::arg("total_weight") = 0.0, py::arg("n_threads") = 0,
        "Per node: may it split, its impurity and (hist given) its best split, by the in-memory tree's "
        "rules.");
}

}  // namespace crembo_py
