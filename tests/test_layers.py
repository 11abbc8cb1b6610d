"""The house (issue 31, docs/DESIGN.md "The layers"): imports only go down. import-linter's contracts in
pyproject.toml hold, and fail when an upward import is added; the package and bench/ have no import circles; each
subpackage's docstring says truly what it imports and what imports it; the report starts without torch."""

import ast
import re
import shutil
import subprocess
import sys

import grimp
import networkx as nx
import pytest

from conftest import MODULE_FILES, ROOT, SUBPACKAGES

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(cwd, env=None):
    return subprocess.run(LINT, cwd=cwd, capture_output=True, text=True, env=env)


def test_the_import_contracts_hold():
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module, upward, contract", [
    ("core/errors.py", "from frozen_glue.sweep import sweep_plan", "subpackages import only the layers below them"),
    ("report/results.py", "import torch", "the report is a pure function of run folders"),
    ("model/fingerprinting.py", "from frozen_glue.model import loading", "identity and fingerprints take what they hash"),
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward, contract):
    """The same contracts over a copy of the package with one upward import added: lint-imports fails and names it."""
    shutil.copytree(ROOT / "frozen_glue", tmp_path / "frozen_glue", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "frozen_glue" / module
    path.write_text(path.read_text() + f"\n{upward}  # the planted upward import\n")
    done = lint(tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and contract in done.stdout and "BROKEN" in done.stdout, done.stdout + done.stderr
    assert f"frozen_glue.{module[:-3].replace('/', '.')}" in done.stdout, done.stdout


def module_graph(package="frozen_glue"):
    graph = grimp.build_graph(package)
    out = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            out.add_edge(module, imported)
    return out


def test_no_import_circles_in_the_package():
    circles = [" -> ".join(c) for c in nx.simple_cycles(module_graph())]
    assert circles == [], circles


def test_no_import_circles_in_bench():
    """bench/'s scripts import each other by name (bench/ is on sys.path when one runs): no two import each other."""
    names = {p.stem for p in (ROOT / "bench").glob("*.py")}
    graph = nx.DiGraph()
    for path in (ROOT / "bench").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            graph.add_edges_from((path.stem, t) for t in targets if t in names)
    assert list(nx.simple_cycles(graph)) == []


def declared(doc: str, label: str) -> set:
    """The subpackages a docstring names after `label` ('Imports:' up to 'Imported by:', or 'Imported by:')."""
    text = doc.split(label, 1)[1]
    if label == "Imports:":
        text = text.split("Imported by:", 1)[0]
    return {w for w in re.findall(r"[a-z_]+", text) if w in SUBPACKAGES}


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_subpackage_says_truly_what_it_imports(package):
    graph = grimp.build_graph("frozen_glue")

    def imports(a, b):
        return graph.direct_import_exists(importer=f"frozen_glue.{a}", imported=f"frozen_glue.{b}", as_packages=True)

    doc = ast.get_docstring(ast.parse((ROOT / "frozen_glue" / package / "__init__.py").read_text()))
    others = [p for p in SUBPACKAGES if p != package]
    assert declared(doc, "Imports:") == {p for p in others if imports(package, p)}
    assert declared(doc, "Imported by:") == {p for p in others if imports(p, package)}


def test_module_stems_are_unique():
    """The docs cite a module by its stem (`layout.counted`, "runners.py's cache_parts"): one file per stem."""
    stems = [p.stem for p in (ROOT / "frozen_glue").rglob("*.py") if p.stem != "__init__"]
    assert len(stems) == len(set(stems)) == len(MODULE_FILES)


def test_the_report_starts_without_torch():
    code = ("import runpy, sys; sys.argv = ['summarize', '--help']\n"
            "try:\n    runpy.run_path('analysis/summarize.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'accelerate') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
