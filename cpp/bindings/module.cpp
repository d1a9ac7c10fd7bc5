// The pybind11 module crembo._core: one init_* per part, each in its own
// binding file (common.hpp lists them). The one place that knows the module.
//
// Arrays arrive as NumPy arrays. Belief matrices keep float32 when given
// float32 and use float64 otherwise; C-contiguous input is used in place and
// anything else is copied once. The Python layer validates arguments before
// calling in; the core validates again and its std::invalid_argument becomes
// ValueError. The GIL is released around every kernel and around the MEMO
// search (the student-fit callbacks take it back while they run).
#include <pybind11/pybind11.h>

#include <exception>
#include <stdexcept>

#include "common.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "crembo native core: beliefs, depth, thresholds, consistency and the MEMO search";
#ifdef CREMBO_VERSION
    m.attr("__version__") = CREMBO_VERSION;
#endif
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });
    crembo_py::init_kernels(m);
    crembo_py::init_fast_tree(m);
    crembo_py::init_memo(m);
    crembo_py::init_hist_tree(m);
    crembo_py::init_regression(m);
    crembo_py::init_hist_parallel(m);
}
