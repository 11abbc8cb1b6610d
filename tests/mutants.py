"""`make mutants`: mutation testing (mutmut, pinned in requirements-dev.txt) of the modules whose bugs change a
published number, each against its own tests. Not part of `make test` or CI: it takes minutes per module.

    python tests/mutants.py                      # every module below
    MUTANTS="stats metrics" python tests/mutants.py

mutmut edits the files it mutates, so it runs in a copy of the tracked tree (never the working tree). Prints one
line per module (killed / total) and the surviving mutants' diffs; docs/mutants.md says why each survivor that
no test kills is equivalent. Not collected by pytest (no test_ prefix)."""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# module -> (test files, -k expression): the tests that state its rules, one pytest call (mutmut runs the command
# without a shell)
TARGETS = {
    "stats": (["tests/test_statistics.py", "tests/test_analysis.py", "tests/test_rules.py"],
              "mean_std or welch or mcnemar or bootstrap or holm or cka"),
    "metrics": (["tests/test_statistics.py"], "metric or mean_std or welch"),
    "compare": (["tests/test_analysis.py", "tests/test_statistics.py", "tests/test_rules.py"],
                "disagreement or majority or mismatched or slices or past_tense or mcnemar or holm"),
    "diagnostics": (["tests/test_collapse.py"], ""),
    "pooling": (["tests/test_pooling.py"], ""),
    "layout": (["tests/test_rules.py", "tests/test_outputs.py"], "torn or strict"),
    "runners": (["tests/test_rules.py"], "cache_key or feature_dtype"),
    "cache": (["tests/test_rules.py", "tests/test_feature_cache.py"],
              "load_entry or feature_dtype or corrupt or truncated or key_component"),
}


def mutmut():
    found = shutil.which("mutmut") or str(Path(sys.executable).parent / "mutmut")
    if not Path(found).exists():
        sys.exit("error: mutmut is not installed; pip install -r requirements-dev.txt")
    return found


def copy_tree(dest: Path):
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def pytest_command(tests, python):
    files, expression = tests
    return (f"{python} -m pytest -x -q -p no:xdist -p no:cacheprovider {' '.join(files)}"
            + (f" -k '{expression}'" if expression else ""))


def run_module(module, tests, copy, python):
    """({status: [mutant ids]}, survivors' diffs) of one module's mutants, from mutmut's own cache."""
    env = {**os.environ, "PYTHONPATH": str(copy), "HF_HUB_OFFLINE": "1"}
    (copy / ".mutmut-cache").unlink(missing_ok=True)
    subprocess.run([mutmut(), "run", "--paths-to-mutate", f"frozen_glue/{module}.py", "--runner",
                    pytest_command(tests, python), "--no-progress", "--simple-output"], cwd=copy, env=env)
    with sqlite3.connect(copy / ".mutmut-cache") as db:
        rows = db.execute("select id, status from Mutant").fetchall()
    by_status = {}
    for mutant, status in rows:
        by_status.setdefault(status, []).append(mutant)
    diffs = [subprocess.run([mutmut(), "show", str(i)], cwd=copy, env=env, capture_output=True, text=True).stdout
             for i in by_status.get("bad_survived", [])]
    return by_status, diffs


def main():
    wanted = os.environ.get("MUTANTS", "").split() or list(TARGETS)
    unknown = [m for m in wanted if m not in TARGETS]
    if unknown:
        sys.exit(f"error: MUTANTS={' '.join(unknown)}: choose from {' '.join(TARGETS)}")
    python = os.environ.get("PYTHON", sys.executable)
    report = []
    with tempfile.TemporaryDirectory(prefix="frozen-glue-mutants-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        for module in wanted:
            by_status, diffs = run_module(module, TARGETS[module], copy, python)
            total = sum(len(v) for v in by_status.values())
            killed = len(by_status.get("ok_killed", [])) + len(by_status.get("bad_timeout", []))
            line = (f"{module}: {killed}/{total} killed ({100 * killed / max(total, 1):.0f}%); "
                    + ", ".join(f"{k}: {len(v)}" for k, v in sorted(by_status.items()) if k != "ok_killed"))
            print(line, flush=True)
            report.append(line)
            for diff in diffs:
                print(diff, flush=True)
    print("\n".join(["", "summary:", *report]))


if __name__ == "__main__":
    main()
