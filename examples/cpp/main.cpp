// A consumer of the installed crembo C++ package (see CMakeLists.txt).
//
//   crembo_consumer [TREE ROWS]
//
// 1. Computes a student's depth in a teacher's belief with the core API
//    (crembo::empirical_depth, crembo::count_violations) and checks it.
// 2. With TREE (written by `crembo export --format native`) and ROWS (CSV:
//    the features of a row, then the class index the tree must predict),
//    loads the tree with crembo::FastTree::load, predicts every row and
//    checks each prediction.
// Exits 0 when every check passes, 1 otherwise.
#include <crembo/fast_tree.hpp>
#ifndef CREMBO_EXAMPLE_TREE_ONLY
#include <crembo/core.hpp>
#endif

#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

#ifndef CREMBO_EXAMPLE_TREE_ONLY
bool check_depth() {
    // Beliefs p(y|x) of 3 points over 2 classes, row-major, and a student's labels.
    const std::vector<double> P = {0.9, 0.1,   // point 0
                                   0.3, 0.7,   // point 1
                                   0.6, 0.4};  // point 2
    const std::vector<crembo::label_t> pred = {0, 1, 1};
    // The student's depth is the smallest belief in its own prediction: min(0.9, 0.7, 0.4).
    const double depth = crembo::empirical_depth<double>(P.data(), 3, 2, pred.data(), 0.0);
    const crembo::index_t bad = crembo::count_violations<double>(P.data(), 3, 2, pred.data(), 0.5);
    std::printf("depth = %g (expected 0.4), violations at 0.5 = %lld (expected 1)\n", depth,
                static_cast<long long>(bad));
    return std::fabs(depth - 0.4) < 1e-12 && bad == 1;
}
#endif

bool check_tree(const std::string& tree_path, const std::string& rows_path) {
    const crembo::FastTree tree = crembo::FastTree::load(tree_path);
    std::printf("tree: %lld nodes, %lld features, %lld classes, depth %lld\n",
                static_cast<long long>(tree.n_nodes()), static_cast<long long>(tree.n_features()),
                static_cast<long long>(tree.n_classes()), static_cast<long long>(tree.max_depth()));
    std::ifstream in(rows_path);
    if (!in) {
        std::printf("cannot open %s\n", rows_path.c_str());
        return false;
    }
    std::string line;
    long rows = 0, wrong = 0;
    std::vector<double> x(static_cast<size_t>(tree.n_features()));
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        std::istringstream fields(line);
        std::string field;
        for (double& v : x) {
            std::getline(fields, field, ',');
            v = std::stod(field);  // "nan" reads as NaN
        }
        std::getline(fields, field, ',');
        const int expected = std::stoi(field);
        const int got = tree.predict_one(x.data());
        if (got != expected && ++wrong <= 5)
            std::printf("row %ld: predicted class %d, expected %d\n", rows, got, expected);
        ++rows;
    }
    std::printf("%ld rows, %ld wrong\n", rows, wrong);
    return rows > 0 && wrong == 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        bool ok = true;
#ifndef CREMBO_EXAMPLE_TREE_ONLY
        ok = check_depth() && ok;
#endif
        if (argc == 3) ok = check_tree(argv[1], argv[2]) && ok;
        std::printf("%s\n", ok ? "OK" : "FAILED");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::printf("error: %s\n", e.what());
        return 1;
    }
}
