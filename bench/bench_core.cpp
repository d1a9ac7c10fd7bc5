// crembo_bench: throughput of the native core's data-parallel kernels,
// without Python.
//
// For each size n (default 1e4, 1e6, 1e7), C classes (default 10) and m
// sampled hypotheses (default 100) it builds an m x n vote matrix, the n x C
// belief matrix and a prediction vector, then times, for float64 and float32:
//
//   beliefs_from_votes  empirical_depth  point_depth
//   count_violations    allowed_labels   max_achievable_depth
//
// and prints, per kernel, the median of --repeats timed calls (after one
// untimed warm-up call), the bytes it touches, the effective bandwidth, and a
// parallel memcpy of the same byte count timed in the same run (kernel and
// memcpy calls alternate, so load from other processes affects both alike).
//
// Bytes touched = bytes of the inputs read + bytes of the outputs written,
// with s = sizeof(T):
//   beliefs_from_votes    4*m*n (votes)        + n*C*s (beliefs written)
//   point_depth           n*C*s + 4*n (pred)   + n*s   (depths written)
//   empirical_depth       n*C*s + 4*n
//   count_violations      n*C*s + 4*n
//   allowed_labels        n*C*s                + n*C   (uint8 mask written)
//   max_achievable_depth  n*C*s
// The gather kernels (point_depth, empirical_depth, count_violations) read
// one belief per row, but a row is C*s = 80 (float64) or 40 (float32) bytes,
// so consecutive rows' elements fall in (nearly) every 64-byte cache line and
// the hardware streams the whole matrix from memory: it is counted in full.
// Scratch memory a kernel allocates internally is not counted.
//
// The memcpy reference copies B/2 bytes into another buffer (B/2 read +
// B/2 written = B bytes touched, the same accounting), once on one thread and
// once split over the kernel threads; the faster is the reference and its
// bandwidth is B / time.
//
// Usage:
//   crembo_bench [--sizes 10000,1000000,10000000] [--classes 10] [--members 100]
//                [--repeats 7] [--threads N] [--dtype both|f64|f32]
//                [--kernels name,name,...] [--json FILE] [--seed 1]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "crembo/core.hpp"

namespace {

using crembo::index_t;
using crembo::label_t;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ options
struct Options {
    std::vector<index_t> sizes{10000, 1000000, 10000000};
    index_t C = 10;
    index_t m = 100;
    int repeats = 7;
    int threads = 0;  // 0: the runtime default
    bool f64 = true, f32 = true;
    std::vector<std::string> kernels;  // empty: all
    std::string json;
    std::uint64_t seed = 1;
};

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

index_t parse_size(const std::string& s) {
    // Accepts 10000, 1e6, 10M, 100k.
    std::size_t pos = 0;
    const double v = std::stod(s, &pos);
    double mult = 1;
    if (pos < s.size()) {
        const char c = s[pos];
        if (c == 'k' || c == 'K')
            mult = 1e3;
        else if (c == 'm' || c == 'M')
            mult = 1e6;
        else if (c == 'g' || c == 'G')
            mult = 1e9;
        else
            throw std::invalid_argument("bad size: " + s);
    }
    const double n = v * mult;
    if (!(n >= 1)) throw std::invalid_argument("bad size: " + s);
    return static_cast<index_t>(std::llround(n));
}

[[noreturn]] void usage(int code) {
    std::fprintf(code ? stderr : stdout,
                 "usage: crembo_bench [--sizes 10000,1000000,10000000] [--classes 10] [--members 100]\n"
                 "                    [--repeats 7] [--threads N] [--dtype both|f64|f32]\n"
                 "                    [--kernels beliefs_from_votes,point_depth,empirical_depth,\n"
                 "                               count_violations,allowed_labels,max_achievable_depth]\n"
                 "                    [--json FILE] [--seed 1]\n");
    std::exit(code);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(2);
            return argv[++i];
        };
        if (a == "-h" || a == "--help")
            usage(0);
        else if (a == "--sizes") {
            o.sizes.clear();
            for (const auto& s : split(next())) o.sizes.push_back(parse_size(s));
        } else if (a == "--classes")
            o.C = parse_size(next());
        else if (a == "--members")
            o.m = parse_size(next());
        else if (a == "--repeats")
            o.repeats = std::max(1, std::atoi(next().c_str()));
        else if (a == "--threads")
            o.threads = std::atoi(next().c_str());
        else if (a == "--dtype") {
            const std::string d = next();
            o.f64 = d == "both" || d == "f64" || d == "float64";
            o.f32 = d == "both" || d == "f32" || d == "float32";
            if (!o.f64 && !o.f32) usage(2);
        } else if (a == "--kernels")
            o.kernels = split(next());
        else if (a == "--json")
            o.json = next();
        else if (a == "--seed")
            o.seed = std::strtoull(next().c_str(), nullptr, 10);
        else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            usage(2);
        }
    }
    if (o.sizes.empty() || o.C < 1 || o.m < 1) usage(2);
    return o;
}

// ------------------------------------------------------------------ helpers
// Uninitialised, 64-byte aligned buffer (std::vector would zero it: a full
// extra pass over 4 GB of votes).
template <class T>
struct Buffer {
    struct Free {
        void operator()(T* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    std::unique_ptr<T[], Free> p;
    std::size_t size = 0;
    Buffer() = default;
    explicit Buffer(std::size_t n)
        : p(static_cast<T*>(::operator new[](std::max<std::size_t>(n, 1) * sizeof(T), std::align_val_t(64)))),
          size(n) {}
    T* data() { return p.get(); }
    const T* data() const { return p.get(); }
    void reset() {
        p.reset();
        size = 0;
    }
};

int threads_in_use() {
#ifdef _OPENMP
    return crembo::get_num_threads();
#else
    return 1;
#endif
}

// splitmix64: fast, good enough for benchmark data.
inline std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Votes with structure: each point has a "true" class; a member votes for it
// with probability ~0.6, otherwise for a random class. Filled in parallel,
// which also first-touches the pages on the threads that use them.
void make_votes(label_t* votes, index_t m, index_t n, index_t C, std::uint64_t seed) {
    const std::int64_t total = m * n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_in_use())
#endif
    for (std::int64_t k = 0; k < total; ++k) {
        const index_t i = k % n;
        const std::uint64_t r = mix(seed ^ (static_cast<std::uint64_t>(k) * 0x2545f4914f6cdd1dull));
        const label_t truth = static_cast<label_t>(mix(seed + static_cast<std::uint64_t>(i)) % C);
        votes[k] = (r & 0xff) < 154 ? truth : static_cast<label_t>((r >> 8) % C);
    }
}

void make_pred(label_t* pred, const label_t* votes0, index_t n, index_t C, std::uint64_t seed) {
    // Mostly the first member's vote (so most points are deep), some random.
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_in_use())
#endif
    for (index_t i = 0; i < n; ++i) {
        const std::uint64_t r = mix(seed * 31 + static_cast<std::uint64_t>(i));
        pred[i] = (r & 0xf) < 12 ? votes0[i] : static_cast<label_t>((r >> 8) % C);
    }
}

void parallel_memcpy(char* dst, const char* src, std::size_t bytes, int T) {
#ifdef _OPENMP
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const std::size_t chunk = (bytes + nt - 1) / nt;
        const std::size_t lo = std::min(bytes, chunk * t), hi = std::min(bytes, lo + chunk);
        if (hi > lo) std::memcpy(dst + lo, src + lo, hi - lo);
    }
#else
    (void)T;
    std::memcpy(dst, src, bytes);
#endif
}

volatile double g_sink = 0;  // keeps results alive

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t k = v.size();
    return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

struct Timing {
    double median, best;
};

// The kernel and its memcpy references (g: one thread, h: all threads),
// interleaved run by run after one warm-up call of each, so that load from
// other processes hits all of them alike.
struct Timings {
    Timing kernel, copy1, copyT;
};

Timings time_interleaved(const std::function<void()>& f, const std::function<void()>& g,
                         const std::function<void()>& h, int repeats) {
    const std::function<void()>* fs[3] = {&f, &g, &h};
    std::vector<double> t[3];
    for (auto* fn : fs) (*fn)();
    for (int r = 0; r < repeats; ++r) {
        for (int k = 0; k < 3; ++k) {
            const auto a = Clock::now();
            (*fs[k])();
            const auto b = Clock::now();
            t[k].push_back(std::chrono::duration<double>(b - a).count());
        }
    }
    auto summary = [](const std::vector<double>& v) {
        return Timing{median(v), *std::min_element(v.begin(), v.end())};
    };
    return {summary(t[0]), summary(t[1]), summary(t[2])};
}

std::string loadavg() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    if (!(f >> a >> b >> c)) return "n/a";
    return a + " " + b + " " + c;
}

struct Row {
    index_t n;
    std::string dtype, kernel;
    double seconds, best_seconds, bytes, gbps, memcpy_seconds, memcpy_gbps, ratio, best_ratio;
    double memcpy1_seconds, memcpyT_seconds;
};

std::string fmt_time(double s) {
    char buf[32];
    if (s < 1e-3)
        std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
    else if (s < 1)
        std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.3f s", s);
    return buf;
}

std::string fmt_bytes(double b) {
    char buf[32];
    if (b < 1e6)
        std::snprintf(buf, sizeof buf, "%.1f KB", b / 1e3);
    else if (b < 1e9)
        std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
    return buf;
}

bool wanted(const Options& o, const std::string& k) {
    return o.kernels.empty() || std::find(o.kernels.begin(), o.kernels.end(), k) != o.kernels.end();
}

// Scratch for the memcpy reference, grown on demand and reused.
struct CopyScratch {
    Buffer<char> src, dst;
    void ensure(std::size_t bytes) {
        if (src.size >= bytes) return;
        src.reset();
        dst.reset();
        src = Buffer<char>(bytes);
        dst = Buffer<char>(bytes);
        // Touch every page once (and give the source defined contents).
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads_in_use())
#endif
        for (std::int64_t k = 0; k < static_cast<std::int64_t>(bytes); k += 4096) {
            src.data()[k] = static_cast<char>(k);
            dst.data()[k] = 0;
        }
    }
    void release() {
        src.reset();
        dst.reset();
    }
};

template <class T>
void bench_dtype(const Options& o, index_t n, const label_t* votes, const label_t* pred, CopyScratch& scratch,
                 std::vector<Row>& rows, const char* dtype) {
    const index_t C = o.C, m = o.m;
    const double s = sizeof(T);
    const double nd = double(n), Cd = double(C), md = double(m);
    Buffer<T> P(static_cast<std::size_t>(n * C));
    crembo::beliefs_from_votes<T>(votes, m, n, C, P.data());  // also first-touches P
    Buffer<T> depth(static_cast<std::size_t>(n));
    Buffer<std::uint8_t> mask;
    const T t = T(0.3);

    auto record = [&](const std::string& name, double bytes, const std::function<void()>& f) {
        if (!wanted(o, name)) return;
        const std::size_t half = static_cast<std::size_t>(bytes / 2);
        scratch.ensure(half);
        char* dst = scratch.dst.data();
        const char* src = scratch.src.data();
        const Timings tm = time_interleaved(
            f, [&] { std::memcpy(dst, src, half); },
            [&] { parallel_memcpy(dst, src, half, threads_in_use()); }, o.repeats);
        const Timing& k = tm.kernel;
        // The faster copy is the reference (one thread wins on small, cached buffers).
        const Timing c{std::min(tm.copy1.median, tm.copyT.median), std::min(tm.copy1.best, tm.copyT.best)};
        Row r{n,
              dtype,
              name,
              k.median,
              k.best,
              bytes,
              bytes / k.median / 1e9,
              c.median,
              bytes / c.median / 1e9,
              0,
              c.best / k.best,
              tm.copy1.median,
              tm.copyT.median};
        r.ratio = r.gbps / r.memcpy_gbps;
        rows.push_back(r);
        std::printf("| %9lld | %-7s | %-20s | %10s | %9s | %7.2f | %7.2f | %5.2f | %10s | %5.2f |\n",
                    static_cast<long long>(n), dtype, name.c_str(), fmt_time(k.median).c_str(),
                    fmt_bytes(bytes).c_str(), r.gbps, r.memcpy_gbps, r.ratio, fmt_time(k.best).c_str(),
                    r.best_ratio);
        std::fflush(stdout);
    };

    {
        Buffer<T> out(static_cast<std::size_t>(n * C));
        record("beliefs_from_votes", 4 * md * nd + nd * Cd * s, [&] {
            crembo::beliefs_from_votes<T>(votes, m, n, C, out.data());
            g_sink = double(out.data()[0]);
        });
    }
    record("point_depth", nd * Cd * s + 4 * nd + nd * s, [&] {
        crembo::point_depth<T>(P.data(), n, C, pred, depth.data());
        g_sink = double(depth.data()[0]);
    });
    record("empirical_depth", nd * Cd * s + 4 * nd,
           [&] { g_sink = double(crembo::empirical_depth<T>(P.data(), n, C, pred, 0.0)); });
    record("count_violations", nd * Cd * s + 4 * nd,
           [&] { g_sink = double(crembo::count_violations<T>(P.data(), n, C, pred, t)); });
    if (wanted(o, "allowed_labels")) {
        mask = Buffer<std::uint8_t>(static_cast<std::size_t>(n * C));
        record("allowed_labels", nd * Cd * s + nd * Cd, [&] {
            crembo::allowed_labels<T>(P.data(), n, C, t, mask.data());
            g_sink = mask.data()[0];
        });
        mask.reset();
    }
    record("max_achievable_depth", nd * Cd * s,
           [&] { g_sink = double(crembo::max_achievable_depth<T>(P.data(), n, C)); });
}

void write_json(const Options& o, const std::vector<Row>& rows, int threads) {
    std::ofstream f(o.json);
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", o.json.c_str());
        return;
    }
    f << "{\n  \"loadavg_end\": \"" << loadavg() << "\",\n  \"classes\": " << o.C
      << ",\n  \"members\": " << o.m << ",\n  \"repeats\": " << o.repeats << ",\n  \"threads\": " << threads
      << ",\n  \"openmp\": " << (crembo::built_with_openmp() ? "true" : "false") << ",\n  \"rows\": [\n";
    for (std::size_t k = 0; k < rows.size(); ++k) {
        const Row& r = rows[k];
        f << "    {\"n\": " << r.n << ", \"dtype\": \"" << r.dtype << "\", \"kernel\": \"" << r.kernel
          << "\", \"seconds\": " << r.seconds << ", \"best_seconds\": " << r.best_seconds
          << ", \"bytes\": " << r.bytes << ", \"gbps\": " << r.gbps
          << ", \"memcpy_seconds\": " << r.memcpy_seconds << ", \"memcpy_gbps\": " << r.memcpy_gbps
          << ", \"ratio\": " << r.ratio << ", \"best_ratio\": " << r.best_ratio
          << ", \"memcpy_1thread_seconds\": " << r.memcpy1_seconds
          << ", \"memcpy_all_threads_seconds\": " << r.memcpyT_seconds << "}"
          << (k + 1 < rows.size() ? "," : "") << "\n";
    }
    f << "  ]\n}\n";
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    if (o.threads > 0) crembo::set_num_threads(o.threads);
    const int threads = threads_in_use();
    std::printf("crembo_bench: C = %lld classes, m = %lld hypotheses, %d thread(s)%s, median of %d runs\n",
                static_cast<long long>(o.C), static_cast<long long>(o.m), threads,
                crembo::built_with_openmp() ? " (OpenMP)" : " (no OpenMP)", o.repeats);
    std::printf(
        "bytes = inputs read + outputs written (the belief matrix counted in full for the row\n"
        "gathers); memcpy = copy of bytes/2 (read + write = bytes), the faster of 1 and all threads,\n"
        "interleaved with the kernel's runs\n\n");
    std::printf("load average at start: %s\n\n", loadavg().c_str());
    std::printf("| %9s | %-7s | %-20s | %10s | %9s | %7s | %7s | %5s | %10s | %5s |\n", "n", "dtype",
                "kernel", "median", "bytes", "GB/s", "memcpy", "ratio", "best", "ratio");
    std::printf(
        "|----------:|---------|----------------------|-----------:|----------:|--------:|--------:|------:"
        "|-----------:|------:|\n");

    std::vector<Row> rows;
    try {
        for (const index_t n : o.sizes) {
            CopyScratch scratch;
            Buffer<label_t> votes(static_cast<std::size_t>(o.m * n));
            make_votes(votes.data(), o.m, n, o.C, o.seed);
            Buffer<label_t> pred(static_cast<std::size_t>(n));
            make_pred(pred.data(), votes.data(), n, o.C, o.seed);
            if (o.f64) bench_dtype<double>(o, n, votes.data(), pred.data(), scratch, rows, "float64");
            if (o.f32) bench_dtype<float>(o, n, votes.data(), pred.data(), scratch, rows, "float32");
            // Buffers are freed here, before the next size.
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crembo_bench: %s\n", e.what());
        return 1;
    }
    std::printf(
        "\nGB/s and memcpy: bytes / median time; ratio = GB/s / memcpy GB/s. best: fastest run, and\n"
        "the ratio of the fastest runs (less sensitive to other load on the machine).\n");
    std::printf("load average at end: %s\n", loadavg().c_str());
    if (!o.json.empty()) {
        write_json(o, rows, threads);
        std::printf("\nwrote %s\n", o.json.c_str());
    }
    return 0;
}
