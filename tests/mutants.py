"""`make mutants`: mutation testing (mutmut 3, pinned in requirements-dev.txt) of the modules whose bugs change a
published number. pyproject.toml's [tool.mutmut] lists them and the in-process tests that state their rules. mutmut
works in mutants/ (a copy of the tree; the tree itself is never edited), forks a warm process per mutant and runs
only the tests that reach the mutated function, so a mutant costs its tests, not a Python start with torch.

    python tests/mutants.py                      # every configured module
    MUTANTS="stats metrics" python tests/mutants.py

Prints one line per module (mutants, checked, killed, survived, timed out, other, equivalent, score) and every
survivor that docs/mutants.md does not record as equivalent; the score is (killed + timed out) / (checked -
equivalent): a mutant not run yet (an interrupted run) is left out, one that no test reaches counts against it. Exits 1 when a module's score falls below the one docs/mutants.md records (the ratchet), so a change that
weakens the suite is caught by whoever runs it. Not collected by pytest (no test_ prefix); not in `make test`."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutants.md"
ROW = re.compile(r"^\| `(frozen_glue/[\w/]+\.py)` \|" + r" (\d+) \|" * 7 + r" ([\d.]+) % \|")
EQUIVALENT = re.compile(r"^- `(frozen_glue\.[\w.]+__mutmut_\d+)`: ", re.M)


def configured() -> list:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]


def recorded() -> tuple:
    """({module path: recorded score}, {equivalent mutant names}) from docs/mutants.md."""
    text = DOC.read_text() if DOC.is_file() else ""
    scores = {m[1]: float(m[9]) for m in map(ROW.match, text.splitlines()) if m}
    return scores, set(EQUIVALENT.findall(text))


def statuses(path: str) -> dict:
    """{mutant name: status} of one module, from mutmut's own meta file and its own exit-code table."""
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / f"{path}.meta"
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


def main() -> int:
    wanted = os.environ.get("MUTANTS", "").split()
    paths = [p for p in configured() if not wanted or Path(p).stem in wanted]
    unknown = set(wanted) - {Path(p).stem for p in configured()}
    if unknown:
        sys.exit(f"error: MUTANTS={' '.join(sorted(unknown))}: choose from "
                 f"{' '.join(Path(p).stem for p in configured())}")
    patterns = [p[:-3].replace("/", ".") + ".*" for p in paths] if wanted else []
    mutmut = Path(sys.executable).parent / "mutmut"
    # FROZEN_GLUE_MUTATION_RUN: conftest skips a test where it starts a process (no_processes_in_a_mutation_run)
    started = time.monotonic()
    subprocess.run([str(mutmut), "run", *patterns], cwd=ROOT,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "FROZEN_GLUE_MUTATION_RUN": "1"})
    scores, equivalent = recorded()
    rows = table(paths, equivalent)
    print(f"\nmutmut run: {(time.monotonic() - started) / 60:.1f} min wall for {sum(r['checked'] for r in rows)} "
          f"checked mutants of {len(rows)} module(s)")
    print("| module | mutants | checked | killed | survived | timed out | other | equivalent | score |")
    for r in rows:
        print(row(r))
    fell = fallen(rows, scores)
    for r in rows:
        for name in r["open"]:
            print(f"survived: {name}   (mutmut show {name})")
    if fell:
        print("the mutation score fell (docs/mutants.md records the last scores):\n  " + "\n  ".join(fell))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
