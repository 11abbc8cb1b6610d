"""Every code name the docs cite exists: `frozen_glue/<module>.py`, `tests/test_<name>.py` and other project paths;
`module.name` for a module of the package; "module.py's name"; and "`frozen_glue/<module>.py`: `a`, `b`" lists. Read
in docs/, README.md, and every docstring and comment of the project's Python files (a renamed function leaves no
stale pointer behind)."""

import ast
import importlib
import io
import re
import tokenize

import pytest

from conftest import MODULE_FILES, ROOT, dotted

MODULES = set(MODULE_FILES)
SCRIPTS = {"summarize", "disagreements", "drift", "run_glue_frozen"}  # analysis/ and the shim: cited by file name
# this file's own examples are stale on purpose
PY_FILES = sorted(p for d in ("frozen_glue", "analysis", "tests", "bench") for p in (ROOT / d).rglob("*.py")
                  if p.name != "test_docs.py") + [ROOT / "run_glue_frozen.py"]

EXTENSIONS = {"py", "json", "jsonl", "log", "tsv", "csv", "md", "png", "tex", "txt", "safetensors", "lock", "sh", "html", "js", "svg"}
PATH = re.compile(r"\b((?:frozen_glue|analysis|tests|launch|bench|docs|ds_configs)/[\w./-]*\w)")
DOTTED = re.compile(r"(?<![\w./])(" + "|".join(sorted(MODULES, key=len, reverse=True)) + r")\.([A-Za-z_]\w*)\b")
# "run.py's cache_parts": a name with an underscore or a capital (not "cache.py's model.json", "x.py's command")
POSSESSIVE = re.compile(r"\b(\w+)\.py's `?([a-z]\w*_\w*|[A-Z]\w*)\b(?!\.)")
LISTED = re.compile(r"`frozen_glue/(?:\w+/)?(\w+)\.py`: ((?:`[\w.]+`(?:, | and )?)+)")


def prose(path):
    """The text of a file that is prose: all of a .md; a .py's docstrings and comments."""
    text = path.read_text()
    if path.suffix != ".py":
        return text
    parts = [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            parts.append(ast.get_docstring(node) or "")
    return "\n".join(parts)


def sources():
    """(file, its prose) for README.md, docs/ and the Python files."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *PY_FILES]:
        yield str(path.relative_to(ROOT)), prose(path)


def citations(texts):
    """(where, kind, what) for every citation in `texts` ((where, text) pairs)."""
    for where, text in texts:
        for m in PATH.finditer(text):
            yield where, "path", m.group(1)
        for m in DOTTED.finditer(text):
            if m.group(2) not in EXTENSIONS:  # `cache.py`, `run.log`: a file name, not a name in a module
                yield where, "name", f"{m.group(1)}.{m.group(2)}"
        for m in POSSESSIVE.finditer(text):
            yield where, "name", f"{m.group(1)}.{m.group(2)}"
        for m in LISTED.finditer(text):
            for name in re.findall(r"`([\w.]+)`", m.group(2)):
                yield where, "name", f"{m.group(1)}.{name.split('.')[0]}"


def stale(found):
    return sorted({f"{where}: {what}" for where, kind, what in found
                   if (kind == "path" and not exists(what)) or (kind == "name" and not defined(*what.split(".", 1)))})


def defined(module: str, name: str) -> bool:
    if module in MODULES:
        mod = importlib.import_module(dotted(MODULE_FILES[module]))
        return hasattr(mod, name)
    if module in SCRIPTS:
        path = ROOT / ("run_glue_frozen.py" if module == "run_glue_frozen" else f"analysis/{module}.py")
        return re.search(rf"^(def|class) {name}\b|^{name}\s*=", path.read_text(), re.M) is not None
    return True  # another package's module (np.mean, torch.float16): not ours to check


def exists(path: str) -> bool:
    path = path.rstrip(".")
    if any(ch in path for ch in "*<{"):  # a pattern (runs/<model>/..., *.json): its folder must exist
        path = re.split(r"[*<{]", path)[0].rsplit("/", 1)[0]
    return (ROOT / path).exists()


def test_the_scanner_finds_what_it_must():
    found = set(citations(sources()))
    assert ("docs/DESIGN.md", "name", "layout.iter_runs") in found
    assert ("docs/DESIGN.md", "path", "frozen_glue/model/pooling.py") in found
    assert any(kind == "name" and where.startswith("frozen_glue/") for where, kind, _ in found)  # docstrings too


def test_every_cited_file_and_name_exists():
    missing = stale(citations(sources()))
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("text, expected", [
    ("Must not decide the key (run.py's cache_parts does)", "run.cache_parts"),
    ("see `tests/test_flags.py`", "tests/test_flags.py"),
    ("`frozen_glue/model/pooling.py`: `CANDIDATES`, `pooled_positions`", "pooling.pooled_positions"),
    ("through layout.iter_run", "layout.iter_run"),
])
def test_a_stale_citation_is_caught(text, expected):
    """What the review found: a function cited in the wrong module, a test file that does not exist, a listed name
    that is not there, a misspelt name."""
    assert stale(citations([("x.md", text)])) == [f"x.md: {expected}"]
