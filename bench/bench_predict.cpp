// crembo_bench_predict: prediction latency of flattened decision trees in C++,
// without Python: the header-only evaluator crembo/fast_tree.hpp and, when
// compiled with CREMBO_BENCH_GENERATED, the C++ source crembo.export.export_cpp
// generated for the same trees.
//
// For each tree it times, over the rows of a data matrix:
//   single   one predict call per row, row after row (ns per call)
//   batch/1  one call for all rows on one thread (ns per row)
//   batch/T  one call for all rows on T threads (ns per row)
// for the FastTree evaluator and for the generated code, and counts the rows
// on which the two disagree (must be 0).
//
// Usage:
//   crembo_bench_predict                         synthetic trees (depth 4 and 8) and data
//   crembo_bench_predict --tree a.txt --tree b.txt --data X.f32
//                        [--repeats 5] [--threads T] [--rows N]
//
// --tree files are written by crembo.export.export_native (FastTree.save);
// --data is raw little-endian float32, row-major, n_features per row. When
// built with -DCREMBO_BENCH_GENERATED, crembo_bench_trees.hpp (written by
// bench/bench_predict.py next to the tree files) supplies the generated code
// of the same trees, in the same order. bench/bench_predict.py does all of
// this and prints the Python-side numbers next to these.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "crembo/fast_tree.hpp"

#ifdef CREMBO_BENCH_GENERATED
#include "crembo_bench_trees.hpp"  // kGenerated[], kNumGenerated
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::vector<std::string> trees;
    std::string data;
    long rows = 1000000;
    bool rows_set = false;
    int features = 20;
    int repeats = 5;
    int threads = 0;
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "crembo_bench_predict: %s (see the comment at the top of bench/bench_predict.cpp)\n",
                 msg.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error("missing value after " + a);
            return argv[++i];
        };
        auto integer = [&](long lo) {
            const std::string v = value();
            char* end = nullptr;
            const long x = std::strtol(v.c_str(), &end, 10);
            if (end != v.c_str() + v.size() || x < lo) usage_error("bad value for " + a + ": " + v);
            return x;
        };
        if (a == "--tree")
            o.trees.push_back(value());
        else if (a == "--data")
            o.data = value();
        else if (a == "--rows") {
            o.rows = integer(1);
            o.rows_set = true;
        } else if (a == "--features")
            o.features = static_cast<int>(integer(1));
        else if (a == "--repeats")
            o.repeats = static_cast<int>(integer(1));
        else if (a == "--threads")
            o.threads = static_cast<int>(integer(0));
        else if (a == "--help" || a == "-h") {
            std::printf(
                "usage: crembo_bench_predict [--tree FILE]... [--data X.f32] [--rows N] [--features D]\n"
                "                            [--repeats R] [--threads T]\n");
            std::exit(0);
        } else
            usage_error("unknown argument " + a);
    }
    return o;
}

// A complete tree of the given depth on random features and thresholds.
crembo::FastTree synthetic_tree(int depth, int d, int n_classes, std::mt19937_64& rng) {
    const std::int64_t n = (std::int64_t(1) << (depth + 1)) - 1;
    std::vector<std::int64_t> left(n, -1), right(n, -1), feat(n, -2);
    std::vector<double> thr(n, -2.0), proba(n * n_classes, 0.0);
    std::vector<std::int32_t> cls(n, -1);
    std::normal_distribution<double> normal(0.0, 0.7);
    std::uniform_int_distribution<int> pick(0, d - 1), pick_class(0, n_classes - 1);
    // Breadth-first numbering: children of i are 2i+1 and 2i+2.
    for (std::int64_t i = 0; i < n; ++i) {
        if (2 * i + 1 < n) {
            left[i] = 2 * i + 1;
            right[i] = 2 * i + 2;
            feat[i] = pick(rng);
            thr[i] = normal(rng);
        } else {
            cls[i] = pick_class(rng);
            proba[i * n_classes + cls[i]] = 1.0;
        }
    }
    return crembo::FastTree(n, left.data(), right.data(), feat.data(), thr.data(), nullptr, d, n_classes,
                            cls.data(), proba.data());
}

template <class F>
double median_seconds(int repeats, F&& f) {
    std::vector<double> t;
    f();  // warm-up
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        f();
        t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

volatile std::int64_t g_sink = 0;

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    int threads = opt.threads;
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    try {
        std::vector<crembo::FastTree> trees;
        std::vector<std::string> names;
        std::mt19937_64 rng(7);
        if (opt.trees.empty()) {
            for (int depth : {4, 8}) {
                trees.push_back(synthetic_tree(depth, opt.features, 3, rng));
                names.push_back("synthetic depth " + std::to_string(depth));
            }
        } else {
            for (const auto& path : opt.trees) {
                trees.push_back(crembo::FastTree::load(path));
                const size_t slash = path.find_last_of("/\\");
                names.push_back(slash == std::string::npos ? path : path.substr(slash + 1));
            }
        }
        const std::int64_t d = trees[0].n_features();
        for (const auto& t : trees)
            if (t.n_features() != d) usage_error("all trees must take the same number of features");

        std::vector<float> X;
        if (!opt.data.empty()) {
            std::ifstream f(opt.data, std::ios::binary | std::ios::ate);
            if (!f) usage_error("cannot open " + opt.data);
            const std::streamsize bytes = f.tellg();
            if (bytes <= 0 || bytes % (4 * d) != 0)
                usage_error("data size is not a multiple of n_features floats");
            X.resize(static_cast<size_t>(bytes / 4));
            f.seekg(0);
            f.read(reinterpret_cast<char*>(X.data()), bytes);
        } else {
            X.resize(static_cast<size_t>(opt.rows * d));
            std::normal_distribution<float> normal(0.0f, 1.0f);
            for (auto& v : X) v = normal(rng);
        }
        std::int64_t n = static_cast<std::int64_t>(X.size()) / d;
        if (opt.rows_set && opt.rows < n) n = opt.rows;  // --rows caps a data file too

#ifdef CREMBO_BENCH_GENERATED
        if (kNumGenerated != static_cast<int>(trees.size()))
            usage_error("crembo_bench_trees.hpp holds a different number of trees than --tree gave");
        const bool generated = true;
#else
        const bool generated = false;
#endif
        std::printf("crembo_bench_predict: %lld rows x %lld features, %d repeats (median), %d threads%s\n",
                    static_cast<long long>(n), static_cast<long long>(d), opt.repeats, threads,
                    generated ? "" : "; generated code not compiled in (build via bench/bench_predict.py)");
        std::printf(
            "\n| tree | nodes | depth | evaluator | single row, ns/call | batch 1 thread, ns/row | "
            "batch %d threads, ns/row | disagreeing rows |\n",
            threads);
        std::printf("|---|---|---|---|---|---|---|---|\n");
        std::vector<std::int32_t> ref(static_cast<size_t>(n)), out(static_cast<size_t>(n));
        for (size_t k = 0; k < trees.size(); ++k) {
            const crembo::FastTree& t = trees[k];
            const float* Xp = X.data();
            const double single = median_seconds(opt.repeats, [&] {
                std::int64_t s = 0;
                for (std::int64_t i = 0; i < n; ++i) s += t.predict_one(Xp + i * d);
                g_sink = g_sink + s;
            });
            const double batch1 = median_seconds(opt.repeats, [&] { t.predict(Xp, n, ref.data(), 1); });
            const double batchT = median_seconds(opt.repeats, [&] { t.predict(Xp, n, ref.data(), threads); });
            std::printf("| %s | %lld | %d | FastTree (fast_tree.hpp) | %.1f | %.1f | %.1f | - |\n",
                        names[k].c_str(), static_cast<long long>(t.n_nodes()), t.max_depth(),
                        1e9 * single / n, 1e9 * batch1 / n, 1e9 * batchT / n);
#ifdef CREMBO_BENCH_GENERATED
            const auto& g = kGenerated[k];
            const double gsingle = median_seconds(opt.repeats, [&] {
                std::int64_t s = 0;
                for (std::int64_t i = 0; i < n; ++i) s += g.predict(Xp + i * d);
                g_sink = g_sink + s;
            });
            const double gbatch1 =
                median_seconds(opt.repeats, [&] { g.batch(Xp, static_cast<long>(n), out.data()); });
            double gbatchT = gbatch1;
#ifdef _OPENMP
            gbatchT = median_seconds(opt.repeats, [&] {
                const std::int64_t chunk = (n + threads - 1) / threads;
#pragma omp parallel for num_threads(threads) schedule(static)
                for (int p = 0; p < threads; ++p) {
                    const std::int64_t lo = p * chunk, hi = std::min<std::int64_t>(n, lo + chunk);
                    if (lo < hi) g.batch(Xp + lo * d, static_cast<long>(hi - lo), out.data() + lo);
                }
            });
#endif
            std::int64_t differ = 0;
            for (std::int64_t i = 0; i < n; ++i) differ += out[i] != ref[i];
            std::printf("| %s | %lld | %d | generated C++ (export_cpp) | %.1f | %.1f | %.1f | %lld |\n",
                        names[k].c_str(), static_cast<long long>(t.n_nodes()), t.max_depth(),
                        1e9 * gsingle / n, 1e9 * gbatch1 / n, 1e9 * gbatchT / n,
                        static_cast<long long>(differ));
            if (differ) {
                std::fprintf(stderr,
                             "crembo_bench_predict: generated code and FastTree disagree on %lld rows\n",
                             static_cast<long long>(differ));
                return 1;
            }
#endif
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crembo_bench_predict: %s\n", e.what());
        return 1;
    }
    return 0;
}
