// Argument checks shared by the CPU kernels (cpp/src), the CUDA kernels
// (cuda/kernels.cu) and the MEMO search, so that every backend rejects bad
// input with the same exception and message. Internal: not part of the API.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "crembo/core.hpp"

namespace crembo {
namespace detail {

inline void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}

inline void check_shape(index_t n, index_t C) {
    require(n >= 1, "beliefs: expected at least one point (n >= 1)");
    require(C >= 1, "beliefs: expected at least one class (C >= 1)");
}

[[noreturn]] inline void bad_label(const char* arg, long long i, label_t y, index_t C) {
    std::ostringstream msg;
    msg << arg << "[" << i << "] = " << y << " is outside the label range [0, " << C << ")";
    throw std::invalid_argument(msg.str());
}

// How many of n points a delta-insensitive check may get wrong: floor(delta n).
inline index_t tolerated_violations(index_t n, double delta) {
    require(delta >= 0.0 && delta < 1.0, "delta: expected a fraction in [0, 1)");
    return static_cast<index_t>(std::floor(delta * double(n)));
}

// The order statistic the delta-insensitive depth reads (0-based).
inline index_t insensitive_rank(index_t n, double delta) {
    return std::min(tolerated_violations(n, delta), n - 1);
}

}  // namespace detail
}  // namespace crembo
