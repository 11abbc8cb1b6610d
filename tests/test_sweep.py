"""launch/all_tasks.sh (frozen_glue/sweep/sweep.py) and ds_configs/: planning, resuming, failures, DeepSpeed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frozen_glue.config.ds_config import validate_ds_config
from frozen_glue.core.errors import UserError
from frozen_glue.core.layout import is_complete
from frozen_glue.sweep.sweep_settings import gpu_count

from conftest import ROOT, plan_sweep

FAST = "--num_train_epochs 2 --learning_rate 1e-2 --per_device_train_batch_size 16 --disable_tqdm true"


def models_file(tmp_path, assets, *extra_lines):
    path = tmp_path / "models.tsv"
    lines = ["# test models", f"gpt2\t{assets['base']}\t-\t",
             f"comet\t{assets['comet']}\t{assets['comet_tokenizer']}\t", *extra_lines]
    path.write_text("\n".join(lines) + "\n")
    return path


def sweep(tmp_path, assets, models=None, args=(), cwd=ROOT, **env):
    """Run `bash launch/all_tasks.sh` with a test environment: (exit code, stdout+stderr)."""
    full_env = {**os.environ, "PYTHON": sys.executable, "MODELS": str(models or models_file(tmp_path, assets)),
                "RUNS": str(tmp_path / "runs"), "GLUE_DIR": str(assets["glue_dir"]), "TASKS": "cola sst2",
                "SEEDS": "1 2 3", "LAUNCHER": "python", "EXTRA_ARGS": FAST, **env}
    proc = subprocess.run(["bash", str(ROOT / "launch" / "all_tasks.sh"), *args], capture_output=True, text=True,
                          env=full_env, timeout=900, cwd=cwd)
    return proc.returncode, proc.stdout + proc.stderr


def plan(tmp_path, assets, monkeypatch, capsys, models=None, **env):
    """The same settings as sweep(), planned in this process (conftest.plan_sweep): for sweeps that stop at the plan."""
    return plan_sweep(monkeypatch, capsys, {"MODELS": str(models or models_file(tmp_path, assets)),
                                            "RUNS": str(tmp_path / "runs"), "GLUE_DIR": str(assets["glue_dir"]),
                                            "TASKS": "cola sst2", "SEEDS": "1 2 3", "EXTRA_ARGS": FAST, **env})


def test_dry_run_prints_one_command_per_run(tmp_path, assets):
    code, out = sweep(tmp_path, assets, DRY_RUN="1")
    commands = [ln for ln in out.splitlines() if "run_glue_frozen.py" in ln]
    assert code == 0 and len(commands) == 2 * 2 * 3
    assert sum("--seed 2 " in c for c in commands) == 4 and all("--do_train" in c for c in commands)
    assert not (tmp_path / "runs").exists()


def test_dry_run_groups_seeds_with_feature_cache(tmp_path, assets, monkeypatch, capsys):
    code, out = plan(tmp_path, assets, monkeypatch, capsys, DRY_RUN="1", FEATURE_CACHE=str(tmp_path / "cache"))
    commands = [ln for ln in out.splitlines() if "run_glue_frozen.py" in ln]
    assert code == 0 and len(commands) == 2 * 2
    assert all("--seeds 1 2 3" in c and "--feature_cache" in c for c in commands)


def test_dry_run_uses_the_deepspeed_launcher(tmp_path, assets, monkeypatch, capsys):
    code, out = plan(tmp_path, assets, monkeypatch, capsys, DRY_RUN="1", LAUNCHER="auto", TASKS="cola", SEEDS="1")
    commands = [ln for ln in out.splitlines() if "run_glue_frozen.py" in ln]
    assert code == 0 and len(commands) == 2
    gpus = gpu_count()  # no assumption about the machine: a CPU box runs one CPU process, a GPU box all its GPUs
    assert all(f"deepspeed --num_gpus {max(gpus, 1)}" in c and "ds_configs/zero2.json" in c
               and c.endswith("--use_cpu") == (gpus == 0) for c in commands)


KILL_MODES = {
    # launcher settings, epochs long enough to kill mid-run
    "python": ({"LAUNCHER": "python"}, 20),
    "deepspeed": ({"LAUNCHER": "deepspeed", "DS_CONFIG": str(ROOT / "ds_configs" / "zero2.json")}, 20),
    "cached": ({"LAUNCHER": "python", "FEATURE_CACHE": "cache"}, 120),  # seeds grouped in one process, ~3 s
}


@pytest.mark.parametrize("mode", list(KILL_MODES))
def test_kill_and_resume_completes_every_run_exactly_once(tmp_path, assets, mode):
    """kill -9 of the whole sweep mid-run, then the same sweep again: every run is complete, and each ran to its end
    exactly once (a killed attempt never counts, a complete run is never redone)."""
    settings, epochs = KILL_MODES[mode]
    extra = FAST.replace("--num_train_epochs 2", f"--num_train_epochs {epochs}")
    models = tmp_path / "one.tsv"
    models.write_text(f"gpt2\t{assets['base']}\t-\t\n")
    env = {**os.environ, "PYTHON": sys.executable, "MODELS": str(models),
           "RUNS": str(tmp_path / "runs"), "GLUE_DIR": str(assets["glue_dir"]), "TASKS": "cola", "SEEDS": "1 2",
           "EXTRA_ARGS": extra, **settings,
           "TORCH_EXTENSIONS_DIR": str(Path.home() / ".cache" / "frozen_glue" / "torch_extensions")}
    runs = tmp_path / "runs"
    first, second = runs / "gpt2" / "cola" / "seed1", runs / "gpt2" / "cola" / "seed2"
    proc = subprocess.Popen(["bash", str(ROOT / "launch" / "all_tasks.sh")], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    grouped = mode == "cached"
    deadline = time.time() + 300
    while time.time() < deadline and not ((second / "config.json").exists() if grouped else
                                          (is_complete(first) and (second / "config.json").exists())):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its run, mid-run
    proc.wait()
    assert (second / "config.json").exists() and not is_complete(second)
    assert is_complete(first) != grouped  # a grouped job trains its seeds together: neither was done
    code, out = sweep(tmp_path, assets, models=models, TASKS="cola", SEEDS="1 2", EXTRA_ARGS=extra, cwd=tmp_path,
                      **{k: v for k, v in env.items() if k in settings or k == "TORCH_EXTENSIONS_DIR"})
    assert code == 0, out
    assert (f"skip (complete): {first}" in out) != grouped
    assert ("1 complete, 1 skipped, 0 failed" if not grouped else "2 complete, 0 skipped, 0 failed") in out
    folders = [first, second]
    assert all(is_complete(f) for f in folders)
    for f in folders:
        log = ((f.parent if grouped else f) / "run.log").read_text()
        assert log.count(f"run complete: {f}") == 1, f
    log = ((second.parent if grouped else second) / "run.log").read_text()
    assert log.count("=== ") == 2  # killed attempt + redo, in one appended log
    assert not list(runs.rglob("*.tmp")) and not list(runs.rglob(".lock"))


def test_failed_run_is_reported_and_others_complete(tmp_path, assets):
    (tmp_path / "broken").mkdir()
    models = models_file(tmp_path, assets, f"broken\t{tmp_path / 'broken'}\t-\t", "unset\t${NO_SUCH_VAR_X}\t-\t")
    code, out = sweep(tmp_path, assets, models=models, TASKS="cola", SEEDS="1")
    assert code == 1
    assert "2 complete, 0 skipped, 2 failed" in out
    assert f"failed: broken/cola seed(s) 1: error: --model_name_or_path {tmp_path / 'broken'} has no config.json" in out
    assert f"log: {tmp_path / 'runs' / 'broken' / 'cola' / 'seed1' / 'run.log'}" in out
    assert "NO_SUCH_VAR_X is not set; export NO_SUCH_VAR_X=" in out
    assert is_complete(tmp_path / "runs" / "gpt2" / "cola" / "seed1")


@pytest.mark.parametrize("env,message", [
    ({"TASKS": "cola colaa"}, "unknown task 'colaa'"),
    ({"NUM_GPUS": str(gpu_count() + 1)}, f"NUM_GPUS={gpu_count() + 1} but this machine has {gpu_count()} GPU(s)"),
    ({"LAUNCHER": "deepspeed", "DS_CONFIG": "nope.json"}, f"DS_CONFIG {ROOT / 'nope.json'} does not exist"),
])
def test_bad_settings(tmp_path, assets, env, message, monkeypatch, capsys):
    code, out = plan(tmp_path, assets, monkeypatch, capsys, DRY_RUN="1", **env)
    assert code == 2 and f"error: {message}" in out and "Traceback" not in out


def test_models_file_with_wrong_field_count_names_the_line(tmp_path, assets, monkeypatch, capsys):
    path = tmp_path / "m.tsv"
    path.write_text("# comment\ngpt2\tgpt2\t-\t\nbad line without tabs\n")
    code, out = plan(tmp_path, assets, monkeypatch, capsys, models=path, DRY_RUN="1")
    assert code == 2 and f"error: {path}:3: expected 3 to 6 tab-separated fields" in out
    path.write_text("a\tgpt2\t-\t\t-\tb\n")  # a base column naming no model of the file
    code, out = plan(tmp_path, assets, monkeypatch, capsys, models=path, DRY_RUN="1")
    assert code == 2 and "the base column names no model of the file (a -> b)" in out


@pytest.mark.parametrize("config", sorted((ROOT / "ds_configs").glob("*.json")), ids=lambda p: p.name)
def test_ds_configs_pass_deepspeed_validation(config):
    validate_ds_config(config)


def test_invalid_ds_configs_are_refused(tmp_path):
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(UserError, match="not valid JSON"):
        validate_ds_config(tmp_path / "bad.json")
    (tmp_path / "stage.json").write_text(json.dumps({"train_batch_size": "auto", "zero_optimization": {"stage": 9}}))
    with pytest.raises(UserError, match="not a valid DeepSpeed config"):
        validate_ds_config(tmp_path / "stage.json")


def test_hub_model_without_hub_is_reported_once_up_front(tmp_path, assets):
    models = tmp_path / "m.tsv"
    models.write_text("gpt2-xl\tgpt2-xl\t-\t\n")
    code, out = sweep(tmp_path, assets, models=models, TASKS="cola", SEEDS="1 2", HF_HUB_OFFLINE="1",
                      HF_HOME=str(tmp_path / "hf"))
    assert code == 1 and "0 complete, 0 skipped, 2 failed" in out
    assert "gpt2-xl is a hub id, HF_HUB_OFFLINE is set and it is not in the local HF cache" in out
    assert not (tmp_path / "runs").exists()  # nothing was launched


def test_zero3_on_two_cpu_processes_saves_the_head_only(tmp_path, assets):
    """A real ZeRO-3 run, two processes over gloo (torchrun): the parameters are partitioned, the head is gathered
    and saved whole, and nothing else of the model is written."""
    from safetensors.torch import load_file

    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "TORCH_EXTENSIONS_DIR": str(Path.home() / ".cache" / "frozen_glue" / "torch_extensions")}
    out = tmp_path / "run"
    proc = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port",
                           "29613", str(ROOT / "run_glue_frozen.py"), "--model_name_or_path", str(assets["base"]),
                           "--task_name", "cola", "--glue_dir", str(assets["glue_dir"]), "--output_dir", str(out),
                           "--do_train", "--do_eval", *FAST.split(), "--use_cpu", "true", "--deepspeed",
                           str(ROOT / "ds_configs" / "zero3.json")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert is_complete(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "all_results.json", "config.json", "eval_results.json", "head.safetensors", "predictions_validation.jsonl",
        "train_results.json", "trainer_state.json"]
    head = load_file(out / "head.safetensors")
    assert list(head) == ["score.weight"] and tuple(head["score.weight"].shape) == (2, 32)
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["training"]["deepspeed"].endswith("zero3.json") and config["global_batch_size"] == 32
    assert json.loads((out / "all_results.json").read_text())["eval_matthews_correlation"] > 0.5


def test_groups_at_once_share_the_cores_unless_the_user_set_the_threads(monkeypatch):
    from frozen_glue.sweep import sweep
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = {}
    sweep.pin_threads(env, 2)
    assert env == {"OMP_NUM_THREADS": "4"}  # 8 cores / 2 groups
    env = {}
    sweep.pin_threads(env, 3)
    assert env == {"OMP_NUM_THREADS": "2"}
    env = {}
    sweep.pin_threads(env, 1)  # one run at a time keeps torch's own choice
    assert env == {}
    env = {"OMP_NUM_THREADS": "7"}
    sweep.pin_threads(env, 2)
    assert env == {"OMP_NUM_THREADS": "7"}
