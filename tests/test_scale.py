"""Scale-out: sharded extraction under torchrun, a base split by --device_map, the parallel sweep and its locks."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from frozen_glue.features import cache as feature_cache

from conftest import ROOT, TRAIN, assert_refused, plan_sweep, results

# one thread per process: the 1-process run and each rank then compute every batch the same way, bit for bit
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def study_args(assets, out, cache, *extra):
    return [str(a) for a in ("--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                             assets["glue_dir"], "--output_dir", out, *TRAIN, "--seeds", "1", "2", "--probe_layers",
                             "all", "--extraction_batch_size", "8", "--feature_cache", cache, *extra)]


def launch(args, ranks=1, port=29671, launcher="torchrun"):
    command = [sys.executable, str(ROOT / "run_glue_frozen.py")]
    if ranks > 1 and launcher == "torchrun":
        command = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", str(ranks), "--master_port",
                   str(port), *command[1:]]
    elif ranks > 1:  # the deepspeed launcher on CPU (gloo, --use_cpu in TRAIN); a ZeRO-3 config must not partition
        command = [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", str(ranks), "--master_port",
                   str(port), *command[1:]]  # the base the cached path runs whole
        args = [*args, "--deepspeed", str(ROOT / "ds_configs" / "zero3.json")]
    env = {**ENV, "TORCH_EXTENSIONS_DIR": str(Path.home() / ".cache" / "frozen_glue" / "torch_extensions")}
    proc = subprocess.run(command + args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def entries(cache):
    return {p.relative_to(cache): load_file(p)["features"] for p in sorted(Path(cache).rglob("*.safetensors"))}


def test_sharded_extraction_is_bit_identical_to_one_process(assets, tmp_path):
    """torchrun and the deepspeed launcher with 2 ranks over gloo: each rank runs half the batches, rank 0
    assembles; the cache entries (every layer), the metrics and the predictions equal a 1-process run's exactly,
    and each run folder is written once. Then what a rank that died mid-extraction leaves (part files, no entry
    JSON) is not trusted, and rerunning rebuilds the entries exactly."""
    launch(study_args(assets, tmp_path / "one", tmp_path / "c1"))
    one = entries(tmp_path / "c1")
    assert len(one) == 2 * 3  # train + validation x 3 layers
    for launcher, port in (("torchrun", 29671), ("deepspeed", 29673)):
        out, cache = tmp_path / launcher, tmp_path / f"cache-{launcher}"
        log = launch(study_args(assets, out, cache), ranks=2, launcher=launcher, port=port)
        assert "extraction sharded over 2 ranks" in log and log.count("run complete: ") == 2  # rank 0 alone writes
        two = entries(cache)
        assert list(one) == list(two) and all(torch.equal(one[k], two[k]) for k in one), launcher
        assert not [p for p in cache.rglob(".*") if p.is_file()]  # no part, temp or lock file left
        for seed in (1, 2):
            a, b = (results(run / f"seed{seed}") for run in (tmp_path / "one", out))
            assert {k: v for k, v in a.items() if "runtime" not in k and "per_second" not in k} == \
                   {k: v for k, v in b.items() if "runtime" not in k and "per_second" not in k}
            for name in ("predictions_validation.jsonl", "layer_results.json"):
                assert (tmp_path / "one" / f"seed{seed}" / name).read_bytes() == (out / f"seed{seed}" / name).read_bytes()
            config = json.loads((out / f"seed{seed}" / "config.json").read_text())
            assert config["extraction_ranks"] == 2 and config["global_batch_size"] == 16  # heads: one process

    # the state of a killed sharded run: rank 1's part of every entry written, nothing committed
    cache = tmp_path / "cache-torchrun"
    for path in one:
        meta = json.loads((cache / path).with_suffix(".json").read_text())
        (cache / path).with_suffix(".json").unlink()
        (cache / path).unlink()
        feature_cache.part_path(cache / path, meta["layer"], 1, 2).write_bytes(b"half a part")
    assert feature_cache.load_entry(cache, meta["parts"]["model_fp"], "cola", path.name.split("-")[0],
                                    meta["key"]) is None
    launch(study_args(assets, tmp_path / "rerun", cache), ranks=2, port=29672)
    rebuilt = entries(cache)
    assert list(rebuilt) == list(one) and all(torch.equal(rebuilt[k], one[k]) for k in one)
    assert not list(cache.rglob("*.part"))


def test_a_base_split_by_device_map_gives_the_plain_loads_features(script, assets, tmp_path, capsys):
    """--max_memory forces part of the model to the CPU and the rest to the disk (accelerate's offload): the same
    fingerprint, the same features bit for bit, the same predictions as the plain load."""
    from conftest import run

    common = ["--model_name_or_path", assets["comet"], "--tokenizer_name", assets["comet_tokenizer"], "--task_name",
              "sst2", "--glue_dir", assets["glue_dir"], *TRAIN, "--seeds", "1", "--probe_layers", "all"]
    assert run(script, capsys, *common, "--output_dir", tmp_path / "plain", "--feature_cache", tmp_path / "c1")[0] == 0
    code, out, err = run(script, capsys, *common, "--output_dir", tmp_path / "split", "--feature_cache",
                         tmp_path / "c2", "--device_map", "auto", "--max_memory", "cpu=140KB", "--offload_folder",
                         tmp_path / "offload")
    assert code == 0, err
    assert "the base is split by --device_map auto over cpu, disk" in out
    plain, split = entries(tmp_path / "c1"), entries(tmp_path / "c2")
    assert len(plain) == 6 and list(plain) == list(split)  # same fingerprint folder and keys
    assert all(torch.equal(plain[k], split[k]) for k in plain)
    assert (tmp_path / "plain" / "seed1" / "predictions_validation.jsonl").read_bytes() == \
           (tmp_path / "split" / "seed1" / "predictions_validation.jsonl").read_bytes()


@pytest.mark.parametrize("extra, message", [
    (["--device_map", "auto"], "--device_map splits the frozen base for the cached path's forward; add "
                               "--feature_cache DIR"),
    (["--device_map", "auto", "--feature_cache", "C", "--freeze_base", "false"],
     "--device_map needs the cached path, and the feature cache cannot serve this run: parts of the base train"),
    (["--max_memory", "cpu=1GB"], "--max_memory/--offload_folder place a split model: add --device_map auto"),
    (["--device_map", "auto", "--feature_cache", "C", "--max_memory", "lots"], "--max_memory lots: give DEVICE=AMOUNT"),
    (["--device_map", "everywhere", "--feature_cache", "C"], "--device_map everywhere: use auto, balanced"),
])
def test_device_map_misuse_is_one_line(script, assets, tmp_path, capsys, extra, message):
    assert_refused(script, capsys, assets, tmp_path, extra, message)


# ------------------------------------------------------------------------------------- the sweep and its locks


def sweep_settings(tmp_path, assets) -> dict:
    """Two models x cola x 2 seeds on the cached path."""
    models = tmp_path / "models.tsv"
    models.write_text(f"gpt2\t{assets['base']}\t-\t\ncomet\t{assets['comet']}\t{assets['comet_tokenizer']}\t\n")
    return {"PYTHON": sys.executable, "MODELS": str(models), "RUNS": str(tmp_path / "runs"),
            "GLUE_DIR": str(assets["glue_dir"]), "TASKS": "cola", "SEEDS": "1 2", "FEATURE_CACHE": str(tmp_path / "c"),
            "EXTRA_ARGS": " ".join(TRAIN[2:])}


def sweep(tmp_path, assets, **env):
    """`bash launch/all_tasks.sh` as a user runs it, with sweep_settings."""
    full = {**ENV, **sweep_settings(tmp_path, assets), **env}
    proc = subprocess.run(["bash", str(ROOT / "launch" / "all_tasks.sh")], capture_output=True, text=True, env=full,
                          timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("env, message", [
    ({"GPUS": "0 1"}, "GPUS='0 1': this machine has "),
    ({"GPUS": "x"}, "GPUS='x': this machine has "),
    ({"GPUS": "0", "JOBS": "2"}, "GPUS and JOBS both set"),
    ({"JOBS": "0"}, "JOBS='0': give how many model x task groups run at once"),
    ({"NUM_GPUS": "0", "GPUS": "0"}, "NUM_GPUS and GPUS both set"),
])
def test_bad_parallel_settings_are_one_line(tmp_path, assets, env, message, monkeypatch, capsys):
    if env.get("GPUS") == "0 1" and torch.cuda.device_count() >= 2:  # a GPU machine: name one it lacks
        env, message = {"GPUS": "0 99"}, "GPUS='0 99': this machine has GPUs"
    code, out = plan_sweep(monkeypatch, capsys, {**sweep_settings(tmp_path, assets), **env})
    last = out.strip().splitlines()[-1]
    assert code == 2 and last.startswith(f"error: {message}"), out
    assert not (tmp_path / "runs").exists()


def test_jobs_run_groups_in_parallel_and_skip_a_locked_group(tmp_path, assets):
    """JOBS=2: both model x cola groups run at the same time; rerun with a group's lock held by a live job, that
    group is left to it (named at the end) while the rest runs."""
    code, out = sweep(tmp_path, assets, JOBS="2")
    assert code == 0 and "2 groups at once" in out and "4 complete, 0 skipped, 0 failed" in out, out
    progress = [ln.split("] ", 1)[1].split(" seed(s)")[0] + (" done" if " done (" in ln else " start")
                for ln in out.splitlines() if ln.startswith("[") and "/2] " in ln]
    assert sorted(progress[:2]) == ["comet/cola start", "gpt2/cola start"], out  # both started before either ended

    lock = tmp_path / "runs" / "comet" / "cola" / ".lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": "earlier"}))
    code, out = sweep(tmp_path, assets, SEEDS="1 2 3")
    assert code == 0 and "1 complete, 4 skipped, 1 locked by other jobs, 0 failed" in out, out
    assert f"locked: comet/cola: comet/cola is in use by another run (pid {os.getpid()}" in out
    assert lock.exists()  # not ours: left in place


def test_feature_cache_locks(script, assets, tmp_path, capsys):
    """The cache's task folder lock: another user's abandoned lock is refused in one line saying how to clear it;
    this user's is taken over; a live one is waited for."""
    from conftest import run

    args = study_args(assets, tmp_path / "out", tmp_path / "c")
    assert run(script, capsys, *args)[0] == 0
    [task_folder] = (tmp_path / "c").glob("*/cola")
    lock = task_folder / ".lock"
    lock.write_text(json.dumps({"pid": dead_pid(), "host": os.uname().nodename, "user": "someone-else",
                                "uid": os.getuid() + 1, "started": "yesterday"}))
    code, out, err = run(script, capsys, *args, "--overwrite_output_dir", "--overwrite_cache")
    assert code == 2 and err.strip().splitlines() == [
        f"error: feature cache {tmp_path / 'c'}: {lock} is an abandoned lock of another user's job (pid "
        f"{json.loads(lock.read_text())['pid']} on host {os.uname().nodename}, user someone-else, started yesterday; "
        f"that process is gone); ask someone-else to remove it, or remove it yourself if no job of theirs uses it: "
        f"rm {lock}"]
    lock.write_text(json.dumps({"pid": dead_pid(), "host": os.uname().nodename, "uid": os.getuid()}))
    code, out, err = run(script, capsys, *args, "--overwrite_output_dir")
    assert code == 0 and f"stale lock {lock}" in out and not lock.exists()

    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "uid": os.getuid()}))
    log = tmp_path / "waiting.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run_glue_frozen.py"), *args, "--overwrite_output_dir"],
                                stdout=f, stderr=subprocess.STDOUT, env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and "waiting for" not in log.read_text():
        time.sleep(0.2)
    assert proc.poll() is None and f"waiting for {lock} (pid {os.getpid()}" in log.read_text()
    lock.unlink()  # the other job is done
    assert proc.wait(timeout=300) == 0 and "hit for cola/train" in log.read_text()


def test_a_slot_pins_its_job_to_one_gpu():
    """GPUS: the deepspeed launcher is given the device (--include; it ignores CUDA_VISIBLE_DEVICES beside
    --num_gpus) and a master port per worker; a plain python job sees only its GPU."""
    from frozen_glue.sweep.sweep import on_slot

    ds = ["deepspeed", "--num_gpus", "1", "--master_port", "29512", "run_glue_frozen.py", "--seed", "1"]
    assert on_slot(ds, 2, 3, 29512) == (["deepspeed", "--include", "localhost:3", "--master_port", "29514",
                                         "run_glue_frozen.py", "--seed", "1"], {})
    assert on_slot(ds, 1, None, 29512)[0][1:5] == ["--num_gpus", "1", "--master_port", "29513"]
    assert on_slot(["python", "run_glue_frozen.py"], 1, 1, 29512) == (["python", "run_glue_frozen.py"],
                                                                       {"CUDA_VISIBLE_DEVICES": "1"})
    assert on_slot(ds, 0, None, 29512) == (ds, {})


def test_device_map_under_a_launcher_is_refused_before_any_process_group(assets, tmp_path):
    """Each rank would split the whole model over the same devices: refused at once (no rendezvous is awaited)."""
    proc = subprocess.run([sys.executable, str(ROOT / "run_glue_frozen.py"), *study_args(assets, tmp_path / "o",
                                                                                          tmp_path / "c"),
                           "--device_map", "auto"], capture_output=True, text=True, timeout=120,
                          env={**ENV, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: --device_map splits one model over this machine's devices from one process; launch with plain "
        "python, not torchrun or the deepspeed launcher"]
