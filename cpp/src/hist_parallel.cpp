// The data-parallel histogram tree's pieces (crembo/hist_parallel.hpp):
// per-partition node histograms, and the split of a node from its summed
// histogram by the in-memory tree's split search (crembo/detail/split.hpp).
#include "crembo/hist_parallel.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>

#include "crembo/detail/histogram.hpp"
#include "crembo/detail/split.hpp"

namespace crembo {

namespace {

void check_bins(const ParallelBins& b, index_t n_classes) {
    if (b.n_features < 1) throw std::invalid_argument("bins: expected at least one feature");
    if (n_classes < 1) throw std::invalid_argument("n_classes: expected at least one class");
    if (b.n_bins == nullptr) throw std::invalid_argument("bins: no bin counts");
    for (index_t j = 0; j < b.n_features; ++j)
        if (b.n_bins[j] < 0 || b.n_bins[j] > kMaxValueBins)
            throw std::invalid_argument("n_bins: expected counts in [0, 255]");
}

}  // namespace

index_t parallel_hist_size(const ParallelBins& bins, index_t n_classes) {
    check_bins(bins, n_classes);
    return detail::HistLayout(bins.n_bins, bins.n_features, n_classes).size();
}

void node_histograms(const ParallelBins& bins, index_t n_classes, const std::uint8_t* codes, index_t n,
                     const std::int32_t* slot, index_t n_slots, const label_t* labels, const double* omega,
                     double* out) {
    check_bins(bins, n_classes);
    if (n < 0 || n_slots < 0) throw std::invalid_argument("node_histograms: negative size");
    const detail::HistLayout layout(bins.n_bins, bins.n_features, n_classes);
    const index_t H = layout.size(), S = layout.stride();
    std::fill(out, out + n_slots * H, 0.0);
    if (n == 0 || n_slots == 0) return;
    if (codes == nullptr || slot == nullptr || labels == nullptr || omega == nullptr)
        throw std::invalid_argument("node_histograms: missing input");
    for (index_t i = 0; i < n; ++i) {
        if (slot[i] >= n_slots) {
            std::ostringstream msg;
            msg << "slot[" << i << "] = " << slot[i] << " is outside [-1, " << n_slots << ")";
            throw std::invalid_argument(msg.str());
        }
        if (slot[i] >= 0 && omega[i] > 0 && (labels[i] < 0 || labels[i] >= n_classes)) {
            std::ostringstream msg;
            msg << "labels[" << i << "] = " << labels[i] << " is outside [0, " << n_classes << ")";
            throw std::invalid_argument(msg.str());
        }
    }
    for (index_t j = 0; j < bins.n_features; ++j) {
        const int nb = layout.n_bins(j);
        const std::uint8_t* col = codes + j * n;
        const index_t base = layout.feature_offset(j);
        for (index_t i = 0; i < n; ++i) {
            const std::int32_t s = slot[i];
            const double w = omega[i];
            if (s < 0 || !(w > 0)) continue;
            const int code = col[i];
            if (code > nb) {
                std::ostringstream msg;
                msg << "codes[" << j << ", " << i << "] = " << code << " is above the feature's " << nb
                    << " value bins and its missing-value bin";
                throw std::invalid_argument(msg.str());
            }
            detail::add_label_row(out + index_t(s) * H + base + index_t(code) * S, labels[i], w);
        }
    }
}

NodeSplit split_node(const ParallelBins& bins, index_t n_classes, const TreeOptions& opt, double total_weight,
                     const NodeSums& sums, const double* hist) {
    check_bins(bins, n_classes);
    if (bins.bin_lo == nullptr || bins.bin_hi == nullptr)
        throw std::invalid_argument("bins: no value ranges");
    if (sums.channel == nullptr || sums.allow == nullptr) throw std::invalid_argument("sums: no class sums");
    if (opt.categorical != nullptr)
        throw std::invalid_argument("categorical features: not supported by the data-parallel tree");
    BinnedView view;
    view.n_features = bins.n_features;
    view.n_bins = bins.n_bins;
    view.bin_lo = bins.bin_lo;
    view.bin_hi = bins.bin_hi;
    const detail::SplitContext ctx = detail::make_split_context(view, n_classes, true, opt, total_weight);
    detail::Totals t;
    t.W = sums.W;
    t.cnt = sums.cnt;
    t.channel.assign(sums.channel, sums.channel + n_classes);
    t.allow.assign(sums.allow, sums.allow + n_classes);
    NodeSplit out;
    out.impurity = detail::impurity(t, ctx);
    out.splittable = detail::splittable(t, sums.depth, ctx);
    if (!out.splittable || hist == nullptr) return out;
    const detail::HistLayout layout(bins.n_bins, bins.n_features, n_classes);
    const detail::SplitInfo s = detail::find_split(layout, hist, t, ctx);
    out.found = s.found;
    if (s.found) {
        out.feature = s.feature;
        out.bin = s.bin;
        out.missing_left = s.missing_left;
        out.threshold = s.threshold;
    }
    return out;
}

}  // namespace crembo
