"""Runs, sweeps and reports never mix, misread or silently differ: one protocol whatever the launcher, a run's
settings checked before a sweep skips it, one owner per run folder and no leftovers, readers that see complete runs
only, inputs that mean what they say, and a report that says what it compares."""

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from frozen_glue.core import layout
from frozen_glue.report import results as run_results

from conftest import FAST, ROOT, copy_complete, launch_sweep, plan_sweep, results, run


def models_file(tmp_path, assets, comet=False):
    path = tmp_path / "models.tsv"
    lines = [f"gpt2\t{assets['base']}\t-\t"] + ([f"comet\t{assets['comet']}\t{assets['comet_tokenizer']}\t"]
                                                if comet else [])
    path.write_text("\n".join(lines) + "\n")
    return path


sweep = launch_sweep  # the real process, as a user runs it


# ------------------------------------------------------------------------------------------------ 1. launchers


def test_same_seed_same_numbers_under_every_launcher(tmp_path, assets, small_glue):
    """The python launcher, the deepspeed launcher (ZeRO-2 over gloo on CPU) and the cached sweep: one protocol,
    one set of numbers (the DeepSpeed configs leave optimizer and schedule to the Trainer)."""
    common = {"MODELS": models_file(tmp_path, assets), "GLUE_DIR": small_glue,
              "EXTRA_ARGS": FAST + " --weight_decay 0.1 --warmup_steps 2",
              "TORCH_EXTENSIONS_DIR": Path.home() / ".cache" / "frozen_glue" / "torch_extensions"}
    launches = {"python": {}, "deepspeed": {"LAUNCHER": "deepspeed", "DS_CONFIG": ROOT / "ds_configs" / "zero2.json"},
                "cached": {"FEATURE_CACHE": tmp_path / "cache"}}
    for name, env in launches.items():
        code, out = sweep({**common, **env, "RUNS": tmp_path / name})
        folder = tmp_path / name / "gpt2" / "cola" / "seed1"
        assert code == 0, out + (folder / "run.log").read_text()[-3000:]
    folders = {name: tmp_path / name / "gpt2" / "cola" / "seed1" for name in launches}
    configs = {name: json.loads((f / "config.json").read_text()) for name, f in folders.items()}
    assert configs["deepspeed"]["args"]["training"]["deepspeed"].endswith("zero2.json")
    assert "deepspeed --num_gpus 1" in (folders["deepspeed"] / "run.log").read_text()
    assert len({c["protocol_hash"] for c in configs.values()}) == 1
    base = results(folders["python"])
    for name in ("deepspeed", "cached"):
        other = results(folders[name])
        for key in ("eval_matthews_correlation", "eval_loss", "train_loss"):
            assert other[key] == pytest.approx(base[key], abs=1e-5), (name, key)


# ------------------------------------------------------------------------------------------- 2. protocol


def test_sweep_refuses_complete_runs_made_with_other_settings(tmp_path, assets, small_glue, complete_sweep,
                                                             monkeypatch, capsys):
    env = {"MODELS": models_file(tmp_path, assets), "GLUE_DIR": small_glue, "SEEDS": "1 2",
           **copy_complete(complete_sweep, tmp_path, alias="gpt2")}  # 2 complete runs of these settings
    code, out = plan_sweep(monkeypatch, capsys, env)
    assert code == 0 and "0 complete, 2 skipped, 0 failed" in out, out
    changed = FAST.replace("--num_train_epochs 2", "--num_train_epochs 3").replace("1e-2", "2e-2")
    code, out = plan_sweep(monkeypatch, capsys, {**env, "SEEDS": "1 2 3", "EXTRA_ARGS": changed})
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1, out
    assert "2 complete run(s) were made with another model, tokenizer, data or settings" in errors[0]
    assert "learning_rate 0.01 -> 0.02, num_train_epochs 2.0 -> 3.0" in errors[0] and "REDO_CHANGED=1" in errors[0]
    assert not (tmp_path / "runs" / "gpt2" / "cola" / "seed3").exists()  # nothing ran
    code, out = plan_sweep(monkeypatch, capsys, {**env, "SEEDS": "1 2 3", "EXTRA_ARGS": changed})  # still refused
    assert code == 2
    code, out = sweep({**env, "SEEDS": "1 2 3", "EXTRA_ARGS": changed, "REDO_CHANGED": "1"})
    assert code == 0 and "3 complete (2 redone with the changed settings), 0 skipped, 0 failed" in out, out
    lrs = {json.loads((tmp_path / "runs" / "gpt2" / "cola" / f"seed{s}" / "config.json").read_text())["args"][
        "training"]["learning_rate"] for s in (1, 2, 3)}
    assert lrs == {0.02}
    code, out = sweep({**env, "SEEDS": "1 2 3", "EXTRA_ARGS": changed})
    assert code == 0 and "0 complete, 3 skipped, 0 failed" in out  # same settings: skipped


def test_summarize_shows_mixed_settings_instead_of_averaging(script, assets, tmp_path, capsys):
    out = tmp_path / "runs" / "gpt2" / "cola"
    common = ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
              "--do_train", "--do_eval", "--num_train_epochs", "1", "--use_cpu", "true", "--disable_tqdm", "true",
              "--feature_cache", tmp_path / "cache", "--output_dir", out]
    assert run(script, capsys, *common, "--learning_rate", "1e-2", "--seeds", "1", "2")[0] == 0
    assert run(script, capsys, *common, "--learning_rate", "5e-2", "--seeds", "3")[0] == 0
    runs, warnings = run_results.load_runs(tmp_path / "runs")
    assert any("gpt2/cola mixes runs of different identities (learning_rate 0.01 -> 0.05)" in w for w in warnings)
    summary = run_results.summarize(runs)
    row = summary.iloc[0]
    assert row["n"] == 3 and row["mean"] != row["mean"] and row["mixed"] == "learning_rate 0.01 -> 0.05"
    wide = run_results.wide_table(summary, run_results.pairwise(runs))
    assert wide.loc[0, "gpt2"] == "mixed, not averaged: learning_rate 0.01 -> 0.05 (n=3)"
    from frozen_glue.core.errors import UserError
    from frozen_glue.report import predictions

    with pytest.raises(UserError, match="have different identities"):
        predictions.read_predictions(tmp_path / "runs", "gpt2", "cola", "validation")
    assert len(predictions.read_predictions(tmp_path / "runs", "gpt2", "cola", "validation", seed=3)) == 100


# ------------------------------------------------------------------------------------------ 3. one owner


def test_a_second_run_into_a_busy_folder_is_refused(assets, tmp_path):
    args = [sys.executable, str(ROOT / "run_glue_frozen.py"), "--model_name_or_path", str(assets["base"]),
            "--task_name", "cola", "--glue_dir", str(assets["glue_dir"]), "--output_dir", str(tmp_path / "r"),
            "--do_train", "--do_eval", "--num_train_epochs", "60", "--use_cpu", "true", "--disable_tqdm", "true"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / "r" / ".lock"
    deadline = time.time() + 120
    while time.time() < deadline and not lock.exists():
        time.sleep(0.05)
    second = subprocess.run(args[:-6] + ["--num_train_epochs", "1", "--learning_rate", "0.02", "--use_cpu", "true"],
                            env=env, capture_output=True, text=True, timeout=120)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'r'} is in use by another run (pid {first.pid} on host {os.uname().nodename}, user "
        f"{getpass.getuser()}, started "
        f"{json.loads(lock.read_text())['started']}); wait for it, or if that process is gone remove {lock}"]
    # the first run was killed: its lock is stale, and the next run names it and takes the folder over
    third = subprocess.run(args[:-6] + ["--num_train_epochs", "1", "--use_cpu", "true", "--overwrite_output_dir"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert f"stale lock {lock} (pid {first.pid}" in third.stdout
    assert layout.is_complete(tmp_path / "r") and not lock.exists()


def test_rerun_killed_midway_leaves_no_stale_outputs(script, assets, tmp_path, capsys):
    folder = tmp_path / "runs" / "gpt2" / "cola" / "seed1"
    common = ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
              "--do_train", "--do_eval", "--use_cpu", "true", "--disable_tqdm", "true", "--output_dir", folder]
    assert run(script, capsys, *common, "--num_train_epochs", "1")[0] == 0
    assert (folder / "predictions_validation.jsonl").exists()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_glue_frozen.py"), *map(str, common), "--num_train_epochs",
                             "80", "--overwrite_output_dir"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started = json.loads((folder / "config.json").read_text())["start_time"]
    deadline = time.time() + 120
    while time.time() < deadline and json.loads((folder / "config.json").read_text())["start_time"] == started:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert json.loads((folder / "config.json").read_text())["args"]["training"]["num_train_epochs"] == 80
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json"]  # nothing of the old run
    code = subprocess.run([sys.executable, str(ROOT / "analysis" / "disagreements.py"), "--task", "cola", "--models",
                           "gpt2", "gpt2", "--seed", "1", "--runs", tmp_path / "runs", "--out", tmp_path / "rep"],
                          capture_output=True, text=True, timeout=120)
    assert code.returncode == 2
    assert code.stderr.strip().splitlines() == [
        f"error: no complete run with predictions_validation.jsonl for model gpt2 on cola seed 1 under "
        f"{tmp_path / 'runs'} (1 incomplete run(s) skipped)"]


# -------------------------------------------------------------------------------------- 5. inputs, files


def test_launcher_paths_are_relative_to_the_callers_directory(tmp_path, assets):
    (tmp_path / "m.tsv").write_text(f"gpt2\t{assets['base']}\t-\t\n")
    code, out = sweep({"MODELS": "m.tsv", "RUNS": "myruns", "GLUE_DIR": os.path.relpath(assets["glue_dir"], tmp_path),
                       "FEATURE_CACHE": "cache", "DRY_RUN": "1"}, cwd=tmp_path)
    assert code == 0, out
    [command] = [ln for ln in out.splitlines() if "run_glue_frozen.py" in ln]
    assert f"--output_dir {tmp_path / 'myruns' / 'gpt2' / 'cola'}" in command
    assert f"--glue_dir {assets['glue_dir']}" in command and f"--feature_cache {tmp_path / 'cache'}" in command


def test_debug_run_only_when_a_cut_removed_rows(script, assets, tmp_path, capsys):
    common = ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
              "--do_train", "--do_eval", "--num_train_epochs", "1", "--use_cpu", "true", "--disable_tqdm", "true"]
    assert run(script, capsys, *common, "--output_dir", tmp_path / "all", "--max_train_samples", "5000")[0] == 0
    assert run(script, capsys, *common, "--output_dir", tmp_path / "cut", "--max_train_samples", "50")[0] == 0
    full, cut = (json.loads((tmp_path / f / "config.json").read_text()) for f in ("all", "cut"))
    assert full["debug_run"] is False and full["cut_splits"] is None
    assert cut["debug_run"] is True and cut["cut_splits"] == {"train": "50 of 400 rows"}


@pytest.mark.parametrize("cached", [False, True])
def test_every_file_of_a_run_folder_has_the_same_permissions(script, assets, tmp_path, capsys, cached):
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    assert run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
               assets["glue_dir"], "--output_dir", tmp_path / "r", "--do_train", "--do_eval", "--do_predict",
               "--num_train_epochs", "1", "--use_cpu", "true", "--disable_tqdm", "true", *cache)[0] == 0
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (tmp_path / "r").iterdir()}
    assert "head.safetensors" in modes and len(set(modes.values())) == 1, modes


def test_reference_maps_aliases_by_the_models_file(tmp_path):
    from test_analysis import summarize_cli, write_run

    root = tmp_path / "runs"
    for i, value in enumerate((0.52, 0.54, 0.53)):
        write_run(root, "xl-run", "cola", i + 1, {"matthews_correlation": value}, debug=i == 2)
    ref = tmp_path / "ref.csv"
    ref.write_text("model,task,metric,mean,std\ngpt2-xl,cola,matthews_correlation,0.53,0.02\n")
    code, log = summarize_cli("--runs", root, "--out", tmp_path / "rep1", "--reference", ref)
    assert code == 0 and "none of this run tree's models (xl-run) maps to them" in log
    (tmp_path / "m.tsv").write_text("xl-run\tgpt2-xl\t-\t\tgpt2-xl\n")
    code, log = summarize_cli("--runs", root, "--out", tmp_path / "rep2", "--reference", ref, "--models",
                              tmp_path / "m.tsv")
    assert code == 0 and "maps to them" not in log
    table = pd.read_csv(tmp_path / "rep2" / "reference.csv")
    assert table.loc[0, "ours"] == "xl-run" and table.loc[0, "mean_ours"] == pytest.approx(0.53)
    assert bool(table.loc[0, "within_2std"]) and bool(table.loc[0, "debug"])
