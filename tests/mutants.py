"""`make mutants`: mutation testing (mutmut 3, pinned in requirements-dev.txt) of the modules whose bugs change a
published number. TESTS_OF below names them and, for each, the in-process tests that state its rules. Each module
runs in its own copy of the tree (.mutants/<module>/, made anew each time, so no result of an older tree is reused),
whose pyproject.toml gets `only_mutate` = that module and the test selection = its tests; mutmut then forks a warm
process per mutant and runs only the selected tests that reach the mutated function. A mutant costs the few fast
tests that state its module's rules, not the whole suite or a Python start with torch.

    python tests/mutants.py                      # every module in TESTS_OF
    MUTANTS="stats metrics" python tests/mutants.py

Prints one line per module (mutants, checked, killed, survived, timed out, other, equivalent, score, minutes) and
every survivor that docs/mutants.md does not record as equivalent; the score is (killed + timed out) / (checked -
equivalent): a mutant not run yet (an interrupted run) is left out, one that no test reaches counts against it.
Exits 1 when a module's score falls below the one docs/mutants.md records (the ratchet), so a change that weakens
the suite is caught by whoever runs it. Not collected by pytest (no test_ prefix); not in `make test`."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutants.md"
WORK = ROOT / ".mutants"  # one copy of the tree per module (git-ignored)
ROW = re.compile(r"^\| `(frozen_glue/[\w/]+\.py)` \|" + r" (\d+) \|" * 7 + r" ([\d.]+) % \|")
EQUIVALENT = re.compile(r"^- `(frozen_glue\.[\w.]+__mutmut_\d+)`: ", re.M)

# module -> the tests that state its rules, run in process (a test that starts the package in another process is
# skipped there by conftest; see docs/mutants.md). Chosen for what they state, then for speed: a mutant runs the
# selected tests that reach its function, until one fails.
TESTS_OF = {  # in the order a run takes them: the quick ones first
    "frozen_glue/measures/stats.py": ["tests/test_mutant_rules_stats.py", "tests/test_statistics.py"],
    "frozen_glue/core/metrics.py": ["tests/test_mutant_rules.py", "tests/test_statistics.py"],
    "frozen_glue/model/fingerprinting.py": ["tests/test_mutant_rules_model.py"],
    "frozen_glue/features/cache_key.py": ["tests/test_mutant_rules_cache.py"],
    "frozen_glue/features/cache_layout.py": ["tests/test_mutant_rules_cache.py", "tests/test_cache_stamp.py"],
    "frozen_glue/training/selection.py": ["tests/test_mutant_rules_selection.py"],
    "frozen_glue/measures/information.py": ["tests/test_mutant_rules_information.py", "tests/test_mutant_rules_runs.py"],
    "frozen_glue/core/layout.py": ["tests/test_mutant_rules_layout.py", "tests/test_mutant_rules_runs.py",
                                   "tests/test_readers.py"],
    "frozen_glue/core/identity.py": ["tests/test_mutant_rules_runs.py", "tests/test_readers.py"],
    "frozen_glue/measures/diagnostics.py": ["tests/test_mutant_rules_diagnostics.py", "tests/test_collapse.py"],
    "frozen_glue/report/predictions.py": ["tests/test_mutant_rules_predictions.py", "tests/test_analysis.py",
                                          "tests/test_verdicts.py", "tests/test_readers.py"],
    "frozen_glue/report/compare.py": ["tests/test_mutant_rules_report.py", "tests/test_mutant_rules_runs.py",
                                      "tests/test_analysis.py", "tests/test_verdicts.py"],
    "frozen_glue/features/cache.py": ["tests/test_mutant_rules_cache.py", "tests/test_cache_stamp.py"],
    "frozen_glue/sweep/sweep_plan.py": ["tests/test_mutant_rules_sweep.py", "tests/test_sweep.py", "tests/test_rules.py"],
    "frozen_glue/science/zeroshot.py": ["tests/test_mutant_rules_zeroshot.py", "tests/test_zeroshot.py",
                                        "tests/test_zeroshot_chat.py"],
    "frozen_glue/model/pooling.py": ["tests/test_mutant_rules_pooling.py", "tests/test_pooling.py"],
    "frozen_glue/science/information_probes.py": ["tests/test_mutant_rules_information.py", "tests/test_information.py"],
}


def configured() -> list:
    return list(TESTS_OF)


def recorded() -> tuple:
    """({module path: recorded score}, {equivalent mutant names}) from docs/mutants.md."""
    text = DOC.read_text() if DOC.is_file() else ""
    scores = {m[1]: float(m[9]) for m in map(ROW.match, text.splitlines()) if m}
    return scores, set(EQUIVALENT.findall(text))


def statuses(path: str) -> dict:
    """{mutant name: status} of one module, from mutmut's own meta file and its own exit-code table."""
    from mutmut.stats import status_by_exit_code

    meta = WORK / Path(path).stem / "mutants" / f"{path}.meta"
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
    return {name: status_by_exit_code.get(code, "not checked") if code is not None else "not checked"
            for name, code in codes.items()}


def table(paths, equivalent) -> list:
    """One row per module: path, mutants, checked (run so far), killed, survived, timed out, other (no test reached
    it, suspicious, ...), equivalent, score (percent of the checked, non-equivalent mutants that a test killed or
    timed out)."""
    rows = []
    for path in paths:
        found = statuses(path)
        checked = {n: s for n, s in found.items() if s != "not checked"}
        timeout = sum(s == "timeout" for s in checked.values())
        killed = sum(s == "killed" for s in checked.values())
        survived = [n for n, s in checked.items() if s == "survived"]
        same = [n for n in survived if n in equivalent]
        denominator = len(checked) - len(same)
        rows.append({"path": path, "total": len(found), "checked": len(checked), "killed": killed,
                     "survived": len(survived), "timeout": timeout,
                     "other": len(checked) - killed - timeout - len(survived), "equivalent": len(same),
                     "score": 100.0 * (killed + timeout) / denominator if denominator else 100.0,
                     "open": [n for n in survived if n not in equivalent]})
    return rows


def row(r) -> str:
    return (f"| `{r['path']}` | {r['total']} | {r['checked']} | {r['killed']} | {r['survived']} | {r['timeout']} | "
            f"{r['other']} | {r['equivalent']} | {r['score']:.1f} % |")


def fallen(rows, scores) -> list:
    """The ratchet: one line per module whose score is below the one docs/mutants.md records."""
    return [f"{r['path']}: {r['score']:.1f} % < {scores[r['path']]:.1f} % recorded" for r in rows
            if r["path"] in scores and r["checked"] and r["score"] < scores[r["path"]] - 0.05]


def prepare(path: str) -> Path:
    """A fresh copy of the tree (the files git tracks or would add, so uncommitted work counts) for one module's
    run, its pyproject.toml told to mutate that module and select its tests."""
    work = WORK / Path(path).stem
    shutil.rmtree(work, ignore_errors=True)
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    pyproject = work / "pyproject.toml"
    chosen = f"only_mutate = {json.dumps([path])}\npytest_add_cli_args_test_selection = {json.dumps(TESTS_OF[path])}\n"
    pyproject.write_text(pyproject.read_text().replace("[tool.mutmut]\n", "[tool.mutmut]\n" + chosen, 1))
    return work


def main() -> int:
    wanted = os.environ.get("MUTANTS", "").split()
    paths = [p for p in configured() if not wanted or Path(p).stem in wanted]
    unknown = set(wanted) - {Path(p).stem for p in configured()}
    if unknown:
        sys.exit(f"error: MUTANTS={' '.join(sorted(unknown))}: choose from "
                 f"{' '.join(Path(p).stem for p in configured())}")
    mutmut = Path(sys.executable).parent / "mutmut"
    # FROZEN_GLUE_MUTATION_RUN: conftest skips a test where it starts a process (no_processes_in_a_mutation_run)
    # FROZEN_GLUE_MUTATION_ASSETS: the session's tiny models and sweeps are built once for the whole run, not once
    # per forked mutant process (conftest.built_once)
    shutil.rmtree(WORK / "assets", ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FROZEN_GLUE_MUTATION_RUN": "1",
           "FROZEN_GLUE_MUTATION_ASSETS": str(WORK / "assets")}
    started, minutes = time.monotonic(), {}
    for path in paths:
        began = time.monotonic()
        print(f"== {path}: {' '.join(TESTS_OF[path])}", flush=True)
        subprocess.run([str(mutmut), "run"], cwd=prepare(path), env=env)
        minutes[path] = (time.monotonic() - began) / 60
    scores, equivalent = recorded()
    rows = table(paths, equivalent)
    print(f"\nmutmut run: {(time.monotonic() - started) / 60:.1f} min wall for {sum(r['checked'] for r in rows)} "
          f"checked mutants of {len(rows)} module(s)")
    print("| module | mutants | checked | killed | survived | timed out | other | equivalent | score | minutes |")
    for r in rows:
        print(f"{row(r)} {minutes[r['path']]:.1f} |")
    fell = fallen(rows, scores)
    for r in rows:
        for name in r["open"]:
            print(f"survived: {name}   (cd {WORK / Path(r['path']).stem} && mutmut show {name})")
    if fell:
        print("the mutation score fell (docs/mutants.md records the last scores):\n  " + "\n  ".join(fell))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
