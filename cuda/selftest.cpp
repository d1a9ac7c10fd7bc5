// Standalone check of the CUDA kernels against the CPU core. Runs every
// function of crembo/cuda.hpp on random data, with host, device, pinned and
// managed pointers, compares the results bit for bit with the CPU functions
// of crembo/core.hpp (errors: same exception type and message), and prints
// PASS/FAIL per function. Without a CUDA device it prints "no CUDA device,
// skipped" and exits 0.
//
// Build and run (CMake target, built on request when CUDA is found):
//   cmake -S . -B build/cuda -DCREMBO_CUDA=ON
//   cmake --build build/cuda --target crembo_cuda_selftest && ./build/cuda/crembo_cuda_selftest
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "crembo/core.hpp"
#include "crembo/cuda.hpp"

using crembo::index_t;
using crembo::label_t;
namespace gpu = crembo::cuda;

namespace {

std::map<std::string, int> g_checks, g_failures;

void record(const std::string& fn, bool ok, const std::string& what) {
    ++g_checks[fn];
    if (!ok) {
        ++g_failures[fn];
        if (g_failures[fn] <= 5) std::printf("  mismatch in %s: %s\n", fn.c_str(), what.c_str());
    }
}

void cuda_ok(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Memory of one kind, filled from / read back into a host vector.
enum class Kind { Host, Device, Pinned, Managed };
const char* kind_name(Kind k) {
    switch (k) {
        case Kind::Host:
            return "host";
        case Kind::Device:
            return "device";
        case Kind::Pinned:
            return "pinned";
        case Kind::Managed:
            return "managed";
    }
    return "?";
}

template <class U>
class Mem {
public:
    Mem(Kind kind, const std::vector<U>& init) : kind_(kind), n_(init.size()), host_(init) {
        const size_t bytes = std::max<size_t>(n_, 1) * sizeof(U);
        switch (kind_) {
            case Kind::Host:
                ptr_ = host_.data();
                return;
            case Kind::Device:
                cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr_), bytes), "cudaMalloc");
                break;
            case Kind::Pinned:
                cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&ptr_), bytes), "cudaMallocHost");
                break;
            case Kind::Managed:
                cuda_ok(cudaMallocManaged(reinterpret_cast<void**>(&ptr_), bytes), "cudaMallocManaged");
                break;
        }
        cuda_ok(cudaMemcpy(ptr_, init.data(), n_ * sizeof(U), cudaMemcpyDefault), "cudaMemcpy");
    }
    Mem(Kind kind, size_t n, U fill) : Mem(kind, std::vector<U>(n, fill)) {}
    ~Mem() {
        if (kind_ == Kind::Device || kind_ == Kind::Managed) cudaFree(ptr_);
        if (kind_ == Kind::Pinned) cudaFreeHost(ptr_);
    }
    Mem(const Mem&) = delete;
    Mem& operator=(const Mem&) = delete;
    U* get() { return ptr_; }
    std::vector<U> read() {
        if (kind_ == Kind::Host) return host_;
        std::vector<U> out(n_);
        cuda_ok(cudaMemcpy(out.data(), ptr_, n_ * sizeof(U), cudaMemcpyDefault), "cudaMemcpy");
        return out;
    }

private:
    Kind kind_;
    size_t n_;
    std::vector<U> host_;
    U* ptr_ = nullptr;
};

template <class U>
bool same_bits(const std::vector<U>& a, const std::vector<U>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(U)) == 0;
}

template <class T>
bool same_value(T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0 || (std::isnan(a) && std::isnan(b));
}

// Both calls must throw std::invalid_argument with the same message.
void same_error(const std::string& fn, const std::string& label, const std::function<void()>& cpu,
                const std::function<void()>& dev) {
    auto run = [](const std::function<void()>& f, std::string& msg) -> int {
        try {
            f();
            return 0;
        } catch (const std::invalid_argument& e) {
            msg = e.what();
            return 1;
        } catch (const std::exception& e) {
            msg = e.what();
            return 2;
        }
    };
    std::string mc, md;
    const int rc = run(cpu, mc), rd = run(dev, md);
    record(fn, rc == 1 && rd == 1 && mc == md,
           label + ": cpu(" + std::to_string(rc) + ") '" + mc + "' vs cuda(" + std::to_string(rd) + ") '" +
               md + "'");
}

template <class T>
std::vector<T> random_beliefs(std::mt19937_64& rng, index_t n, index_t C) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::uniform_int_distribution<int> coin(0, 3);
    std::vector<T> P(size_t(n * C));
    for (index_t i = 0; i < n; ++i) {
        double s = 0;
        for (index_t y = 0; y < C; ++y) {
            // Some exact zeros and repeated values, so thresholds and minima tie.
            const int c = coin(rng);
            const double v = c == 0 ? 0.0 : c == 1 ? 0.25 : u(rng);
            P[size_t(i * C + y)] = T(v);
            s += v;
        }
        if (s == 0) P[size_t(i * C)] = T(1), s = 1;
        for (index_t y = 0; y < C; ++y) P[size_t(i * C + y)] = T(double(P[size_t(i * C + y)]) / s);
    }
    return P;
}

std::vector<label_t> random_labels(std::mt19937_64& rng, size_t count, index_t C) {
    std::uniform_int_distribution<label_t> d(0, label_t(C - 1));
    std::vector<label_t> v(count);
    for (auto& x : v) x = d(rng);
    return v;
}

template <class T>
void test_shape(std::mt19937_64& rng, index_t n, index_t C, index_t m, Kind kind) {
    const std::string tag = std::string(sizeof(T) == 4 ? "float" : "double") + " n=" + std::to_string(n) +
                            " C=" + std::to_string(C) + " m=" + std::to_string(m) + " " + kind_name(kind);
    const std::vector<T> P = random_beliefs<T>(rng, n, C);
    const std::vector<label_t> pred = random_labels(rng, size_t(n), C);
    Mem<T> dP(kind, P);
    Mem<label_t> dpred(kind, pred);

    // beliefs_from_votes
    {
        std::vector<label_t> votes = random_labels(rng, size_t(m * n), C);
        std::vector<T> ref(size_t(n * C));
        crembo::beliefs_from_votes(votes.data(), m, n, C, ref.data());
        Mem<label_t> dv(kind, votes);
        Mem<T> out(kind, size_t(n * C), T(-1));
        gpu::beliefs_from_votes(dv.get(), m, n, C, out.get());
        record("beliefs_from_votes", same_bits(ref, out.read()), tag);
        if (n <= 2048) {  // the CPU then scans serially and names the same entry
            std::uniform_int_distribution<index_t> at(0, m * n - 1);
            votes[size_t(at(rng))] = label_t(C);
            votes[size_t(at(rng))] = -1;
            Mem<label_t> bad(kind, votes);
            same_error(
                "beliefs_from_votes", tag + " bad vote",
                [&] { crembo::beliefs_from_votes(votes.data(), m, n, C, ref.data()); },
                [&] { gpu::beliefs_from_votes(bad.get(), m, n, C, out.get()); });
        }
    }
    // point_depth
    {
        std::vector<T> ref(static_cast<size_t>(n));
        crembo::point_depth(P.data(), n, C, pred.data(), ref.data());
        Mem<T> out(kind, size_t(n), T(-1));
        gpu::point_depth(dP.get(), n, C, dpred.get(), out.get());
        record("point_depth", same_bits(ref, out.read()), tag);
    }
    // empirical_depth
    for (double delta : {0.0, 0.001, 0.1, 0.5, 0.99}) {
        const T a = crembo::empirical_depth(P.data(), n, C, pred.data(), delta);
        const T b = gpu::empirical_depth(dP.get(), n, C, dpred.get(), delta);
        record("empirical_depth", same_value(a, b), tag + " delta=" + std::to_string(delta));
    }
    // allowed_labels, count_violations at thresholds taken from P
    std::uniform_int_distribution<size_t> pick(0, P.size() - 1);
    for (T t : {T(0), T(0.25), P[pick(rng)], P[pick(rng)], T(1.5)}) {
        std::vector<std::uint8_t> ref(size_t(n * C));
        crembo::allowed_labels(P.data(), n, C, t, ref.data());
        Mem<std::uint8_t> mask(kind, size_t(n * C), std::uint8_t(7));
        gpu::allowed_labels(dP.get(), n, C, t, mask.get());
        record("allowed_labels", same_bits(ref, mask.read()), tag);

        const index_t a = crembo::count_violations(P.data(), n, C, pred.data(), t);
        const index_t b = gpu::count_violations(dP.get(), n, C, dpred.get(), t);
        record("count_violations", a == b, tag + ": " + std::to_string(a) + " vs " + std::to_string(b));
    }
    // max_achievable_depth
    {
        const T a = crembo::max_achievable_depth(P.data(), n, C);
        const T b = gpu::max_achievable_depth(dP.get(), n, C);
        record("max_achievable_depth", same_value(a, b), tag);
    }
    // bad predictions: same first offending entry and message
    {
        std::vector<label_t> bad = pred;
        std::uniform_int_distribution<index_t> at(0, n - 1);
        bad[size_t(at(rng))] = label_t(C + 3);
        bad[size_t(at(rng))] = -2;
        Mem<label_t> dbad(kind, bad);
        std::vector<T> o1(static_cast<size_t>(n));
        Mem<T> out(kind, size_t(n), T(-1));
        same_error(
            "point_depth", tag + " bad pred",
            [&] { crembo::point_depth(P.data(), n, C, bad.data(), o1.data()); },
            [&] { gpu::point_depth(dP.get(), n, C, dbad.get(), out.get()); });
        record("point_depth", same_bits(std::vector<T>(size_t(n), T(-1)), out.read()),
               tag + " output touched after a bad label");
        for (double delta : {0.0, 0.5})
            same_error(
                "empirical_depth", tag + " bad pred",
                [&] { crembo::empirical_depth(P.data(), n, C, bad.data(), delta); },
                [&] { gpu::empirical_depth(dP.get(), n, C, dbad.get(), delta); });
        same_error(
            "count_violations", tag + " bad pred",
            [&] { crembo::count_violations(P.data(), n, C, bad.data(), T(0.5)); },
            [&] { gpu::count_violations(dP.get(), n, C, dbad.get(), T(0.5)); });
    }
}

template <class T>
void test_arguments() {
    const std::vector<T> P = {T(0.5), T(0.5)};
    const std::vector<label_t> pred = {0};
    std::vector<T> out(2);
    std::vector<std::uint8_t> mask(2);
    const std::vector<label_t> votes = {0, 1};
    same_error(
        "beliefs_from_votes", "m=0", [&] { crembo::beliefs_from_votes(votes.data(), 0, 1, 2, out.data()); },
        [&] { gpu::beliefs_from_votes(votes.data(), 0, 1, 2, out.data()); });
    same_error(
        "beliefs_from_votes", "C=0", [&] { crembo::beliefs_from_votes(votes.data(), 1, 1, 0, out.data()); },
        [&] { gpu::beliefs_from_votes(votes.data(), 1, 1, 0, out.data()); });
    same_error(
        "point_depth", "n=0", [&] { crembo::point_depth(P.data(), 0, 2, pred.data(), out.data()); },
        [&] { gpu::point_depth(P.data(), 0, 2, pred.data(), out.data()); });
    for (double delta : {-0.1, 1.0, std::nan("")})
        same_error(
            "empirical_depth", "delta", [&] { crembo::empirical_depth(P.data(), 1, 2, pred.data(), delta); },
            [&] { gpu::empirical_depth(P.data(), 1, 2, pred.data(), delta); });
    same_error(
        "allowed_labels", "C=0", [&] { crembo::allowed_labels(P.data(), 1, 0, T(0), mask.data()); },
        [&] { gpu::allowed_labels(P.data(), 1, 0, T(0), mask.data()); });
    same_error(
        "count_violations", "n=0", [&] { crembo::count_violations(P.data(), 0, 2, pred.data(), T(0)); },
        [&] { gpu::count_violations(P.data(), 0, 2, pred.data(), T(0)); });
    same_error(
        "max_achievable_depth", "C=0", [&] { crembo::max_achievable_depth(P.data(), 1, 0); },
        [&] { gpu::max_achievable_depth(P.data(), 1, 0); });
}

// NaN handling of the reductions must follow the CPU loops.
template <class T>
void test_nan() {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const std::vector<std::vector<T>> cases = {
        {T(0.5), nan, T(0.2), /**/ T(0.3), T(0.6), T(0.1)},  // NaN after column 0: skipped
        {nan, T(0.9), T(0.1), /**/ T(0.3), T(0.6), T(0.1)},  // NaN in column 0: row ignored
        {nan, nan, nan, /**/ nan, T(0.2), T(0.8)},
        {T(0.2), T(0.7), T(0.1), /**/ nan, nan, nan},
    };
    for (const auto& P : cases) {
        const T a = crembo::max_achievable_depth(P.data(), 2, 3);
        const T b = gpu::max_achievable_depth(P.data(), 2, 3);
        record("max_achievable_depth", same_value(a, b), "NaN case");
        const std::vector<label_t> pred = {0, 1};
        const T c = crembo::empirical_depth(P.data(), 2, 3, pred.data(), 0.0);
        const T d = gpu::empirical_depth(P.data(), 2, 3, pred.data(), 0.0);
        record("empirical_depth", same_value(c, d), "NaN case");
    }
}

template <class T>
void run_all(std::mt19937_64& rng) {
    struct Shape {
        index_t n, C, m;
    };
    // C = 1..95 take the shared-memory vote path, 500 the global one; n =
    // 300000 spreads the grid-stride loops over many blocks.
    const Shape shapes[] = {{1, 1, 1},      {1, 5, 3},      {37, 2, 5},     {1000, 10, 7},
                            {2048, 40, 1},  {1500, 95, 4},  {700, 200, 9},  {600, 500, 6},
                            {300000, 3, 2}, {50000, 33, 3}, {4000, 64, 300}};
    for (const Shape& s : shapes) test_shape<T>(rng, s.n, s.C, s.m, Kind::Host);
    for (Kind k : {Kind::Device, Kind::Pinned, Kind::Managed}) {
        test_shape<T>(rng, 1000, 10, 7, k);
        test_shape<T>(rng, 600, 500, 3, k);
    }
    test_arguments<T>();
    test_nan<T>();
}

}  // namespace

int main() {
    if (!gpu::available()) {
        std::printf("no CUDA device, skipped\n");
        return 0;
    }
    std::printf("device: %s\n", gpu::device_name().c_str());
    std::mt19937_64 rng(20240611);
    try {
        run_all<float>(rng);
        run_all<double>(rng);
    } catch (const std::exception& e) {
        std::printf("FAIL: unexpected exception: %s\n", e.what());
        return 1;
    }
    int failed = 0;
    for (const auto& kv : g_checks) {
        const int bad = g_failures.count(kv.first) ? g_failures[kv.first] : 0;
        std::printf("%s %s (%d checks, %d failed)\n", bad ? "FAIL" : "PASS", kv.first.c_str(), kv.second,
                    bad);
        failed += bad > 0;
    }
    return failed ? 1 : 0;
}
