// The binary search over increasing candidate levels that both MEMO searches
// (memo.cpp for classification, regression.cpp for regression) run around
// their consistency oracles. Internal: not part of the API.
#pragma once

#include <algorithm>
#include <vector>

#include "crembo/core.hpp"

namespace crembo {
namespace detail {

// Appends one probe's record to trace and counts its fits.
template <class Level, class Result>
void record_probe(std::vector<ProbeRecord>& trace, index_t& n_fits, index_t mid, Level level,
                  const Result& r) {
    n_fits += r.rounds;
    ProbeRecord rec;
    rec.candidate = mid;
    rec.threshold = double(level);
    rec.consistent = r.consistent;
    rec.violations = r.violations;
    rec.rounds = r.rounds;
    trace.push_back(rec);
}

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
        record_probe(trace, n_fits, mid, candidates[mid], r);
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

// The galloping search over the same candidates (MemoOptions::Search::Gallop):
// candidates[0] first (a failure there ends the search); after a success,
// reached(result) gives the deepest candidate index the successful student is
// consistent at (at least the probed one), which becomes the best, and the
// next probe lies step candidates above it, step doubling after each success;
// after a failure the next probe bisects between the best and the failed
// candidate. Same probe/keep/trace contract as level_search; prefer_best is
// true once any success is kept.
template <class Level, class Probe, class Keep, class Reached>
void gallop_search(const Level* candidates, index_t k, const AcceptFn& accept,
                   std::vector<ProbeRecord>& trace, index_t& n_fits, Probe&& probe, Keep&& keep,
                   Reached&& reached) {
    index_t best = -1, hi = k, step = 1;
    while (k > 0) {
        const index_t mid = best < 0 ? 0 : std::min(best + step, hi - 1);
        if (mid <= best) break;
        auto r = probe(mid, best >= 0, best < 0);
        record_probe(trace, n_fits, mid, candidates[mid], r);
        if (r.consistent) {
            best = std::max(mid, reached(r));  // a real certificate, even above a failed probe
            keep(best, r);
            if (accept) accept();
            step = step > k ? k : 2 * step;
        } else {
            if (best < 0) break;
            hi = mid;
            step = std::max<index_t>(1, (hi - best) / 2);
        }
    }
}

}  // namespace detail
}  // namespace crembo
