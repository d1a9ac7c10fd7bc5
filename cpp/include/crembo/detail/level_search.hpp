// The binary search over increasing candidate levels that both MEMO searches
// (memo.cpp for classification, regression.cpp for regression) run around
// their consistency oracles. Internal: not part of the API.
#pragma once

#include <vector>

#include "crembo/core.hpp"

namespace crembo {
namespace detail {

// Searches candidates[0..k) for the largest level at which the oracle
// succeeds, relying on consistency being monotone in the level. With
// probe_lowest, candidates[0] is probed first and a failure there ends the
// search; a success there does not count as a preferred student for the next
// probe (prefer_best stays false), any later success does.
//
// probe(mid, prefer_best, first) runs the oracle at candidates[mid] (first:
// this is probe_lowest's feasibility probe, whose failure ends the search)
// and returns its result (with consistent, violations and rounds);
// keep(mid, result) stores a
// success as the new best. Every probe is appended to trace and its rounds
// added to n_fits; accept() is called after each kept success.
template <class Level, class Probe, class Keep>
void level_search(const Level* candidates, index_t k, bool probe_lowest, const AcceptFn& accept,
                  std::vector<ProbeRecord>& trace, index_t& n_fits, Probe&& probe, Keep&& keep) {
    index_t lo = 0, hi = k - 1;
    bool first = probe_lowest && k > 0;
    bool prefer_best = false;
    while (lo <= hi) {
        const index_t mid = first ? 0 : lo + (hi - lo) / 2;
        auto r = probe(mid, prefer_best, first);
        n_fits += r.rounds;
        ProbeRecord rec;
        rec.candidate = mid;
        rec.threshold = double(candidates[mid]);
        rec.consistent = r.consistent;
        rec.violations = r.violations;
        rec.rounds = r.rounds;
        trace.push_back(rec);
        if (r.consistent) {
            keep(mid, r);
            if (accept) accept();
            prefer_best = !first;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
        first = false;
    }
}

}  // namespace detail
}  // namespace crembo
