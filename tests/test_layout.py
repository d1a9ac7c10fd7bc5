"""The package layout: old module paths still import, with a deprecation
warning, and give the very module now at the new path."""

import importlib
import pickle
import subprocess
import sys
import warnings

import pytest

import crembo
from crembo._compat import MOVED
from crembo._deprecation import CremboDeprecationWarning


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_path_imports_the_new_module_with_a_warning(old):
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)  # a fresh import of the old name, whatever ran before
    with pytest.warns(CremboDeprecationWarning, match=f"{old} moved to {MOVED[old]}"):
        mod = importlib.import_module(old)
    assert mod is new
    assert mod.__spec__.name == MOVED[old]  # the moved module's own spec is kept


def test_old_names_as_attributes_and_from_imports(monkeypatch):
    # (an earlier import of crembo.tree leaves the attribute set, warned once)
    monkeypatch.delattr(crembo, "tree", raising=False)
    with pytest.warns(CremboDeprecationWarning, match="crembo.tree moved to crembo.trees.hist"):
        tree = crembo.tree
    assert tree.HistTreeClassifier is crembo.HistTreeClassifier
    sys.modules.pop("crembo.estimators", None)
    with pytest.warns(CremboDeprecationWarning):
        from crembo.estimators import CREMBOClassifier
    assert CREMBOClassifier is crembo.CREMBOClassifier
    with pytest.raises(AttributeError, match="no attribute 'not_a_module'"):
        crembo.not_a_module  # noqa: B018


def test_old_memo_path_leaves_the_memo_function():
    # crembo.memo is the package's function; importing the old module path
    # crembo.memo must not replace it with the module.
    sys.modules.pop("crembo.memo", None)
    with pytest.warns(CremboDeprecationWarning):
        importlib.import_module("crembo.memo")
    assert callable(crembo.memo) and crembo.memo is crembo.compress.memo.memo


def test_new_paths_import_without_warnings():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import crembo, crembo.compress.estimators, crembo.trees.hist, crembo.evaluation.datasets, crembo.cli\n"
        "from crembo.evaluation import generalization\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pickles_naming_an_old_module_load():
    # A pickle written before the layout names the class by its old module.
    est = crembo.HistTreeClassifier(max_depth=2)
    data = pickle.dumps(est, protocol=2).replace(b"crembo.trees.hist", b"crembo.tree")
    assert b"crembo.tree\n" in data or b"crembo.tree" in data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CremboDeprecationWarning)
        back = pickle.loads(data)
    assert type(back) is crembo.HistTreeClassifier and back.max_depth == 2
