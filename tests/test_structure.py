"""The shape of the code (issue 21): every module of the package has its place in docs/DESIGN.md's picture; no
file, class or function outgrows what a newcomer reads at once; analysis/ scripts only parse and call; bench/ and
launch/ run the installed package (no sys.path edits, no PYTHONPATH, no module loaded by file path)."""

import ast
import re

import pytest

from conftest import MODULE_FILES, ROOT

MAX_LINES = {"file": 350, "class": 120, "function": 60}
PY_FILES = sorted(p for d in ("frozen_glue", "analysis", "bench", "tests") for p in (ROOT / d).rglob("*.py")) + [
    ROOT / "run_glue_frozen.py"]


def design_section():
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    return text[text.index("## Where each fact lives"):]


@pytest.mark.parametrize("module", sorted(MODULE_FILES))
def test_every_module_is_in_the_design_picture(module):
    assert re.search(rf"(?<![\w.]){module}(\.py\b|\.[A-Za-z_])", design_section()), \
        f"{MODULE_FILES[module].relative_to(ROOT)} is not in docs/DESIGN.md's 'Where each fact lives'"


def sizes(path):
    """(kind, name, lines) of the file and of each class and function in it."""
    text = path.read_text()
    yield "file", path.name, len(text.splitlines())
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            yield "class", node.name, node.end_lineno - node.lineno + 1
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield "function", node.name, node.end_lineno - node.lineno + 1


def test_no_file_class_or_function_is_too_long():
    too_long = [f"{p.relative_to(ROOT)}: {kind} {name} has {n} lines (at most {MAX_LINES[kind]})"
                for p in PY_FILES for kind, name, n in sizes(p) if n > MAX_LINES[kind]]
    assert not too_long, "\n".join(too_long)


@pytest.mark.parametrize("script", sorted((ROOT / "analysis").glob("*.py")), ids=lambda p: p.name)
def test_analysis_scripts_only_parse_and_call(script):
    tree = ast.parse(script.read_text())
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert defined <= {"main", "parse"}, f"{script.name} defines {sorted(defined - {'main', 'parse'})}: the " \
                                         f"work belongs in the package (frozen_glue/report/report.py, pair_report.py)"


def test_bench_and_launch_use_the_installed_package():
    offending = []
    for path in [*sorted((ROOT / "bench").glob("*.py")), *sorted((ROOT / "launch").glob("*.sh"))]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"sys\.path|spec_from_file_location|PYTHONPATH=", code):
                offending.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offending, "\n".join(offending)
