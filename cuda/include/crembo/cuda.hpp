// CUDA implementations of the core's data-parallel kernels. Declared here,
// defined in cuda/kernels.cu, compiled only when CMake finds a CUDA compiler
// (CREMBO_WITH_CUDA). Same contracts and results as the CPU functions in
// crembo/core.hpp.
//
// Pointers may be host or device memory: each function inspects them
// (cudaPointerGetAttributes) and copies host data to the device only when it
// has to; outputs go back to the memory kind they were given in.
#pragma once

#include <string>

#include "crembo/core.hpp"

namespace crembo {
namespace cuda {

// True when the CUDA runtime reports at least one usable device. Never throws.
bool available();
// Name of the current device, or an empty string.
std::string device_name();

template <class T>
void beliefs_from_votes(const label_t* votes, index_t m, index_t n, index_t C, T* out);

template <class T>
void point_depth(const T* P, index_t n, index_t C, const label_t* pred, T* out);

template <class T>
T empirical_depth(const T* P, index_t n, index_t C, const label_t* pred, double delta);

template <class T>
void allowed_labels(const T* P, index_t n, index_t C, T t, std::uint8_t* mask);

template <class T>
index_t count_violations(const T* P, index_t n, index_t C, const label_t* pred, T t);

template <class T>
T max_achievable_depth(const T* P, index_t n, index_t C);

}  // namespace cuda
}  // namespace crembo
