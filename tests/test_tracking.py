"""W&B as a user expects: one run per seed named <model>/<task>/seed<N>, grouped by model x task, config = the
run's resolved arguments, train history and task metrics logged on both paths; silent unless asked for. The
offline run files are read back (wandb's transaction log: LevelDB-style records holding its protobufs)."""

import json

import pytest

from conftest import TRAIN, run

SEEDS = ("1", "2")


def wandb_records(path):
    """The protobuf records of one offline .wandb file."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, chunks, buf = path.read_bytes(), 7, [], b""  # 7: W&B's file header
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768  # LevelDB log blocks: a record header never straddles one
        if left < 7:
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            chunks.append(buf + chunk)
    for raw in chunks:
        record = pb.Record()
        record.ParseFromString(raw)
        yield record


def read_run(path):
    """(display name, group, config, history rows, summary) of one offline W&B run."""
    name = group = None
    config, history, summary = {}, [], {}
    for rec in wandb_records(path):
        kind = rec.WhichOneof("record_type")
        key = (lambda item: item.key or "/".join(item.nested_key))
        if kind == "run":
            name, group = rec.run.display_name, rec.run.run_group
            config.update({key(i): json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            config.update({key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            history.append({key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({key(i): json.loads(i.value_json) for i in rec.summary.update if key(i)})
    return name, group, config, history, summary


@pytest.mark.parametrize("cached", [False, True])
def test_one_wandb_run_per_seed_on_both_paths(script, assets, tmp_path, capsys, monkeypatch, cached):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    out_dir = tmp_path / "runs" / "tiny-gpt2" / "cola"
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    code, out, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                         assets["glue_dir"], "--output_dir", out_dir, *TRAIN, "--seeds", *SEEDS, "--logging_steps",
                         "10", "--report_to", "wandb", *cache)
    assert code == 0, err
    assert "Trainer.train()" not in out  # the cached path logs from its fast loop
    runs = {}
    for path in sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb")):
        name, group, config, history, summary = read_run(path)
        runs[name] = (group, config, history, summary)
    assert sorted(runs) == [f"tiny-gpt2/cola/seed{s}" for s in SEEDS]
    for seed in SEEDS:
        group, config, history, summary = runs[f"tiny-gpt2/cola/seed{seed}"]
        folder = out_dir / f"seed{seed}"
        results = json.loads((folder / "all_results.json").read_text())
        assert group == "tiny-gpt2/cola"
        assert config["seed"] == int(seed) and config["path"] == ("cached" if cached else "trainer")
        assert config["args"]["training"]["learning_rate"] == 1e-2
        losses = [row["train/loss"] for row in history if "train/loss" in row]
        state = json.loads((folder / "trainer_state.json").read_text())
        assert losses == [e["loss"] for e in state["log_history"] if "loss" in e] and len(losses) == 5
        assert summary["eval/matthews_correlation"] == results["eval_matthews_correlation"]
        assert summary["train/train_loss"] == results["train_loss"]


def test_nothing_about_wandb_unless_asked(script, assets, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    code, out, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                         assets["glue_dir"], "--output_dir", tmp_path / "r", *TRAIN)
    assert code == 0 and "wandb" not in (out + err).replace(str(tmp_path), "").lower()
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "run_glue_frozen.py"), "--help"], capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0 and "Running in WANDB" not in proc.stdout + proc.stderr
