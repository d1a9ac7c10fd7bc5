// Throughput of the CUDA kernels on device-resident data, against the
// device's own copy bandwidth. Every input and output lives in device memory
// (cudaMalloc), so no host transfer is timed: this is what the kernels reach
// when a caller keeps its data on the GPU.
//
// Bytes touched per kernel: the definition of bench/bench_core.cpp and
// bench/bench_kernels.py (inputs read + outputs written, the belief matrix
// counted in full). The copy reference is cudaMemcpy device-to-device of
// bytes/2 (bytes/2 read + bytes/2 written), timed in the same run.
//
// Build and run (CMake target, built on request when CUDA is found;
// bench/gpu_check.sh does both):
//   cmake -S . -B build/cuda -DCREMBO_CUDA=ON
//   cmake --build build/cuda --target crembo_cuda_bench
//   ./build/cuda/crembo_cuda_bench --entries 1e8      # n x C = 1e8 belief entries
//
// Prints one line per kernel and dtype. Without a CUDA device it prints
// "no CUDA device" and exits 2.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "crembo/core.hpp"
#include "crembo/cuda.hpp"

using crembo::index_t;
using crembo::label_t;
namespace gpu = crembo::cuda;

namespace {

void cuda_ok(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

template <class U>
struct DeviceArray {
    U* ptr = nullptr;
    explicit DeviceArray(size_t n) {
        cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr), std::max<size_t>(n, 1) * sizeof(U)), "cudaMalloc");
    }
    ~DeviceArray() { cudaFree(ptr); }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
};

// Median seconds per call of f over `repeats` runs after one warm-up call;
// the device is synchronised around each run.
double time_median(const std::function<void()>& f, int repeats) {
    f();
    cuda_ok(cudaDeviceSynchronize(), "warm-up");
    std::vector<double> t;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        cuda_ok(cudaDeviceSynchronize(), "run");
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

struct Args {
    double entries = 1e8;  // n * C
    index_t C = 10;
    index_t m = 100;
    int repeats = 9;
    std::string dtype = "both";
};

// Votes like bench_core.cpp's: each member picks the point's true class with
// probability ~0.6, else a random class (a fast xorshift, generated on the host).
std::vector<label_t> make_votes(index_t m, index_t n, index_t C) {
    std::vector<label_t> votes(static_cast<size_t>(m * n));
    std::vector<label_t> truth(static_cast<size_t>(n));
    std::uint64_t s = 0x9E3779B97F4A7C15ull;
    auto next = [&s]() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    };
    for (index_t i = 0; i < n; ++i) truth[size_t(i)] = label_t(next() % std::uint64_t(C));
    for (index_t j = 0; j < m; ++j)
        for (index_t i = 0; i < n; ++i) {
            const std::uint64_t r = next();
            votes[size_t(j * n + i)] =
                (r & 255) < 154 ? truth[size_t(i)] : label_t((r >> 8) % std::uint64_t(C));
        }
    return votes;
}

template <class T>
int run(const Args& a, const std::vector<label_t>& votes_h, index_t n) {
    const index_t C = a.C, m = a.m;
    const double s = sizeof(T);
    const char* dt = sizeof(T) == 4 ? "float32" : "float64";
    DeviceArray<label_t> votes{static_cast<size_t>(m * n)}, pred{static_cast<size_t>(n)};
    DeviceArray<T> P{static_cast<size_t>(n * C)}, depth{static_cast<size_t>(n)};
    DeviceArray<std::uint8_t> mask{static_cast<size_t>(n * C)};
    cuda_ok(cudaMemcpy(votes.ptr, votes_h.data(), size_t(m * n) * sizeof(label_t), cudaMemcpyHostToDevice),
            "votes");
    // pred: member 0's votes.
    cuda_ok(cudaMemcpy(pred.ptr, votes_h.data(), size_t(n) * sizeof(label_t), cudaMemcpyHostToDevice),
            "pred");
    gpu::beliefs_from_votes<T>(votes.ptr, m, n, C, P.ptr);
    const T t = T(0.3);

    struct Kernel {
        const char* name;
        double bytes;
        std::function<void()> f;
    };
    const double nd = double(n), Cd = double(C), md = double(m);
    const std::vector<Kernel> kernels = {
        {"beliefs_from_votes", 4 * md * nd + nd * Cd * s,
         [&] { gpu::beliefs_from_votes<T>(votes.ptr, m, n, C, P.ptr); }},
        {"point_depth", nd * Cd * s + 4 * nd + nd * s,
         [&] { gpu::point_depth<T>(P.ptr, n, C, pred.ptr, depth.ptr); }},
        {"empirical_depth", nd * Cd * s + 4 * nd,
         [&] { (void)gpu::empirical_depth<T>(P.ptr, n, C, pred.ptr, 0.0); }},
        {"count_violations", nd * Cd * s + 4 * nd,
         [&] { (void)gpu::count_violations<T>(P.ptr, n, C, pred.ptr, t); }},
        {"allowed_labels", nd * Cd * s + nd * Cd, [&] { gpu::allowed_labels<T>(P.ptr, n, C, t, mask.ptr); }},
        {"max_achievable_depth", nd * Cd * s, [&] { (void)gpu::max_achievable_depth<T>(P.ptr, n, C); }},
    };
    // The largest copy any kernel is compared with.
    double most = 0;
    for (const Kernel& k : kernels) most = std::max(most, k.bytes);
    DeviceArray<unsigned char> src{static_cast<size_t>(most / 2) + 1}, dst{static_cast<size_t>(most / 2) + 1};
    cuda_ok(cudaMemset(src.ptr, 1, size_t(most / 2) + 1), "cudaMemset");

    for (const Kernel& k : kernels) {
        const size_t half = size_t(k.bytes / 2);
        const double tk = time_median(k.f, a.repeats);
        const double tc = time_median(
            [&] { cuda_ok(cudaMemcpy(dst.ptr, src.ptr, half, cudaMemcpyDeviceToDevice), "cudaMemcpy"); },
            a.repeats);
        const double gbps = k.bytes / tk / 1e9, copy = 2.0 * double(half) / tc / 1e9;
        std::printf("| %.0e | %s | %s | %.1f MB | %.3f ms | %.1f | %.1f | %.2f |\n", double(n * C), dt,
                    k.name, k.bytes / 1e6, tk * 1e3, gbps, copy, gbps / copy);
        std::fflush(stdout);
    }
    return 0;
}

[[noreturn]] void usage(const char* msg) {
    std::fprintf(stderr,
                 "%s\nusage: crembo_cuda_bench [--entries N] [--classes C] [--members M] [--repeats R] "
                 "[--dtype both|f32|f64]\n",
                 msg);
    std::exit(64);
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "-h" || k == "--help")
            usage("CUDA kernel throughput on device memory against device copy bandwidth");
        if (i + 1 >= argc) usage(("missing value after " + k).c_str());
        const char* v = argv[++i];
        if (k == "--entries")
            a.entries = std::atof(v);
        else if (k == "--classes")
            a.C = std::atoll(v);
        else if (k == "--members")
            a.m = std::atoll(v);
        else if (k == "--repeats")
            a.repeats = std::atoi(v);
        else if (k == "--dtype")
            a.dtype = v;
        else
            usage(("unknown option " + k).c_str());
    }
    if (a.C < 1 || a.m < 1 || a.repeats < 1 || a.entries < double(a.C)) usage("bad sizes");
    if (a.dtype != "both" && a.dtype != "f32" && a.dtype != "f64") usage("--dtype: both, f32 or f64");
    if (!gpu::available()) {
        std::printf("no CUDA device\n");
        return 2;
    }
    const index_t n = index_t(a.entries / double(a.C));
    std::printf(
        "device: %s; n = %lld points x C = %lld classes = %.0e belief entries, m = %lld members; "
        "median of %d runs; copy = cudaMemcpy device-to-device of bytes/2\n",
        gpu::device_name().c_str(), (long long)n, (long long)a.C, double(n * a.C), (long long)a.m, a.repeats);
    std::printf(
        "| entries | dtype | kernel | bytes | time | GB/s | copy GB/s | ratio |\n"
        "|--:|---|---|--:|--:|--:|--:|--:|\n");
    try {
        const std::vector<label_t> votes = make_votes(a.m, n, a.C);
        if (a.dtype != "f32") run<double>(a, votes, n);
        if (a.dtype != "f64") run<float>(a, votes, n);
    } catch (const std::exception& e) {
        std::printf("FAIL: %s\n", e.what());
        return 1;
    }
    return 0;
}
