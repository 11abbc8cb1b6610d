"""Rules of zero-shot scoring, stated with answers written out here (mutation testing, docs/mutants.md): where a
run's files go and under which names, what its protocol holds, which models have a causal-LM head, the calibrated
prediction, how one split is scored, and that the global RNGs come back as they were."""

import json
import random
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
import yaml

from frozen_glue.config import arguments, contract
from frozen_glue.core import provenance
from frozen_glue.core.tasks import get_task
from frozen_glue.features.data import rows_digest
from frozen_glue.science import zeroshot
from frozen_glue.science.zeroshot_prompts import lm_eval_version, prompt_hash, task_yaml_hash


def test_file_names_and_where_a_zero_shot_run_goes():
    assert (zeroshot.samples_file("validation"), zeroshot.rows_file("validation"), zeroshot.yaml_file("x")) == (
        "samples_validation.jsonl", "rows_validation.jsonl", "task_x.yaml")
    assert zeroshot.folder_for("runs/m/cola", [1, 2]) == Path("runs/m/cola/zeroshot")
    assert zeroshot.folder_for("runs/m/cola/seed3", None) == Path("runs/m/cola/zeroshot")  # one seed's folder
    assert zeroshot.folder_for("runs/m/cola/seed3", [3]) == Path("runs/m/cola/seed3/zeroshot")
    assert zeroshot.folder_for("runs/m/cola/seed3x", None) == Path("runs/m/cola/seed3x/zeroshot")  # not a seed
    assert zeroshot.folder_for("runs/m/cola/myseed3", None) == Path("runs/m/cola/myseed3/zeroshot")


def test_the_protocol_holds_what_changes_the_numbers():
    model, data = SimpleNamespace(random_init=False), SimpleNamespace(task_name="mnli", max_eval_samples=8,
                                                                        max_train_samples=None)
    task = get_task("mnli")
    expected = {"zero_shot": True, "lm_eval": lm_eval_version(), "task_yaml_hash": task_yaml_hash(task),
                "prompt_hash": {"validation_matched": prompt_hash(task, "validation_matched"),
                                "validation_mismatched": prompt_hash(task, "validation_mismatched")},
                "num_fewshot": 0, "calibration": "mean_loglik", "random_init": False, "max_eval_samples": 8,
                "max_train_samples": None}
    assert zeroshot.protocol(model, data) == expected
    assert zeroshot.protocol(model, data, SimpleNamespace(zero_shot_chat_template=False)) == expected
    assert zeroshot.protocol(model, data, SimpleNamespace(zero_shot_chat_template=True)) == {
        "chat_template": True, **expected}


def test_which_models_have_a_causal_lm_head(tmp_path):
    assert zeroshot._causal(["GPT2LMHeadModel"]) and zeroshot._causal(["X", "LlamaForCausalLM"])
    assert not zeroshot._causal(["BertForMaskedLM"]) and not zeroshot._causal(None) and not zeroshot._causal([])
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    assert zeroshot.has_causal_head(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    assert not zeroshot.has_causal_head(tmp_path)
    (tmp_path / "config.json").write_text("[1]")  # not a mapping
    assert not zeroshot.has_causal_head(tmp_path)
    (tmp_path / "config.json").write_text("{torn")
    assert not zeroshot.has_causal_head(tmp_path) and not zeroshot.has_causal_head(tmp_path / "none")


def test_the_calibrated_prediction_subtracts_each_choices_mean():
    ll = np.array([[-1.0, -3.0], [-2.0, -3.5], [-1.5, -2.0]])
    # raw argmax: choice 0 everywhere; column means -1.5 and -2.833: centred rows [0.5, -0.167], [-0.5, -0.667],
    # [0, 0.833]
    assert ll.argmax(-1).tolist() == [0, 0, 0] and zeroshot.calibrated(ll).tolist() == [0, 0, 1]


def samples(idx, lls):
    return [{"doc": {"idx": i}, "resps": [[[str(v), False]] for v in row]} for i, row in zip(idx, lls)]


def test_loglikelihoods_are_read_in_split_order_or_refused():
    raw = datasets.Dataset.from_dict({"idx": [5, 2]})
    assert zeroshot.loglikelihoods(samples([5, 2], [[-1, -2], [-3, -0.5]]), raw).tolist() == [[-1, -2], [-3, -0.5]]
    with pytest.raises(RuntimeError, match="^lm-eval's samples are not the rows written, in order$"):
        zeroshot.loglikelihoods(samples([2, 5], [[-1, -2], [-3, -0.5]]), raw)


def test_one_split_scored_by_hand():
    task = get_task("sst2")
    raw = datasets.Dataset.from_dict({"idx": [10, 11, 12, 13], "sentence": ["a", "b", "c", "d"],
                                      "label": [0, 1, 1, 0]})
    ll = np.array([[-1.0, -2.0], [-1.0, -1.5], [-3.0, -1.0], [-0.5, -4.0]])  # raw 0, 0, 1, 0: accuracy 3/4
    metrics, rows, reason = zeroshot.evaluate_split(task, "validation", raw, ll, [1, 1, 0])
    # calibrated: means -1.375, -2.125; centred [0.375, 0.125] [0.375, 0.625] [-1.625, 1.125] [0.875, -1.875]
    assert metrics == {"eval_accuracy": 0.75, "eval_calibrated_accuracy": 1.0, "eval_majority_accuracy": 0.5,
                       "eval_samples": 4}
    assert rows[1] == {"idx": 11, "label": 1, "prediction": 0, "logliks": [-1.0, -1.5], "calibrated_prediction": 1,
                       "sentence": "b"}
    assert reason == ("validation predictions are not significantly associated with the gold labels (MCC 0.577, "
                      "one-sided p 0.124): no better than the majority-class control")  # 4 rows: too few to tell
    mnli = get_task("mnli")
    three = datasets.Dataset.from_dict({"idx": [0, 1, 2], "premise": ["p"] * 3, "hypothesis": ["h"] * 3,
                                        "label": [0, 1, 2]})
    metrics, rows, reason = zeroshot.evaluate_split(mnli, "validation_mismatched", three, -np.eye(3)[[1, 1, 1]], None)
    assert metrics == {"eval_accuracy_mm": pytest.approx(1 / 3), "eval_calibrated_accuracy_mm": pytest.approx(1 / 3),
                       "eval_samples_mm": 3}
    assert reason == "every validation prediction is class 0 (entailment)"


def test_write_task_writes_the_rows_and_a_yaml_that_reads_them(tmp_path):
    task = get_task("rte")
    raw = datasets.Dataset.from_dict({"idx": [3, 4], "sentence1": ["s1", "t1"], "sentence2": ["s2", "t2"],
                                      "label": [1, 0], "extra": [9, 9]})
    name = zeroshot.write_task(tmp_path, task, "validation", raw)
    rows = [json.loads(line) for line in (tmp_path / "rows_validation.jsonl").read_text().splitlines()]
    assert rows == [{"idx": 3, "sentence1": "s1", "sentence2": "s2", "label": 1},
                    {"idx": 4, "sentence1": "t1", "sentence2": "t2", "label": 0}]
    config = yaml.safe_load((tmp_path / "task_validation.yaml").read_text())
    assert config["task"] == name and config["dataset_path"] == "json" and config["validation_split"] == "validation"
    assert config["dataset_kwargs"] == {"data_files": {"validation": str(tmp_path.resolve() / "rows_validation.jsonl")}}
    assert (config["tag"], config["dataset_name"], config["training_split"], config["test_split"]) == (None,) * 4
    assert list(config) == ["include", "task", "tag", "dataset_path", "dataset_name", "dataset_kwargs",
                            "training_split", "validation_split", "test_split"]


def test_the_global_rngs_come_back_as_they_were():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with zeroshot.isolated_rng():
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        random.random(), np.random.rand(), torch.rand(1)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert zeroshot._finite(float("nan")) is None and zeroshot._finite(float("inf")) is None
    assert zeroshot._finite(1.5) == 1.5 and zeroshot._finite("x") == "x"


def test_a_zero_shot_folder_starts_with_its_config_alone(tmp_path, monkeypatch):
    model_args, data_args, study_args, _ = arguments.parse_args(
        ["--model_name_or_path", str(tmp_path), "--task_name", "rte", "--do_eval", "--zero_shot", "--output_dir",
         str(tmp_path / "out"), "--max_eval_samples", "2"])
    folder = tmp_path / "out" / "zeroshot"
    folder.mkdir(parents=True)
    for old in ("all_results.json", "predictions_validation.jsonl", "samples_validation.jsonl", "rows_x.jsonl",
                "task_validation.yaml"):
        (folder / old).write_text("{}")
    (folder / "notes.txt").write_text("kept")
    raw = {"validation": datasets.Dataset.from_dict({"idx": [1], "sentence1": ["a"], "sentence2": ["b"],
                                                     "label": [0]})}
    proto = zeroshot.protocol(model_args, data_args)
    monkeypatch.setattr("sys.argv", ["run_glue_frozen.py", "--zero_shot"])
    zeroshot.start(folder, model_args, data_args, proto, raw, {"validation": "fp[:2]"}, "m" * 64, "t" * 64, "T0",
                   chat_template="c" * 16)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "notes.txt"]
    config = json.loads((folder / "config.json").read_text())
    task = get_task("rte")
    expected = {"format_version": 1, "task": "rte", "path": "zeroshot", "protocol": proto,
                "protocol_hash": contract.protocol_hash(proto), "git_commit": provenance.git_commit(),
                "lm_eval_version": lm_eval_version(), "task_yaml_hash": task_yaml_hash(task),
                "prompt_hash": {"validation": prompt_hash(task, "validation")}, "num_fewshot": 0,
                "lm_eval_tasks": {"validation": zeroshot.task_name(task, "validation")}, "model_fingerprint": "m" * 64,
                "tokenizer_fingerprint": "t" * 64, "data_fingerprints": {"validation": "fp[:2]"},
                "chat_template": "c" * 16, "data_digests": {"validation": rows_digest(raw["validation"],
                                                                                     task.text_keys)},
                "max_samples": {"max_eval_samples": 2}, "debug_run": True, "start_time": "T0",
                "command": "run_glue_frozen.py --zero_shot"}
    assert {k: config[k] for k in expected} == expected
    assert set(config) == set(expected) | {"args", "versions", "model_source"}
    assert config["versions"]["lm_eval"] == lm_eval_version() and "torch" in config["versions"]
    assert "token" not in config["args"]["model"] and config["args"]["data"]["task_name"] == "rte"
    assert config["args"]["model"]["model_name_or_path"] == str(tmp_path)
