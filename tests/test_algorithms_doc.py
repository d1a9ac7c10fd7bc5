"""The code cites docs/ALGORITHMS.md by section: every citation must name
that file and a section it has."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ALGORITHMS.md"
SOURCES = ("python", "cpp", "cuda", "tests")
SUFFIXES = {".py", ".cpp", ".hpp", ".cu", ".cuh", ".h"}


def _citing_files():
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                text = path.read_text(errors="replace")
                if "ALGORITHMS.md" in text:
                    yield path, text


def test_citations_name_docs_algorithms_and_existing_sections():
    if not DOC.is_file():
        pytest.skip("docs/ are not next to the tests (a wheel's test run)")
    sections = set(re.findall(r"^## (\d+)\. ", DOC.read_text(), flags=re.M))
    assert sections >= {"1", "2", "3", "4", "5", "6"}
    files = list(_citing_files())
    assert files, "no source cites docs/ALGORITHMS.md"
    for path, text in files:
        if path.name == Path(__file__).name:
            continue
        for m in re.finditer(r"(\S*)ALGORITHMS\.md", text):
            assert m.group(1).endswith("docs/"), f"{path}: cites {m.group(0)!r}, not docs/ALGORITHMS.md"
        for m in re.finditer(r"ALGORITHMS\.md``?,?\s+sections?\s+(\d+)(?:\s+and\s+(\d+))?", text):
            for n in filter(None, m.groups()):
                assert n in sections, f"{path}: cites section {n} of docs/ALGORITHMS.md, which has {sorted(sections)}"
