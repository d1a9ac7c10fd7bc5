"""The one gateway to the compiled core, ``crembo._core``.

Every other module of the package reaches native code through this module
(``from . import _native`` then ``_native.hist_fit(...)``); none imports
``_core`` itself. The functions and classes are the bindings themselves, with
their signatures and docstrings in ``_core.pyi``: they expect inputs already
checked (dtypes, shapes, ranges), which the public NumPy-facing layer
(:mod:`crembo.core`, the estimators) does first.

What the gateway adds is the small policy that belongs next to the bindings:
the build's version and CUDA flags, and the choice of a kernel's CPU or CUDA
twin from a ``device`` argument.
"""

from __future__ import annotations

from typing import Any, Callable

from . import _core

#: The version of the compiled core (the package's version).
version: str = getattr(_core, "__version__", "0.0.0")

#: True when the core was compiled with its CUDA kernels.
cuda_built: bool = bool(_core.cuda_built)


def cuda_ready() -> bool:
    """True when the core has CUDA kernels and a CUDA device is present."""
    return cuda_built and bool(_core.cuda_available())


def resolve_device(device: str) -> str:
    """The device a native kernel runs on: ``"cpu"`` or ``"cuda"``.

    ``"auto"``, crembo's default everywhere, means where the inputs already
    live: NumPy arrays are in host memory, so native kernels run on the CPU
    unless ``device="cuda"`` is asked for (copying to the GPU costs more than
    these kernels save on all but very large inputs). Any other value is
    returned unchanged, validated by the caller.
    """
    return "cpu" if isinstance(device, str) and device == "auto" else device


def __getattr__(name: str) -> Any:
    """Every binding of ``_core`` (functions, ``FastTree``, ``VoteForest``,
    ...), looked up in ``_core`` on each use, so that a binding replaced
    there (a test's monkeypatch) is the one called."""
    try:
        return getattr(_core, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | {n for n in dir(_core) if not n.startswith("_")})


def kernel(name: str, device: str = "cpu") -> Callable[..., Any]:
    """The native kernel ``name``, or its CUDA twin ``cuda_<name>`` for
    ``device="cuda"`` (the device already validated)."""
    return getattr(_core, ("cuda_" + name) if device == "cuda" else name)
