"""Module paths from before the package layout (``crembo.estimators``,
``crembo.tree``, ...) stay importable, with a deprecation warning.

One meta-path finder answers for the old names with the module now at the
new path (the same object, so classes, pickles and ``isinstance`` checks are
unchanged); nothing is copied or re-executed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import importlib.machinery
    from collections.abc import Sequence

#: old module path -> new module path
MOVED = {
    "crembo.teachers": "crembo.compress.teachers",
    "crembo.augment": "crembo.compress.augment",
    "crembo.students": "crembo.compress.students",
    "crembo.memo": "crembo.compress.memo",
    "crembo.estimators": "crembo.compress.estimators",
    "crembo.regression": "crembo.compress.regression",
    "crembo.tables": "crembo.compress.tables",
    "crembo.tree": "crembo.trees.hist",
    "crembo.regression_tree": "crembo.trees.hist_regression",
    "crembo.export": "crembo.trees.export",
    "crembo.export_regression": "crembo.trees.export_regression",
    "crembo.onnx_hist": "crembo.trees.onnx",
    "crembo.datasets": "crembo.evaluation.datasets",
    "crembo.metrics": "crembo.evaluation.metrics",
    "crembo.paper": "crembo.evaluation.paper",
    "crembo.plots": "crembo.evaluation.plots",
    "crembo.cli_regression": "crembo.cli.regression",
}


def _outside_level() -> int:
    """The ``stacklevel`` of the first frame outside the import system and
    this package's own alias code (the user's import line)."""
    here = (__file__, __file__.replace("_compat.py", "__init__.py"))
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if name in here:
            level += 1
        elif "importlib" not in name or "_bootstrap" not in name:
            break  # (warnings.warn itself does not count the import system's frames)
        frame = frame.f_back
    return level


def warn_moved(old: str) -> None:
    from ._deprecation import CremboDeprecationWarning

    warnings.warn(
        f"{old} moved to {MOVED[old]} in crembo 0.2; import it from there (the old path will be removed)",
        CremboDeprecationWarning,
        stacklevel=_outside_level(),
    )


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, old: str):
        self.old = old
        self.spec = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(MOVED[self.old])
        self.spec = module.__spec__  # the import system overwrites it; put it back below
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec
        warn_moved(self.old)


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(fullname))


class _Package(types.ModuleType):
    """The ``crembo`` package's module type: importing an old path sets the
    package attribute of that name to the module (the import system does so
    for every submodule), which must not hide a function the package exports
    under the same name (``crembo.memo``, the function, against
    ``crembo.memo``, the old module path)."""

    def __setattr__(self, name: str, value: object) -> None:
        held = self.__dict__.get(name)
        if (
            isinstance(value, types.ModuleType)
            and f"crembo.{name}" in MOVED
            and held is not None
            and not isinstance(held, types.ModuleType)
        ):
            return
        super().__setattr__(name, value)


def install() -> None:
    """Answer for the old module paths (once per process), and protect the
    package's own names from them."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
    package = sys.modules["crembo"]
    if not isinstance(package, _Package):
        package.__class__ = _Package


def module_getattr(name: str) -> types.ModuleType:
    """``crembo.<old name>`` as an attribute of the package (``import crembo; crembo.tree``)."""
    old = f"crembo.{name}"
    if old not in MOVED:
        raise AttributeError(f"module 'crembo' has no attribute {name!r}")
    warn_moved(old)
    return importlib.import_module(MOVED[old])
