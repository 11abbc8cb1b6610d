"""Inputs that used to break the tool (issue 20), each run as the user runs it: one line on stderr, exit 2, nothing
half-written. Tests run as root, which ignores file permissions: an unwritable place is a path under a regular
file (the same start-up check, layout.check_writable, refuses both), and the read-only branch is driven in-process."""

import errno
import json
import os
import subprocess
import sys

import pytest

from frozen_glue.core import layout
from frozen_glue.core.errors import UserError, run_cli

from conftest import ROOT, TRAIN, one_error, plan_sweep

PY = sys.executable
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def refused(proc):
    """The single stderr line of a user error, exit 2 (fails on more lines, a traceback, or another code)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return one_error(proc.stderr)


def cli(*command, **env):
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, env={**ENV, **env},
                          timeout=300, cwd=ROOT)


def run_args(assets, out, *extra):
    return [PY, ROOT / "run_glue_frozen.py", "--model_name_or_path", assets["base"], "--task_name", "cola",
            "--glue_dir", assets["glue_dir"], "--output_dir", out, *TRAIN, *extra]


# --------------------------------------------------------------------------------------- unwritable places


def test_output_dir_that_cannot_be_written(assets, tmp_path):
    (tmp_path / "file").write_text("x")
    line = refused(cli(*run_args(assets, tmp_path / "file" / "out")))
    assert line == f"error: --output_dir {tmp_path}/file/out: {tmp_path}/file is a file, not a folder; give a " \
                   f"folder path"


def test_feature_cache_that_cannot_be_written_leaves_no_run_folder(assets, tmp_path):
    (tmp_path / "file").write_text("x")
    line = refused(cli(*run_args(assets, tmp_path / "out", "--feature_cache", tmp_path / "file" / "cache")))
    assert line.startswith(f"error: --feature_cache {tmp_path}/file/cache: {tmp_path}/file is a file")
    assert not (tmp_path / "out").exists()  # no half-made run folder with config.json


def test_summarize_out_that_cannot_be_written(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "file").write_text("x")
    line = refused(cli(PY, ROOT / "analysis" / "summarize.py", "--runs", tmp_path / "runs",
                         "--out", tmp_path / "file" / "reports"))
    assert line.startswith(f"error: --out {tmp_path}/file/reports: {tmp_path}/file is a file")


def test_read_only_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """A read-only mount or another user's folder: os.access says no (root's permission bypass aside, EROFS
    still says no on a read-only mount)."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match=f"--out {tmp_path}/new/deeper: {tmp_path} is not writable"):
        layout.check_writable(tmp_path / "new" / "deeper", "--out")
    assert not (tmp_path / "new").exists()


def test_a_write_that_fails_later_is_one_line_too(capsys):
    def full_disk(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/x/all_results.json")

    assert run_cli(full_disk, []) == 2
    assert capsys.readouterr().err == ("error: cannot write /x/all_results.json: No space left on device; free space "
                                       "or give a writable folder\n")

    def bug(argv):
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError):  # not a place the user can fix: a crash, with its traceback
        run_cli(bug, [])


# ------------------------------------------------------------------------------------------ the sweep


def sweep_settings(tmp_path, assets, models_lines=None, **env) -> dict:
    models = tmp_path / "models.tsv"
    models.write_text("\n".join(models_lines or [f"gpt2\t{assets['base']}\t-\t"]) + "\n")
    return {"PYTHON": PY, "MODELS": str(models), "RUNS": str(tmp_path / "runs"), "GLUE_DIR": str(assets["glue_dir"]),
            "TASKS": "cola sst2", "SEEDS": "1 2", "LAUNCHER": "python", "DRY_RUN": "1", **env}


def sweep(tmp_path, assets, models_lines=None, args=(), **env):
    """`bash launch/all_tasks.sh` as a user runs it, DRY_RUN."""
    return cli("bash", ROOT / "launch" / "all_tasks.sh", *args, **sweep_settings(tmp_path, assets, models_lines, **env))


def test_the_sweep_accepts_a_good_setup(tmp_path, assets):
    proc = sweep(tmp_path, assets, args=["--num_train_epochs", "1"])
    assert proc.returncode == 0 and proc.stdout.count("run_glue_frozen.py") == 4, proc.stderr


@pytest.mark.parametrize("case, message", [
    ("flag in the tokenizer column", "models.tsv:1: the tokenizer column holds '--fp16', a flag; flags go in the 4th"
                                     " column"),
    ("misspelt flag in the models file", "model gpt2 (models file flags, EXTRA_ARGS or the sweep's arguments), task "
                                         "cola: unknown argument(s): --learnig_rate (did you mean --learning_rate?)"),
    ("misspelt flag on the sweep line", "model gpt2 (models file flags, EXTRA_ARGS or the sweep's arguments), task "
                                        "cola: unknown argument(s): --num_train_epochz"),
    ("GLUE_DIR without the task", "GLUE_DIR: --glue_dir {glue} has no SST-2/ folder for task sst2"),
    ("TASKS empty", "TASKS is set but empty; give e.g. TASKS='cola rte' (or unset TASKS for all nine tasks)"),
    ("SEEDS empty", "SEEDS is set but empty; give e.g. SEEDS='1 2 3 4 5'"),
])
def test_the_sweep_refuses_before_launching_anything(tmp_path, assets, case, message, monkeypatch, capsys):
    """One line, exit 2, nothing launched. The misspelt flag on the sweep line goes through `bash
    launch/all_tasks.sh` as typed; the others are planned in this process (conftest.plan_sweep: the same sweep.main)."""
    glue = tmp_path / "glue"
    lines, args, env = None, [], {}
    if case == "flag in the tokenizer column":
        lines = [f"gpt2\t{assets['base']}\t--fp16\t"]
    elif case == "misspelt flag in the models file":
        lines = [f"gpt2\t{assets['base']}\t-\t--learnig_rate 1e-3"]
    elif case == "misspelt flag on the sweep line":
        args = ["--num_train_epochz", "1"]
    elif case == "GLUE_DIR without the task":
        (glue / "CoLA").mkdir(parents=True)
        for name in ("train.tsv", "dev.tsv"):
            (glue / "CoLA" / name).write_bytes((assets["glue_dir"] / "CoLA" / name).read_bytes())
        env["GLUE_DIR"] = str(glue)
    else:
        env[case.split()[0]] = ""
    if args:
        proc = sweep(tmp_path, assets, lines, args, **env)
        code, err, out = proc.returncode, proc.stderr, proc.stdout
    else:
        code, both = plan_sweep(monkeypatch, capsys, sweep_settings(tmp_path, assets, lines, **env))
        lines = both.splitlines()
        err = "\n".join(line for line in lines if line.startswith("error:") or "Traceback" in line)
        out = "\n".join(line for line in lines if not line.startswith("error:"))
    assert code == 2 and message.format(glue=glue) in one_error(err), out
    assert "run_glue_frozen.py" not in out and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------------- the report


def test_summarize_two_models_one_seed_fifty_rows(tmp_path):
    """Two models x one seed x 50 dev rows (the slice table's Holm step once failed on it): a report, exit 0."""
    for model, flip in (("A", 0), ("B", 7)):
        folder = tmp_path / "runs" / model / "sst2" / "seed1"
        folder.mkdir(parents=True)
        rows = [{"idx": i, "label": i % 2, "prediction": (i % 2) ^ (i % flip == 0 if flip else 0),
                 "probs": [0.5, 0.5], "sentence": f"this is not sentence {i}" if i % 3 else f"fine day {i}"}
                for i in range(50)]
        (folder / "config.json").write_text(json.dumps({"path": "cached"}))
        (folder / "predictions_validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.9}))
    proc = cli(PY, ROOT / "analysis" / "summarize.py", "--runs", tmp_path / "runs", "--out", tmp_path / "rep",
               "--n_resamples", "200")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert (tmp_path / "rep" / "slices_sst2.csv").exists() and (tmp_path / "rep" / "report.md").exists()


@pytest.mark.parametrize("script, given", [
    ("analysis/summarize.py", []), ("analysis/drift.py", ["--feature_cache", "c", "--task", "cola", "--models_f", "m"]),
    ("analysis/disagreements.py", ["--task", "cola", "--models", "a", "b", "--run", "r"])])
def test_analysis_scripts_take_no_prefix_of_a_flag(tmp_path, script, given):
    # --run and --models_f are prefixes of --runs and --models_file: argparse's default allow_abbrev reads them so
    (tmp_path / "runs").mkdir()
    given = given or ["--run", tmp_path / "runs"]
    line = refused(cli(PY, ROOT / script, *given))
    assert line.startswith(f"error: unrecognized arguments: {given[-2]} "), line
