// The parallel loop of the histogram trees (binning, histograms, split
// search). Internal: not part of the API.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "crembo/core.hpp"

namespace crembo {
namespace detail {

// Threads work on a tree node only when it has this many row-features:
// starting and joining them costs more than a small node's work, and on a
// busy machine a descheduled thread stalls the join.
constexpr index_t kParallelWork = index_t(1) << 17;

// n > 0: n threads; 0: crembo's default (set_num_threads).
inline int resolve_threads(int n) { return n > 0 ? n : get_num_threads(); }

// Runs f(task, worker) for task in [0, n_tasks) on up to `threads` threads
// (worker in [0, threads)), tasks handed out one at a time. Plain threads
// started per call rather than an OpenMP team: the tree makes a handful of
// parallel calls per fit with serial work between them, and an OpenMP team's
// spinning idle members steal that serial work's core on a busy machine.
// The first exception thrown by f is rethrown here.
template <class F>
void parallel_for(index_t n_tasks, int threads, F&& f) {
    threads = int(std::min<index_t>(threads, n_tasks));
    if (threads <= 1) {
        for (index_t k = 0; k < n_tasks; ++k) f(k, 0);
        return;
    }
    std::atomic<index_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&](int worker) {
        try {
            for (index_t k; (k = next.fetch_add(1)) < n_tasks;) f(k, worker);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next = n_tasks;
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(size_t(threads - 1));
    for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace detail
}  // namespace crembo
