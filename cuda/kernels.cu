// CUDA implementations of the core's data-parallel kernels (see
// crembo/cuda.hpp). Each function validates its arguments exactly like the
// CPU version in cpp/src/kernels.cpp, accepts host or device pointers, and
// returns the same values bit for bit (the arithmetic is the same IEEE
// operations; only the order of min/max reductions differs, which cannot
// change their result except for the sign of a zero).
//
// Errors: bad arguments -> std::invalid_argument naming the argument (same
// messages as the CPU code); any CUDA runtime error -> std::runtime_error
// carrying cudaGetErrorString. Nothing here aborts.
#include "crembo/cuda.hpp"
#include "crembo/cuda_regression.hpp"
#include "crembo/detail/checks.hpp"
#include "crembo/regression.hpp"

#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace crembo {
namespace cuda {

namespace {

using ull = unsigned long long;

constexpr int kThreads = 256;  // block size of the 1-D kernels
constexpr ull kNoBad = ~0ull;  // "no bad label seen" in the device flag

// ------------------------------------------------------------ error plumbing
void check(cudaError_t err, const char* what) {
    if (err == cudaSuccess) return;
    // Clear a non-sticky error so later calls start clean (a sticky one, such
    // as an illegal address, stays: the context is unusable anyway).
    cudaGetLastError();
    std::string msg = "crembo.cuda: ";
    msg += what;
    msg += ": ";
    msg += cudaGetErrorString(err);
    throw std::runtime_error(msg);
}

void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

using crembo::detail::bad_label;
using crembo::detail::check_shape;
using crembo::detail::insensitive_rank;
using crembo::detail::require;

void require_ptr(const void* p, const char* what) {
    if (p == nullptr) throw std::invalid_argument(what);
}

// --------------------------------------------------------------- memory kinds
// Where a pointer lives, as far as a kernel on the current device cares.
struct PtrInfo {
    bool device = false;  // directly usable by kernels (device or managed memory)
    int ordinal = -1;     // owning device of plain device memory, else -1
};

PtrInfo query(const void* p) {
    PtrInfo info;
    cudaPointerAttributes attr;
    const cudaError_t err = cudaPointerGetAttributes(&attr, p);
    if (err != cudaSuccess) {
        // Older runtimes report pageable host memory as cudaErrorInvalidValue;
        // without a driver/device every query fails. Either way: host memory
        // (and a later allocation reports the real problem, if any).
        cudaGetLastError();
        return info;
    }
    if (attr.type == cudaMemoryTypeDevice) {
        info.device = true;
        info.ordinal = attr.device;
    } else if (attr.type == cudaMemoryTypeManaged) {
        info.device = true;
    }
    // cudaMemoryTypeHost (pinned) and cudaMemoryTypeUnregistered (pageable)
    // are copied: reading host memory over the bus inside a kernel is slow.
    return info;
}

// Makes the device that owns the arguments' device memory current for the
// call (restoring the caller's device afterwards). Device arguments on two
// different devices are rejected.
class DeviceScope {
public:
    explicit DeviceScope(std::initializer_list<PtrInfo> infos) {
        int want = -1;
        for (const PtrInfo& i : infos) {
            if (i.ordinal < 0) continue;
            if (want >= 0 && want != i.ordinal) {
                std::ostringstream msg;
                msg << "arguments live on different CUDA devices (" << want << " and " << i.ordinal << ")";
                throw std::invalid_argument(msg.str());
            }
            want = i.ordinal;
        }
        check(cudaGetDevice(&prev_), "cudaGetDevice");
        if (want >= 0 && want != prev_) {
            check(cudaSetDevice(want), "cudaSetDevice");
            switched_ = true;
        }
    }
    ~DeviceScope() {
        if (switched_) cudaSetDevice(prev_);
    }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

private:
    int prev_ = 0;
    bool switched_ = false;
};

// Owning device allocation; freed on scope exit, also when an exception
// unwinds the call.
template <class U>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t count) { allocate(count); }
    ~DeviceBuffer() {
        if (ptr_) cudaFree(ptr_);  // never throw from a destructor
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    void allocate(size_t count) {
        void* p = nullptr;
        check(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(U)), "cudaMalloc");
        if (ptr_) cudaFree(ptr_);
        ptr_ = static_cast<U*>(p);
    }
    U* get() const { return ptr_; }

private:
    U* ptr_ = nullptr;
};

// An input array as a device pointer: the caller's pointer when kernels can
// read it, otherwise a device copy.
template <class U>
class Input {
public:
    Input(const U* p, size_t count, const PtrInfo& info) : on_device_(info.device) {
        if (on_device_) {
            ptr_ = p;
        } else {
            copy_.allocate(count);
            check(cudaMemcpy(copy_.get(), p, count * sizeof(U), cudaMemcpyHostToDevice),
                  "cudaMemcpy (input to device)");
            ptr_ = copy_.get();
        }
    }
    const U* get() const { return ptr_; }
    bool on_device() const { return on_device_; }

private:
    bool on_device_;
    const U* ptr_ = nullptr;
    DeviceBuffer<U> copy_;
};

// An output array: kernels write the caller's memory directly when they can,
// otherwise a device buffer that finish() copies back to the host.
template <class U>
class Output {
public:
    Output(U* p, size_t count, const PtrInfo& info) : user_(p), count_(count), on_device_(info.device) {
        if (on_device_) {
            ptr_ = p;
        } else {
            tmp_.allocate(count);
            ptr_ = tmp_.get();
        }
    }
    U* get() const { return ptr_; }
    void finish() {
        if (on_device_) {
            // Kernels are asynchronous: wait for the (legacy) default stream,
            // so that errors surface here and the caller may read managed
            // memory right away.
            check(cudaStreamSynchronize(0), "kernel execution");
        } else {
            check(cudaMemcpy(user_, ptr_, count_ * sizeof(U), cudaMemcpyDeviceToHost),
                  "cudaMemcpy (output to host)");
        }
    }

private:
    U* user_;
    size_t count_;
    bool on_device_;
    U* ptr_ = nullptr;
    DeviceBuffer<U> tmp_;
};

// Per-call device scratch: the first bad label index (atomicMin) and one
// 64-bit accumulator (a count, or the ordered key of a minimum).
struct Scratch {
    ull bad;
    ull value;
};

class ScratchBuffer {
public:
    explicit ScratchBuffer(ull init_value) : buf_(1) {
        const Scratch init{kNoBad, init_value};
        check(cudaMemcpy(buf_.get(), &init, sizeof(Scratch), cudaMemcpyHostToDevice),
              "cudaMemcpy (scratch init)");
    }
    Scratch* get() const { return buf_.get(); }
    // Waits for the kernels queued before it and returns the scratch.
    Scratch read() const {
        Scratch s;
        check(cudaMemcpy(&s, buf_.get(), sizeof(Scratch), cudaMemcpyDeviceToHost),
              "cudaMemcpy (scratch read)");
        return s;
    }

private:
    DeviceBuffer<Scratch> buf_;
};

// Value of one label entry, wherever the array lives (for error messages).
label_t label_at(const label_t* p, bool on_device, ull k) {
    if (!on_device) return p[k];
    label_t v = 0;
    check(cudaMemcpy(&v, p + k, sizeof(label_t), cudaMemcpyDeviceToHost), "cudaMemcpy (label read)");
    return v;
}

// Grid size for a grid-stride loop over `work` items: enough blocks to fill
// the device, no more (the loop covers the rest).
unsigned grid_for(index_t work, int threads = kThreads) {
    int dev = 0, sms = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    const index_t cap = index_t(std::max(sms, 1)) * (2048 / threads);
    const index_t need = (work + threads - 1) / threads;
    return static_cast<unsigned>(std::max<index_t>(1, std::min(need, cap)));
}

// ------------------------------------------------ ordered keys for atomicMin
// Maps a float/double to an unsigned integer with the same order (for
// non-NaN values), so a minimum can be taken with one integer atomicMin.
// Negative numbers have all bits flipped, positive ones only the sign bit.
__host__ __device__ inline ull order_key(float x) {
    std::uint32_t u;
#ifdef __CUDA_ARCH__
    u = __float_as_uint(x);
#else
    std::memcpy(&u, &x, sizeof u);
#endif
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ull(u);
}

__host__ __device__ inline ull order_key(double x) {
    ull u;
#ifdef __CUDA_ARCH__
    u = static_cast<ull>(__double_as_longlong(x));
#else
    std::memcpy(&u, &x, sizeof u);
#endif
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

template <class T>
T from_order_key(ull k);

template <>
float from_order_key<float>(ull k) {
    std::uint32_t u = static_cast<std::uint32_t>(k);
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

template <>
double from_order_key<double>(ull k) {
    const ull u = (k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k;
    double x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// ---------------------------------------------------------- block reductions
// Warp then block reduction with shuffles; the result is valid in thread 0.
// `op` must be associative and commutative on the values involved, and
// `identity` neutral for it. blockDim.x must be a multiple of 32, at most
// kThreads; call once per kernel (the shared slots are not re-synchronised).
template <class V, class Op>
__device__ V block_reduce(V v, Op op, V identity) {
    __shared__ V partial[kThreads / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, off));
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int nwarps = blockDim.x >> 5;
        v = lane < nwarps ? partial[lane] : identity;
        for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, off));
    }
    return v;
}

struct SumOp {
    __device__ ull operator()(ull a, ull b) const { return a + b; }
};
struct MinOp {
    // Same comparison as std::min; NaNs never reach it (callers skip them).
    template <class T>
    __device__ T operator()(T a, T b) const {
        return b < a ? b : a;
    }
};

// ------------------------------------------------------------------ kernels
__device__ inline bool label_ok(label_t y, index_t C) { return y >= 0 && y < C; }

__global__ void check_labels_kernel(const label_t* __restrict__ labels, index_t n, index_t C, Scratch* s) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x)
        if (!label_ok(labels[i], C)) atomicMin(&s->bad, ull(i));
}

// Beliefs, small C: a block owns a tile of blockDim.x points and keeps their
// counts in shared memory, laid out class-major with a padded stride
// (counts[y * (blockDim.x + 1) + point]). While counting, each thread touches
// only its own column (no atomics), and when all threads vote the same class
// the accesses hit distinct banks; the padding keeps the transposed,
// coalesced write of the tile to `out` (row-major n x C) mostly conflict-free.
template <class T>
__global__ void votes_shared_kernel(const label_t* __restrict__ votes, index_t m, index_t n, int C, T scale,
                                    T* __restrict__ out, Scratch* s) {
    extern __shared__ unsigned int counts[];
    const int bs = blockDim.x, stride = bs + 1, tid = threadIdx.x;
    for (index_t tile = blockIdx.x * index_t(bs); tile < n; tile += index_t(bs) * gridDim.x) {
        for (int k = tid; k < C * stride; k += bs) counts[k] = 0;
        __syncthreads();
        const index_t i = tile + tid;
        if (i < n) {
            // Row j of votes is contiguous: the warp's reads of votes[j, i..i+31]
            // are coalesced.
            const label_t* v = votes + i;
#pragma unroll 4
            for (index_t j = 0; j < m; ++j, v += n) {
                const label_t y = *v;
                if (!label_ok(y, C)) {
                    // Later votes of this point cannot be an earlier entry.
                    atomicMin(&s->bad, ull(j * n + i));
                    break;
                }
                ++counts[y * stride + tid];
            }
        }
        __syncthreads();
        const int pts = int(min(index_t(bs), n - tile));
        T* dst = out + tile * C;
        for (int k = tid; k < pts * C; k += bs) {
            const int p = k / C, y = k - p * C;
            dst[k] = T(counts[y * stride + p]) * scale;  // same float ops as the CPU
        }
        __syncthreads();
    }
}

// Beliefs, large C: one thread per point counts straight into its own row of
// the output buffer, reinterpreted as integers of the same width (zeroed
// beforehand); vote_counts_to_beliefs then converts in place.
template <class Count>
__global__ void votes_global_kernel(const label_t* __restrict__ votes, index_t m, index_t n, index_t C,
                                    Count* counts, Scratch* s) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        Count* row = counts + i * C;
        const label_t* v = votes + i;
        for (index_t j = 0; j < m; ++j, v += n) {
            const label_t y = *v;
            if (!label_ok(y, C)) {
                atomicMin(&s->bad, ull(j * n + i));
                break;
            }
            ++row[y];
        }
    }
}

template <class T, class Count>
__global__ void vote_counts_to_beliefs(T* out, index_t total, T scale) {
    const Count* counts = reinterpret_cast<const Count*>(out);
    for (index_t k = blockIdx.x * index_t(blockDim.x) + threadIdx.x; k < total;
         k += index_t(blockDim.x) * gridDim.x) {
        const Count c = counts[k];  // read before the same slot is overwritten
        out[k] = T(c) * scale;
    }
}

template <class T>
__global__ void gather_kernel(const T* __restrict__ P, index_t n, index_t C, const label_t* __restrict__ pred,
                              T* __restrict__ out) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x)
        out[i] = P[i * C + pred[i]];
}

// Point depths with label validation (bad entries are flagged, not written).
template <class T>
__global__ void depth_kernel(const T* __restrict__ P, index_t n, index_t C, const label_t* __restrict__ pred,
                             T* __restrict__ out, Scratch* s) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        const label_t y = pred[i];
        if (label_ok(y, C))
            out[i] = P[i * C + y];
        else
            atomicMin(&s->bad, ull(i));
    }
}

// min_i P[i, pred[i]] without storing the depths. Like the CPU's
// std::min(lo, d) starting from +inf, NaN depths never become the minimum.
template <class T>
__global__ void min_depth_kernel(const T* __restrict__ P, index_t n, index_t C,
                                 const label_t* __restrict__ pred, Scratch* s) {
    T lo = T(INFINITY);
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        const label_t y = pred[i];
        if (!label_ok(y, C)) {
            atomicMin(&s->bad, ull(i));
            continue;
        }
        const T d = P[i * C + y];
        if (d < lo) lo = d;
    }
    lo = block_reduce(lo, MinOp{}, T(INFINITY));
    if (threadIdx.x == 0) atomicMin(&s->value, order_key(lo));
}

template <class T>
__global__ void count_violations_kernel(const T* __restrict__ P, index_t n, index_t C,
                                        const label_t* __restrict__ pred, T t, Scratch* s) {
    ull count = 0;
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        const label_t y = pred[i];
        if (!label_ok(y, C)) {
            atomicMin(&s->bad, ull(i));
            continue;
        }
        count += P[i * C + y] < t ? 1 : 0;
    }
    count = block_reduce(count, SumOp{}, ull(0));
    if (threadIdx.x == 0 && count > 0) atomicAdd(&s->value, count);
}

template <class T>
__global__ void allowed_labels_kernel(const T* __restrict__ P, index_t total, T t,
                                      std::uint8_t* __restrict__ mask) {
    for (index_t k = blockIdx.x * index_t(blockDim.x) + threadIdx.x; k < total;
         k += index_t(blockDim.x) * gridDim.x)
        mask[k] = P[k] >= t ? 1 : 0;
}

// min_i max_y P[i, y]. A group of G lanes (G a power of two <= 32) shares a
// row, so a warp reads 32/G consecutive rows as one contiguous stretch; the
// group's maximum is combined with xor shuffles. To match the CPU loop
// (best = row[0]; best = std::max(best, row[y])), NaN entries are skipped,
// except a NaN in column 0, which makes the row's maximum NaN, and a NaN row
// maximum is skipped by the minimum like std::min(lo, NaN) does.
template <class T>
__global__ void max_depth_kernel(const T* __restrict__ P, index_t n, index_t C, int G, Scratch* s) {
    const int lane = threadIdx.x & 31;
    const int sub = lane & (G - 1);  // position inside the group
    const int rows_per_warp = 32 / G;
    const index_t warp = (blockIdx.x * index_t(blockDim.x) + threadIdx.x) >> 5;
    const index_t n_warps = (index_t(gridDim.x) * blockDim.x) >> 5;
    T lo = T(INFINITY);
    // The trip count is uniform across the warp, as the shuffles require.
    for (index_t base = warp * rows_per_warp; base < n; base += n_warps * rows_per_warp) {
        const index_t row = base + lane / G;
        const bool valid = row < n;
        T best = T(-INFINITY);
        if (valid) {
            const T* r = P + row * C;
            for (index_t y = sub; y < C; y += G) {
                const T v = r[y];
                if (best < v) best = v;  // false for NaN v
            }
        }
        for (int off = G >> 1; off > 0; off >>= 1) {
            const T o = __shfl_xor_sync(0xffffffffu, best, off);
            if (best < o) best = o;
        }
        if (valid && sub == 0 && !isnan(P[row * C]) && best < lo) lo = best;
    }
    lo = block_reduce(lo, MinOp{}, T(INFINITY));
    if (threadIdx.x == 0) atomicMin(&s->value, order_key(lo));
}

// Throws the CPU's error for a bad label found on the device.
void throw_if_bad(const Scratch& s, const char* arg, const Input<label_t>& labels, const label_t* user,
                  index_t C) {
    if (s.bad == kNoBad) return;
    bad_label(arg, s.bad, label_at(labels.on_device() ? labels.get() : user, labels.on_device(), s.bad), C);
}

}  // namespace

// ------------------------------------------------------------------ device info
bool available() {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cudaGetLastError();  // no driver / no device: not an error for the caller
        return false;
    }
    return count > 0;
}

std::string device_name() {
    if (!available()) return std::string();
    int dev = 0;
    cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        cudaGetLastError();
        return std::string();
    }
    return std::string(prop.name);
}

// ------------------------------------------------------------------ beliefs
template <class T>
void beliefs_from_votes(const label_t* votes, index_t m, index_t n, index_t C, T* out) {
    require(m >= 1, "votes: expected at least one hypothesis (m >= 1)");
    check_shape(n, C);
    require_ptr(votes, "votes: null pointer");
    require_ptr(out, "out: null pointer");
    const PtrInfo vi = query(votes), oi = query(out);
    DeviceScope scope{vi, oi};

    Input<label_t> d_votes(votes, size_t(m * n), vi);
    Output<T> d_out(out, size_t(n * C), oi);
    ScratchBuffer scratch(0);
    const T scale = T(1) / T(m);

    // Largest block whose padded count tile fits the default 48 KiB of
    // shared memory; past C ~ 370 classes, count in global memory instead.
    int bs = 0;
    for (int cand : {256, 128, 64, 32}) {
        if (C * (cand + 1) * index_t(sizeof(unsigned int)) <= 48 * 1024) {
            bs = cand;
            break;
        }
    }
    if (bs > 0) {
        const size_t shmem = size_t(C) * size_t(bs + 1) * sizeof(unsigned int);
        votes_shared_kernel<T>
            <<<grid_for(n, bs), bs, shmem>>>(d_votes.get(), m, n, int(C), scale, d_out.get(), scratch.get());
        check_launch("votes_shared_kernel");
    } else {
        // Counts need the full range of an int32 (like the CPU); an integer of
        // T's width has it and lets the conversion run in place.
        using Count = std::conditional_t<sizeof(T) == 4, unsigned int, ull>;
        static_assert(sizeof(Count) == sizeof(T), "count slots must alias T slots");
        check(cudaMemset(d_out.get(), 0, size_t(n * C) * sizeof(T)), "cudaMemset");
        votes_global_kernel<Count><<<grid_for(n), kThreads>>>(
            d_votes.get(), m, n, C, reinterpret_cast<Count*>(d_out.get()), scratch.get());
        check_launch("votes_global_kernel");
        vote_counts_to_beliefs<T, Count><<<grid_for(n * C), kThreads>>>(d_out.get(), n * C, scale);
        check_launch("vote_counts_to_beliefs");
    }

    const Scratch s = scratch.read();
    if (s.bad != kNoBad) {
        const label_t y = label_at(d_votes.on_device() ? d_votes.get() : votes, d_votes.on_device(), s.bad);
        std::ostringstream msg;
        msg << "votes[" << s.bad / ull(n) << ", " << s.bad % ull(n) << "] = " << y
            << " is outside the label range [0, " << C << ")";
        throw std::invalid_argument(msg.str());
    }
    d_out.finish();
}

// -------------------------------------------------------------------- depth
template <class T>
void point_depth(const T* P, index_t n, index_t C, const label_t* pred, T* out) {
    check_shape(n, C);
    require_ptr(P, "P: null pointer");
    require_ptr(pred, "pred: null pointer");
    require_ptr(out, "out: null pointer");
    const PtrInfo pi = query(P), li = query(pred), oi = query(out);
    DeviceScope scope{pi, li, oi};

    // Labels first, as on the CPU: on a bad label `out` stays untouched.
    Input<label_t> d_pred(pred, size_t(n), li);
    {
        ScratchBuffer scratch(0);
        check_labels_kernel<<<grid_for(n), kThreads>>>(d_pred.get(), n, C, scratch.get());
        check_launch("check_labels_kernel");
        throw_if_bad(scratch.read(), "pred", d_pred, pred, C);
    }
    Input<T> d_P(P, size_t(n * C), pi);
    Output<T> d_out(out, size_t(n), oi);
    gather_kernel<T><<<grid_for(n), kThreads>>>(d_P.get(), n, C, d_pred.get(), d_out.get());
    check_launch("gather_kernel");
    d_out.finish();
}

template <class T>
T empirical_depth(const T* P, index_t n, index_t C, const label_t* pred, double delta) {
    check_shape(n, C);
    const index_t k = insensitive_rank(n, delta);
    require_ptr(P, "P: null pointer");
    require_ptr(pred, "pred: null pointer");
    const PtrInfo pi = query(P), li = query(pred);
    DeviceScope scope{pi, li};

    Input<label_t> d_pred(pred, size_t(n), li);
    Input<T> d_P(P, size_t(n * C), pi);

    if (k == 0) {
        ScratchBuffer scratch(order_key(std::numeric_limits<T>::infinity()));
        min_depth_kernel<T><<<grid_for(n), kThreads>>>(d_P.get(), n, C, d_pred.get(), scratch.get());
        check_launch("min_depth_kernel");
        const Scratch s = scratch.read();
        throw_if_bad(s, "pred", d_pred, pred, C);
        return from_order_key<T>(s.value);
    }

    // k-th smallest: depths on the device, radix-sorted, one element read back.
    DeviceBuffer<T> depth{size_t(n)}, sorted{size_t(n)};
    {
        ScratchBuffer scratch(0);
        depth_kernel<T><<<grid_for(n), kThreads>>>(d_P.get(), n, C, d_pred.get(), depth.get(), scratch.get());
        check_launch("depth_kernel");
        throw_if_bad(scratch.read(), "pred", d_pred, pred, C);
    }
    size_t temp_bytes = 0;
    check(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, depth.get(), sorted.get(), n),
          "cub::DeviceRadixSort::SortKeys (size query)");
    DeviceBuffer<unsigned char> temp(temp_bytes);
    check(cub::DeviceRadixSort::SortKeys(temp.get(), temp_bytes, depth.get(), sorted.get(), n),
          "cub::DeviceRadixSort::SortKeys");
    T value;
    check(cudaMemcpy(&value, sorted.get() + k, sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy (k-th depth)");
    return value;
}

template <class T>
T max_achievable_depth(const T* P, index_t n, index_t C) {
    check_shape(n, C);
    require_ptr(P, "P: null pointer");
    const PtrInfo pi = query(P);
    DeviceScope scope{pi};
    Input<T> d_P(P, size_t(n * C), pi);

    int G = 1;  // smallest power of two >= C, at most a warp
    while (G < 32 && G < C) G <<= 1;
    ScratchBuffer scratch(order_key(std::numeric_limits<T>::infinity()));
    const index_t threads_needed = (n + (32 / G) - 1) / (32 / G) * 32;
    max_depth_kernel<T><<<grid_for(threads_needed), kThreads>>>(d_P.get(), n, C, G, scratch.get());
    check_launch("max_depth_kernel");
    return from_order_key<T>(scratch.read().value);
}

// ------------------------------------------------- allowed labels, consistency
template <class T>
void allowed_labels(const T* P, index_t n, index_t C, T t, std::uint8_t* mask) {
    check_shape(n, C);
    require_ptr(P, "P: null pointer");
    require_ptr(mask, "mask: null pointer");
    const PtrInfo pi = query(P), mi = query(mask);
    DeviceScope scope{pi, mi};
    Input<T> d_P(P, size_t(n * C), pi);
    Output<std::uint8_t> d_mask(mask, size_t(n * C), mi);
    allowed_labels_kernel<T><<<grid_for(n * C), kThreads>>>(d_P.get(), n * C, t, d_mask.get());
    check_launch("allowed_labels_kernel");
    d_mask.finish();
}

template <class T>
index_t count_violations(const T* P, index_t n, index_t C, const label_t* pred, T t) {
    check_shape(n, C);
    require_ptr(P, "P: null pointer");
    require_ptr(pred, "pred: null pointer");
    const PtrInfo pi = query(P), li = query(pred);
    DeviceScope scope{pi, li};
    Input<label_t> d_pred(pred, size_t(n), li);
    Input<T> d_P(P, size_t(n * C), pi);
    ScratchBuffer scratch(0);
    count_violations_kernel<T><<<grid_for(n), kThreads>>>(d_P.get(), n, C, d_pred.get(), t, scratch.get());
    check_launch("count_violations_kernel");
    const Scratch s = scratch.read();
    throw_if_bad(s, "pred", d_pred, pred, C);
    return static_cast<index_t>(s.value);
}

// ------------------------------------------------------ explicit instances
#define CREMBO_CUDA_INSTANTIATE(T)                                                       \
    template void beliefs_from_votes<T>(const label_t*, index_t, index_t, index_t, T*);  \
    template void point_depth<T>(const T*, index_t, index_t, const label_t*, T*);        \
    template T empirical_depth<T>(const T*, index_t, index_t, const label_t*, double);   \
    template void allowed_labels<T>(const T*, index_t, index_t, T, std::uint8_t*);       \
    template index_t count_violations<T>(const T*, index_t, index_t, const label_t*, T); \
    template T max_achievable_depth<T>(const T*, index_t, index_t);

CREMBO_CUDA_INSTANTIATE(float)
CREMBO_CUDA_INSTANTIATE(double)
#undef CREMBO_CUDA_INSTANTIATE

// =====================================================================
// Regression: deep hypotheses on real-valued predictions
// (crembo/cuda_regression.hpp; the CPU versions are cpp/src/regression.cpp,
// the definitions docs/regression.md). One thread per row; the argument
// checks run on the device and report the CPU's messages.
// =====================================================================
namespace {

// First non-finite entry of a flat array (atomicMin of its index into s->bad).
template <class T>
__global__ void reg_finite_kernel(const T* __restrict__ a, index_t count, Scratch* s) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < count;
         i += index_t(blockDim.x) * gridDim.x)
        if (!isfinite(a[i])) atomicMin(&s->bad, ull(i));
}

// First row of S that is not sorted ascending.
template <class T>
__global__ void reg_sorted_kernel(const T* __restrict__ S, index_t n, index_t m, Scratch* s) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        const T* row = S + i * m;
        for (index_t j = 1; j < m; ++j)
            if (row[j] < row[j - 1]) {
                atomicMin(&s->bad, ull(i));
                break;
            }
    }
}

template <class T>
__device__ double reg_row_eps(const T* row, index_t m, double tol) {
    if (tol == 0.0) return 0.0;
    double big = 1.0;
    for (index_t j = 0; j < m; ++j) big = fmax(big, fabs(double(row[j])));
    return tol * big;
}

template <class T>
__global__ void reg_depth_kernel(const T* __restrict__ H, index_t n, index_t m, const T* __restrict__ pred,
                                 double tol, double* __restrict__ out) {
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        const T* row = H + i * m;
        const double eps = reg_row_eps(row, m, tol), v = double(pred[i]);
        index_t below = 0, above = 0;
        for (index_t j = 0; j < m; ++j) {
            const double h = double(row[j]);
            below += h <= v + eps;
            above += h >= v - eps;
        }
        out[i] = double(below < above ? below : above) / double(m);
    }
}

template <class T>
__global__ void reg_violations_kernel(const T* __restrict__ S, index_t n, index_t m,
                                      const T* __restrict__ pred, index_t k, double tol, Scratch* s) {
    ull count = 0;
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n;
         i += index_t(blockDim.x) * gridDim.x) {
        const T* row = S + i * m;
        const double eps =
            tol == 0.0 ? 0.0 : tol * fmax(1.0, fmax(fabs(double(row[0])), fabs(double(row[m - 1]))));
        const double v = double(pred[i]);
        const bool inside = double(row[k - 1]) <= v + eps && double(row[m - k]) >= v - eps;
        count += inside ? 0 : 1;
    }
    count = block_reduce(count, SumOp{}, ull(0));
    if (threadIdx.x == 0 && count > 0) atomicAdd(&s->value, count);
}

template <class T>
T reg_value_at(const T* p, bool on_device, ull k) {
    if (!on_device) return p[k];
    T v{};
    check(cudaMemcpy(&v, p + k, sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy (value read)");
    return v;
}

// The CPU's checks: finite hypotheses (and sorted rows when asked), finite predictions.
template <class T>
void reg_check(const Input<T>& H, const T* H_user, index_t n, index_t m, bool sorted, const Input<T>& pred,
               const T* pred_user) {
    {
        ScratchBuffer scratch(0);
        reg_finite_kernel<T><<<grid_for(n * m), kThreads>>>(H.get(), n * m, scratch.get());
        check_launch("reg_finite_kernel");
        const Scratch s = scratch.read();
        if (s.bad != kNoBad) {
            std::ostringstream msg;
            msg << "hypotheses[" << s.bad / ull(m) << ", " << s.bad % ull(m)
                << "] = " << reg_value_at(H.on_device() ? H.get() : H_user, H.on_device(), s.bad)
                << " is not finite";
            throw std::invalid_argument(msg.str());
        }
    }
    if (sorted) {
        ScratchBuffer scratch(0);
        reg_sorted_kernel<T><<<grid_for(n), kThreads>>>(H.get(), n, m, scratch.get());
        check_launch("reg_sorted_kernel");
        const Scratch s = scratch.read();
        if (s.bad != kNoBad) {
            std::ostringstream msg;
            msg << "sorted hypotheses: row " << s.bad
                << " is not sorted ascending (sort it with sort_hypotheses)";
            throw std::invalid_argument(msg.str());
        }
    }
    ScratchBuffer scratch(0);
    reg_finite_kernel<T><<<grid_for(n), kThreads>>>(pred.get(), n, scratch.get());
    check_launch("reg_finite_kernel");
    const Scratch s = scratch.read();
    if (s.bad != kNoBad) {
        std::ostringstream msg;
        msg << "pred[" << s.bad
            << "] = " << reg_value_at(pred.on_device() ? pred.get() : pred_user, pred.on_device(), s.bad)
            << " is not finite";
        throw std::invalid_argument(msg.str());
    }
}

void reg_check_shape(index_t n, index_t m, double tol) {
    require(n >= 1, "hypotheses: expected at least one point (n >= 1)");
    require(m >= 1, "hypotheses: expected at least one hypothesis (m >= 1)");
    require(tol >= 0.0 && std::isfinite(tol), "tol: expected a finite, non-negative tolerance");
}

}  // namespace

template <class T>
void hypothesis_point_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double* out) {
    reg_check_shape(n, m, tol);
    require_ptr(H, "hypotheses: null pointer");
    require_ptr(pred, "pred: null pointer");
    require_ptr(out, "out: null pointer");
    const PtrInfo hi = query(H), pi = query(pred), oi = query(out);
    DeviceScope scope{hi, pi, oi};
    Input<T> d_H(H, size_t(n * m), hi);
    Input<T> d_pred(pred, size_t(n), pi);
    reg_check(d_H, H, n, m, false, d_pred, pred);
    Output<double> d_out(out, size_t(n), oi);
    reg_depth_kernel<T><<<grid_for(n), kThreads>>>(d_H.get(), n, m, d_pred.get(), tol, d_out.get());
    check_launch("reg_depth_kernel");
    d_out.finish();
}

template <class T>
double hypothesis_empirical_depth(const T* H, index_t n, index_t m, const T* pred, double tol, double delta) {
    reg_check_shape(n, m, tol);
    const index_t k = insensitive_rank(n, delta);
    require_ptr(H, "hypotheses: null pointer");
    require_ptr(pred, "pred: null pointer");
    const PtrInfo hi = query(H), pi = query(pred);
    DeviceScope scope{hi, pi};
    Input<T> d_H(H, size_t(n * m), hi);
    Input<T> d_pred(pred, size_t(n), pi);
    reg_check(d_H, H, n, m, false, d_pred, pred);
    DeviceBuffer<double> depth{size_t(n)}, sorted{size_t(n)};
    reg_depth_kernel<T><<<grid_for(n), kThreads>>>(d_H.get(), n, m, d_pred.get(), tol, depth.get());
    check_launch("reg_depth_kernel");
    size_t temp_bytes = 0;
    check(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, depth.get(), sorted.get(), n),
          "cub::DeviceRadixSort::SortKeys (size query)");
    DeviceBuffer<unsigned char> temp(temp_bytes);
    check(cub::DeviceRadixSort::SortKeys(temp.get(), temp_bytes, depth.get(), sorted.get(), n),
          "cub::DeviceRadixSort::SortKeys");
    double value;
    check(cudaMemcpy(&value, sorted.get() + k, sizeof(double), cudaMemcpyDeviceToHost),
          "cudaMemcpy (k-th depth)");
    return value;
}

template <class T>
index_t hypothesis_violations(const T* S, index_t n, index_t m, const T* pred, double t, double tol) {
    reg_check_shape(n, m, tol);
    require_ptr(S, "sorted hypotheses: null pointer");
    require_ptr(pred, "pred: null pointer");
    const PtrInfo si = query(S), pi = query(pred);
    DeviceScope scope{si, pi};
    Input<T> d_S(S, size_t(n * m), si);
    Input<T> d_pred(pred, size_t(n), pi);
    reg_check(d_S, S, n, m, true, d_pred, pred);
    const index_t k = interval_rank(m, t);  // the CPU's rank (and its check of t)
    ScratchBuffer scratch(0);
    reg_violations_kernel<T><<<grid_for(n), kThreads>>>(d_S.get(), n, m, d_pred.get(), k, tol, scratch.get());
    check_launch("reg_violations_kernel");
    return static_cast<index_t>(scratch.read().value);
}

#define CREMBO_CUDA_REG_INSTANTIATE(T)                                                                   \
    template void hypothesis_point_depth<T>(const T*, index_t, index_t, const T*, double, double*);      \
    template double hypothesis_empirical_depth<T>(const T*, index_t, index_t, const T*, double, double); \
    template index_t hypothesis_violations<T>(const T*, index_t, index_t, const T*, double, double);

CREMBO_CUDA_REG_INSTANTIATE(float)
CREMBO_CUDA_REG_INSTANTIATE(double)
#undef CREMBO_CUDA_REG_INSTANTIATE

}  // namespace cuda
}  // namespace crembo
