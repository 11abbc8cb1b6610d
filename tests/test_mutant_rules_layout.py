"""Rules of the run folder contract (docs/DESIGN.md), stated with answers written out here (mutation testing,
docs/mutants.md): file and folder names, what a complete run is, which runs readers find and count, how outputs are
cleared, strict and atomic JSON, and where a run may write."""

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from frozen_glue.core import layout
from frozen_glue.core.errors import UserError


def test_names():
    assert layout.predictions_file("validation_matched") == "predictions_validation_matched.jsonl"
    assert layout.predict_results_file("mnli", "test_mismatched") == "predict_results_mnli-mm.txt"
    assert layout.predict_results_file("mnli", "test_matched") == "predict_results_mnli.txt"
    assert layout.seed_dir("a/b", 3) == Path("a/b/seed3")
    assert layout.seed_folders("out", [2, 5], 1) == {2: Path("out/seed2"), 5: Path("out/seed5")}
    assert layout.seed_folders("out", None, 7) == {7: Path("out")} == layout.seed_folders("out", [], 7)


def write_run(root, alias, task, seed, results=None, config=None):
    folder = layout.run_dir(root, alias, task, seed)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config or {"protocol": {"probe": "head"}, "protocol_hash": "h"}))
    if results is not None:
        (folder / "all_results.json").write_text(results if isinstance(results, str) else json.dumps(results))
    return folder


def test_which_runs_readers_find(tmp_path):
    write_run(tmp_path, "b", "cola", 2, {"eval_mcc": 0.2})
    write_run(tmp_path, "a", "cola", 10, {"eval_mcc": 0.1})
    write_run(tmp_path, "a", "cola", 9, {"eval_mcc": 0.3})
    incomplete = write_run(tmp_path, "a", "sst2", 1)
    torn = write_run(tmp_path, "a", "rte", 1, "{torn")
    listed = write_run(tmp_path, "a", "mrpc", 1, "[1, 2]")  # JSON, not an object: not a result
    write_run(tmp_path, "a", "notatask", 1, {})
    write_run(tmp_path, "a", "cola", "x", {})
    (tmp_path / "a" / "cola" / "seed4").write_text("a file")
    runs, skipped = layout.iter_runs(tmp_path)
    assert [(r.model, r.task, r.seed) for r in runs] == [("a", "cola", 10), ("a", "cola", 9), ("b", "cola", 2)]
    assert runs[0].results == {"eval_mcc": 0.1} and runs[0].config["protocol_hash"] == "h"
    assert runs[0].folder == tmp_path / "a" / "cola" / "seed10"
    assert skipped == [f"corrupt all_results.json, run skipped: {listed / 'all_results.json'}",
                       f"corrupt all_results.json, run skipped: {torn / 'all_results.json'}",
                       f"incomplete run (no all_results.json), not counted: {incomplete}"]
    assert [r.seed for r in layout.iter_runs(tmp_path, model="a", task="cola")[0]] == [10, 9]
    assert [r.model for r in layout.iter_runs(tmp_path, task="cola")[0]] == ["a", "a", "b"]
    assert layout.iter_runs(tmp_path, model="b")[1] == []


def test_a_run_as_readers_see_it(tmp_path):
    folder = write_run(tmp_path, "m", "cola", 1, {}, {"protocol": {"probe": "logistic"}, "protocol_hash": "p"})
    (folder / "selection.json").write_text(json.dumps({"chosen": 1}))
    (folder / "layer_results.json").write_text(json.dumps({"2": {"eval_mcc": 0.5}, "10": {}}))
    (run,) = layout.iter_runs(tmp_path)[0]
    assert run.protocol == {"probe": "logistic"} and run.protocol_hash == "p" and run.deterministic
    assert run.selection == {"chosen": 1} and run.layers == {2: {"eval_mcc": 0.5}, 10: {}}
    (folder / "selection.json").write_text("{torn")
    (folder / "layer_results.json").unlink()
    assert run.selection == {} and run.layers == {}
    bare = layout.Run("m", "cola", 1, folder, {}, {})
    assert bare.protocol is None and bare.protocol_hash is None and not bare.deterministic
    assert not layout.Run("m", "cola", 1, folder, {}, {"protocol": {"probe": "head"}}).deterministic


def test_a_deterministic_probes_seeds_count_once_per_model_task_and_identity(tmp_path):
    logistic = {"protocol": {"probe": "logistic"}, "protocol_hash": "p"}
    other = {"protocol": {"probe": "logistic", "c": 2}, "protocol_hash": "q"}
    for seed in (1, 2):
        write_run(tmp_path, "m", "cola", seed, {}, logistic)
        write_run(tmp_path, "m", "rte", seed, {}, logistic)
        write_run(tmp_path, "n", "cola", seed, {})  # a seeded head: every seed counts
    write_run(tmp_path, "m", "cola", 3, {}, other)
    found = layout.iter_runs(tmp_path)[0]
    assert [(r.model, r.task, r.seed) for r in layout.counted(found)] == [
        ("m", "cola", 1), ("m", "cola", 3), ("m", "rte", 1), ("n", "cola", 1), ("n", "cola", 2)]


def test_reading_json(tmp_path):
    assert layout.read_json(tmp_path / "none.json") == {} and layout.read_config(tmp_path) == {}
    (tmp_path / "l.json").write_text("[1]")
    assert layout.read_json(tmp_path / "l.json") == {}
    (tmp_path / "config.json").write_text('{"a": 1}')
    assert layout.read_config(tmp_path) == {"a": 1}
    assert not layout.is_complete(tmp_path)
    (tmp_path / "all_results.json").write_text("{}")
    assert layout.is_complete(tmp_path) and layout.read_results(tmp_path) == {}


def test_clearing_a_folder_removes_every_output_and_keeps_the_rest(tmp_path):
    outputs = ["all_results.json", "train_results.json", "eval_results.json", "trainer_state.json",
               "head.safetensors", "layer_results.json", "layer_heads.safetensors", "selection.json", "mdl.json",
               "selectivity.json", "convex.json", "predictions_validation.jsonl", "predict_results_cola.txt"]
    for name in outputs + ["config.json", "run.log", "notes.txt"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_text("x")
    layout.clear_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "notes.txt", "run.log"]


def test_strict_json_has_null_where_a_value_is_undefined(tmp_path):
    obj = {"a": float("nan"), "b": [np.float32(1.5), np.inf, (2, -math.inf)], "c": np.int64(3), "d": True,
           "e": {"f": np.float64("nan")}, "g": Path("x")}
    assert layout.strict(obj) == {"a": None, "b": [1.5, None, [2, None]], "c": 3, "d": True, "e": {"f": None},
                                  "g": Path("x")}
    assert type(layout.strict(np.float32(1.5))) is float
    layout.atomic_write_json(tmp_path / "sub" / "r.json", {"z": 1, "a": float("nan"), "p": Path("q")})
    assert (tmp_path / "sub" / "r.json").read_text() == '{\n  "a": null,\n  "p": "q",\n  "z": 1\n}\n'
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "r.json").st_mode) == 0o644
    layout.atomic_write_jsonl(tmp_path / "r.jsonl", [{"t": "é", "v": float("inf")}, {"t": 1}])
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == '{"t": "é", "v": null}\n{"t": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "sub"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    (tmp_path / "r.json").write_text("old")
    with pytest.raises(TypeError):
        layout.atomic_write_bytes(tmp_path / "r.json", "text, not bytes")
    assert (tmp_path / "r.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_where_a_run_may_write(tmp_path, monkeypatch):
    layout.check_writable(tmp_path / "new" / "deeper", "--output_dir")  # made later: its nearest parent is writable
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError) as refused:
        layout.check_writable(tmp_path / "file" / "out", "--output_dir")
    assert str(refused.value) == (f"--output_dir {tmp_path / 'file' / 'out'}: {tmp_path / 'file'} is a file, not a "
                                  f"folder; give a folder path")
    seen = []

    def access(path, mode):  # a read-only folder (tests may run as root, who can write anywhere)
        seen.append((Path(path), mode))
        return False

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(UserError) as refused:
        layout.check_writable(tmp_path / "out", "RUNS")
    assert str(refused.value) == (f"RUNS {tmp_path / 'out'}: {tmp_path} is not writable (read-only or another "
                                  f"user's); give a folder you can write")
    assert seen == [(tmp_path, os.W_OK | os.X_OK)]


def test_a_write_goes_through_a_hidden_temp_file_beside_its_target(tmp_path, monkeypatch):
    replaced = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: replaced.append((Path(src), Path(dst))) or real(src, dst))
    target = tmp_path / "a" / "b" / "r.json"  # two folders to make
    layout.atomic_write_json(target, {"x": 1})
    ((src, dst),) = replaced
    assert dst == target and src.parent == target.parent
    assert src.name.startswith(".r.json.") and src.name.endswith(".tmp")
    layout.clear_outputs(tmp_path / "a")  # nothing to clear: no error
