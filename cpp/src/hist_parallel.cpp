// Per-partition histograms of a data-parallel histogram tree (crembo.dask):
// one pass over a partition's rows fills the histograms of every open node
// of a level. The split search on the summed histograms is split_node
// (hist_tree.cpp), the in-memory tree's own.
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>

#include "crembo/hist_tree.hpp"

namespace crembo {

void node_histograms(const HistLayout& layout, const std::uint8_t* codes, index_t n, const std::int32_t* slot,
                     index_t n_slots, const label_t* labels, const double* omega, double* out) {
    const index_t H = hist_size(layout);
    const index_t d = layout.n_features, C = layout.n_classes, S = C + 2;
    if (n < 0 || n_slots < 0) throw std::invalid_argument("node_histograms: negative size");
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
        if (slot[i] >= 0 && omega[i] > 0 && (labels[i] < 0 || labels[i] >= C)) {
            std::ostringstream msg;
            msg << "labels[" << i << "] = " << labels[i] << " is outside [0, " << C << ")";
            throw std::invalid_argument(msg.str());
        }
    }
    index_t base = 0;
    for (index_t j = 0; j < d; ++j) {
        const int nb = layout.n_bins[j];
        const std::uint8_t* col = codes + j * n;
        for (index_t i = 0; i < n; ++i) {
            const std::int32_t s = slot[i];
            const double w = omega[i];
            if (s < 0 || !(w > 0)) continue;
            const int code = col[i];
            if (code > nb) {
                std::ostringstream msg;
                msg << "codes[" << j << ", " << i << "] = " << code << " is above the feature's " << nb
                    << " bins and its missing-value bin";
                throw std::invalid_argument(msg.str());
            }
            double* h = out + index_t(s) * H + (base + code) * S;
            h[0] += w;
            h[1] += 1.0;
            h[2 + labels[i]] += w;
        }
        base += nb + 1;
    }
}

}  // namespace crembo
