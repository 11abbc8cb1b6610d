"""make mutants' bookkeeping (tests/mutants.py): statuses come from mutmut's own meta files and exit-code table,
the score leaves out unchecked and equivalent mutants and counts the ones no test reaches against the module, and
the ratchet names a module whose score fell below docs/mutants.md's."""

import json
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests"))
mutants = pytest.importorskip("mutants")
pytest.importorskip("mutmut")


def test_score_equivalents_and_the_ratchet(tmp_path, monkeypatch):
    monkeypatch.setattr(mutants, "WORK", tmp_path)
    meta = tmp_path / "x" / "mutants" / "frozen_glue" / "x.py.meta"
    meta.parent.mkdir(parents=True)
    # killed (1), killed, survived (0), survived (recorded as equivalent), no tests (33), not run (None)
    codes = {"frozen_glue.x.f__mutmut_1": 1, "frozen_glue.x.f__mutmut_2": 1, "frozen_glue.x.f__mutmut_3": 0,
             "frozen_glue.x.f__mutmut_4": 0, "frozen_glue.x.f__mutmut_5": 33, "frozen_glue.x.f__mutmut_6": None}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    (r,) = mutants.table(["frozen_glue/x.py"], {"frozen_glue.x.f__mutmut_4"})
    assert (r["total"], r["checked"], r["killed"], r["survived"], r["other"], r["equivalent"]) == (6, 5, 2, 2, 1, 1)
    assert r["score"] == pytest.approx(100 * 2 / 4)  # 2 killed of the 4 checked, non-equivalent mutants
    assert r["open"] == ["frozen_glue.x.f__mutmut_3"]
    line = mutants.row(r)
    doc = tmp_path / "mutants.md"
    doc.write_text(line.replace("50.0 %", "60.0 %") + "\n- `frozen_glue.x.f__mutmut_4`: the same value\n")
    monkeypatch.setattr(mutants, "DOC", doc)
    scores, equivalent = mutants.recorded()
    assert scores == {"frozen_glue/x.py": 60.0} and equivalent == {"frozen_glue.x.f__mutmut_4"}
    assert mutants.fallen([r], scores) == ["frozen_glue/x.py: 50.0 % < 60.0 % recorded"]
    assert mutants.fallen([r], {"frozen_glue/x.py": 50.0}) == []


def test_a_mutation_run_skips_a_test_where_it_starts_the_package_in_a_process(tmp_path):
    """With FROZEN_GLUE_MUTATION_RUN=1 (tests/mutants.py sets it), the suite's conftest skips a test at the point
    where it starts the package in another process (here `python -m frozen_glue...`), after what it checked in
    process; git and a process that cannot import the package still run; without the flag every process runs."""
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    package = repr([sys.executable, "-m", "frozen_glue.sweep.calibration", "--help"])
    (tmp_path / "test_probe.py").write_text(
        "import subprocess\n\n"
        "def test_in_process_then_the_package():\n    assert 1 + 1 == 2\n"
        f"    assert subprocess.run({package}, capture_output=True).returncode == 0\n\n"
        "def test_in_process_fails_before_it():\n    assert 1 + 1 == 3\n"
        f"    subprocess.run({package})\n\n"
        "def test_git_and_other_programs_run():\n"
        "    assert subprocess.run(['git', '--version'], capture_output=True).returncode == 0\n"
        "    assert subprocess.run('true', shell=True).returncode == 0\n")

    def outcome(flag):
        env = {**os.environ, "FROZEN_GLUE_MUTATION_RUN": flag}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                               str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path)
        return proc.stdout.splitlines()[-1]

    assert outcome("1").startswith("1 failed, 1 passed, 1 skipped")
    assert outcome("0").startswith("1 failed, 2 passed")


def test_what_starts_the_package():
    import sys

    from conftest import starts_the_package

    assert starts_the_package([sys.executable, str(ROOT / "run_glue_frozen.py"), "--help"])
    assert starts_the_package(["bash", "launch/all_tasks.sh"]) and starts_the_package(["make", "demo"])
    assert starts_the_package([sys.executable, "analysis/summarize.py"])
    assert starts_the_package("deepspeed --num_gpus 1 x") and starts_the_package([sys.executable, "-c", "import frozen_glue"])
    assert not starts_the_package(["git", "rev-parse", "HEAD"]) and not starts_the_package("nvidia-smi -L")
    assert not starts_the_package([sys.executable, "-mpip", "list", "--format=freeze"])
    assert not starts_the_package(["chromium", "--headless", "--dump-dom", "file:///tmp/x.html"])
