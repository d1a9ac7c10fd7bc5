// CUDA twins of the regression depth kernels (crembo/regression.hpp),
// defined in the regression block at the end of cuda/kernels.cu. Same
// contracts, checks, messages and results as the CPU functions; pointers may
// be host or device memory (see crembo/cuda.hpp).
#pragma once

#include "crembo/core.hpp"

namespace crembo {
namespace cuda {

// out[i] = Tukey depth of pred[i] among the m hypotheses of row i (H: n x m).
template <class T>
void hypothesis_point_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double* out);

// The (floor(delta n)+1)-th smallest point depth.
template <class T>
double hypothesis_empirical_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double delta);

// Rows of the sorted matrix S whose prediction lies outside the interval at level t.
template <class T>
index_t hypothesis_violations(const T* S, index_t n, index_t m, const T* pred, double t, double tol);

}  // namespace cuda
}  // namespace crembo
