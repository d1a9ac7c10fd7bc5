"""python/crembo/_core.pyi describes the built crembo._core: the same names
(functions, classes, their methods and properties, module attributes) both
ways, and the same parameter names, in order, as the pybind11 signatures.

A binding added to cpp/bindings/module.cpp must be added to the stub; the
failure message lists what is missing on which side."""

import ast
import re
from pathlib import Path

import pytest

import crembo
from crembo import _core

STUB = Path(crembo.__file__).with_name("_core.pyi")
# Every cuda_* function but these is defined only in a CUDA build (cuda_built is True).
CUDA_ALWAYS = {"cuda_built", "cuda_available", "cuda_device_name"}
# pybind11's own members of every bound class.
PYBIND_INTERNAL = {"_pybind11_conduit_v1_"}


def _stub_tree():
    if not STUB.is_file():
        pytest.fail(f"{STUB} is missing from the installed package")
    return ast.parse(STUB.read_text())


def _params(fn):
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n != "self"]


def stub_api():
    """({name: params or None}, {class: {member: params or None}}) of the stub's public API."""
    functions, classes = {}, {}
    for node in _stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = _params(node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            functions[node.target.id] = None
        elif isinstance(node, ast.ClassDef):
            members = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    is_prop = any(isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list)
                    members[item.name] = None if is_prop else _params(item)
            classes[node.name] = members
    functions = {k: v for k, v in functions.items() if not k.startswith("_") or k == "__version__"}
    return functions, classes


def runtime_api():
    names = {n for n in dir(_core) if not n.startswith("_") or n == "__version__"}
    classes = {n for n in names if isinstance(getattr(_core, n), type)}
    members = {
        c: {m for m in vars(getattr(_core, c)) if not (m.startswith("__") and m != "__init__")} - PYBIND_INTERNAL
        for c in classes
    }
    return names - classes, members


def doc_params(obj):
    """Parameter names from the first line of a pybind11 docstring,
    'name(a: T, b: T = d) -> R'; None when it has no such line."""
    line = (obj.__doc__ or "").lstrip().split("\n", 1)[0]
    m = re.match(r"^\w+\((.*)\)\s*->", line)
    if not m:
        return None
    parts, depth, cur = [], 0, ""
    for ch in m.group(1):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    names = [p.split(":", 1)[0].split("=", 1)[0].strip() for p in parts]
    return [n for n in names if n not in ("self", "*", "/")]


def test_module_names_match_both_ways():
    stub_funcs, stub_classes = stub_api()
    rt_funcs, rt_members = runtime_api()
    expected_missing = (
        set() if _core.cuda_built else {n for n in stub_funcs if n.startswith("cuda_") and n not in CUDA_ALWAYS}
    )
    missing_in_stub = sorted((rt_funcs | set(rt_members)) - set(stub_funcs) - set(stub_classes))
    missing_in_module = sorted((set(stub_funcs) | set(stub_classes)) - rt_funcs - set(rt_members) - expected_missing)
    assert not missing_in_stub and not missing_in_module, (
        f"crembo._core and python/crembo/_core.pyi differ.\n"
        f"  in the module but not in the stub (add them to _core.pyi): {missing_in_stub}\n"
        f"  in the stub but not in the module (stale stub entries, or a binding went away): {missing_in_module}"
    )


def test_class_members_match_both_ways():
    _, stub_classes = stub_api()
    _, rt_members = runtime_api()
    problems = []
    for cls in sorted(set(stub_classes) & set(rt_members)):
        stub_m, rt_m = set(stub_classes[cls]), rt_members[cls]
        if rt_m - stub_m:
            problems.append(f"{cls}: in the module but not in the stub: {sorted(rt_m - stub_m)}")
        if stub_m - rt_m:
            problems.append(f"{cls}: in the stub but not in the module: {sorted(stub_m - rt_m)}")
    assert not problems, "\n".join(problems)


def test_parameter_names_match_the_pybind11_signatures():
    stub_funcs, stub_classes = stub_api()
    problems = []
    for name, params in sorted(stub_funcs.items()):
        if params is None or not hasattr(_core, name):
            continue
        got = doc_params(getattr(_core, name))
        if got is not None and got != params:
            problems.append(f"{name}: module {got}, stub {params}")
    for cls, members in sorted(stub_classes.items()):
        if not hasattr(_core, cls):
            continue
        for name, params in sorted(members.items()):
            if params is None or not hasattr(getattr(_core, cls), name):
                continue
            got = doc_params(getattr(getattr(_core, cls), name))
            if got is not None and got != params:
                problems.append(f"{cls}.{name}: module {got}, stub {params}")
    assert not problems, "parameter names differ between crembo._core and _core.pyi:\n" + "\n".join(problems)


def test_stub_properties_are_properties():
    _, stub_classes = stub_api()
    problems = []
    for cls, members in stub_classes.items():
        for name, params in members.items():
            attr = vars(getattr(_core, cls)).get(name)
            if attr is not None and (params is None) != isinstance(attr, property):
                problems.append(f"{cls}.{name}")
    assert not problems, f"property in one and method in the other: {problems}"
