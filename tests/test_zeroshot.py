"""--zero_shot: lm-eval's GLUE prompt on the model's own causal-LM head, on the probe's rows (frozen_glue/science/zeroshot.py).
The log-likelihoods are Σ log p(" choice" | prompt) computed independently; lm-eval's metric equals ours; the probe
is untouched; the folder is not a seed; bad inputs are one line."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from frozen_glue.config import contract
from frozen_glue.core import layout
from frozen_glue.report import predictions
from frozen_glue.report import results as run_results
from frozen_glue.science import zeroshot

from conftest import TRAIN, one_error, results, run

pytest.importorskip("lm_eval")


def zs_args(assets, out, *extra, task="cola", model="base"):
    return ["--model_name_or_path", assets[model], "--task_name", task, "--glue_dir", assets["glue_dir"],
            "--output_dir", out, "--do_eval", "--zero_shot", "--use_cpu", "true", "--max_eval_samples", "40", *extra]



def rows(folder, name):
    return [json.loads(line) for line in (Path(folder) / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def zs_runs(script, assets, tmp_path_factory):
    """Zero-shot-only runs on CoLA: the base, the base taught the prompt, and the COMET-style model with its own
    tokenizer dir."""
    import shutil

    from frozen_glue.demo import tiny

    root = tmp_path_factory.mktemp("zs")
    # the base taught the CoLA prompt (as the demo's): its answers follow the rule, so a metric is not trivially 0
    # (an untaught tiny GPT-2 gives every row the same answer)
    noisy = shutil.copytree(assets["base"], root / "prompted-model")
    tiny.teach_prompts(noisy, tasks=("cola",), steps=300)
    for alias, model, extra in (("base", assets["base"], []), ("prompted", noisy, []),
                                ("comet", assets["comet"], ["--tokenizer_name", assets["comet_tokenizer"]])):
        assert script.main([str(a) for a in zs_args({**assets, "m": model}, root / alias / "cola", *extra,
                                                    model="m")]) == 0
    return root


def test_folder_contract(zs_runs):
    folder = zs_runs / "base" / "cola" / "zeroshot"
    config, res = layout.read_config(folder), results(folder)
    for key in ("lm_eval_version", "task_yaml_hash", "prompt_hash", "num_fewshot", "model_fingerprint",
                "tokenizer_fingerprint", "data_digests", "protocol_hash"):
        assert config[key] is not None, key
    assert config["protocol_hash"] == contract.protocol_hash(config["protocol"])
    for key in ("eval_matthews_correlation", "eval_calibrated_matthews_correlation",
                "eval_majority_matthews_correlation", "head_collapsed", "lm_eval_mcc"):
        assert key in res, key
    preds = rows(folder, "predictions_validation.jsonl")
    assert [r["idx"] for r in preds] == list(range(40))
    assert set(preds[0]) >= {"idx", "label", "prediction", "logliks", "calibrated_prediction", "sentence"}
    assert len(rows(folder, "samples_validation.jsonl")) == 40
    # the config is written first: its mtime is not after any output's
    assert all((folder / "config.json").stat().st_mtime <= p.stat().st_mtime for p in folder.iterdir())


def test_logliks_equal_an_independent_torch_computation(zs_runs, assets):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(assets["base"]).eval()
    tok = AutoTokenizer.from_pretrained(assets["base"])
    for row in rows(zs_runs / "base" / "cola" / "zeroshot", "predictions_validation.jsonl")[:8]:
        prompt = f"{row['sentence']}\nQuestion: Does this sentence make sense?\nAnswer:"
        for choice, ours in zip(("no", "yes"), row["logliks"]):
            context = tok(prompt)["input_ids"]
            whole = tok(prompt + " " + choice)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
            expected = sum(float(logp[i - 1, whole[i]]) for i in range(len(context), len(whole)))
            assert ours == pytest.approx(expected, abs=1e-4)


def test_batch_size_1_and_32_agree(assets, tmp_path):
    from frozen_glue.config.arguments import DataTrainingArguments, ModelArguments
    from frozen_glue.core.tasks import get_task
    from frozen_glue.features.data import load_glue

    task = get_task("cola")
    data_args = DataTrainingArguments(task_name="cola", glue_dir=str(assets["glue_dir"]))
    raw = load_glue(task, data_args)[0]["validation"].select(range(24))
    model, tok = zeroshot.load_lm(ModelArguments(model_name_or_path=str(assets["base"])))
    lls = []
    for batch in (1, 32):
        folder = tmp_path / f"b{batch}"
        name = zeroshot.write_task(folder, task, "validation", raw)
        _, samples = zeroshot.score(model, tok, folder, [name], batch)[name]
        lls.append(zeroshot.loglikelihoods(samples, raw))
    np.testing.assert_allclose(lls[0], lls[1], atol=1e-5)


def test_lm_eval_metric_equals_ours(zs_runs):
    res = results(zs_runs / "prompted" / "cola" / "zeroshot")
    preds = rows(zs_runs / "prompted" / "cola" / "zeroshot", "predictions_validation.jsonl")
    assert len({r["prediction"] for r in preds}) == 2 and res["eval_matthews_correlation"] > 0.2
    assert res["lm_eval_mcc"] == pytest.approx(res["eval_matthews_correlation"], abs=1e-9)


def test_comet_style_model_loads_with_its_tokenizer_and_has_the_base_prompt_hash(zs_runs):
    base, comet = (layout.read_config(zs_runs / m / "cola" / "zeroshot") for m in ("base", "comet"))
    assert comet["prompt_hash"] == base["prompt_hash"]
    assert comet["model_fingerprint"] != base["model_fingerprint"]
    # lm-eval's own per-example prompt hashes: the same rendered prompts for both models
    hashes = [[s["prompt_hash"] for s in rows(zs_runs / m / "cola" / "zeroshot", "samples_validation.jsonl")]
              for m in ("base", "comet")]
    assert hashes[0] == hashes[1]


def test_calibrated_prediction_subtracts_each_choice_mean():
    # raw argmax: class 0 everywhere; choice means (-2, -4); centred rows (1,-1), (0,1), (-1,0) -> 0, 1, 1
    ll = np.array([[-1.0, -5.0], [-2.0, -3.0], [-3.0, -4.0]])
    assert ll.argmax(-1).tolist() == [0, 0, 0]
    assert zeroshot.calibrated(ll).tolist() == [0, 1, 1]


def test_isolated_rng_leaves_the_global_rngs_as_they_were():
    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = draws()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with zeroshot.isolated_rng():
        random.seed(99), np.random.seed(99), torch.manual_seed(99)
        draws()
    assert draws() == expected


def test_folder_beside_the_seeds():
    assert zeroshot.folder_for("runs/m/cola", [1, 2]) == Path("runs/m/cola/zeroshot")
    assert zeroshot.folder_for("runs/m/cola", None) == Path("runs/m/cola/zeroshot")
    assert zeroshot.folder_for("runs/m/cola/seed3", None) == Path("runs/m/cola/zeroshot")


def test_probe_is_byte_identical_with_and_without_zero_shot_and_zeroshot_is_no_seed(script, assets, tmp_path,
                                                                                    capsys):
    common = ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
              *TRAIN, "--seeds", "1", "--feature_cache", tmp_path / "cache", "--max_eval_samples", "40"]
    for name, extra in (("plain", []), ("with", ["--zero_shot"])):
        code, _, err = run(script, capsys, *common, "--output_dir", tmp_path / name / "m" / "cola", *extra)
        assert code == 0, err
    seeds = [tmp_path / n / "m" / "cola" / "seed1" for n in ("plain", "with")]
    for name in ("predictions_validation.jsonl", "head.safetensors"):
        assert (seeds[0] / name).read_bytes() == (seeds[1] / name).read_bytes(), name
    timeless = [{k: v for k, v in results(s).items() if "runtime" not in k and "per_second" not in k} for s in seeds]
    assert timeless[0] == timeless[1]
    assert layout.is_complete(tmp_path / "with" / "m" / "cola" / "zeroshot")
    # the readers count seed folders only
    found, skipped = layout.iter_runs(tmp_path / "with")
    assert [(r.model, r.seed) for r in found] == [("m", 1)] and not skipped
    table, warnings = run_results.load_runs(tmp_path / "with")
    assert set(table["seed"]) == {1} and not any("zeroshot" in w for w in warnings)
    assert list(predictions.read_predictions(tmp_path / "with", "m", "cola", "validation").attrs["seeds"]) == ["seed1"]


def test_a_killed_run_is_redone_and_a_complete_one_kept(script, assets, tmp_path, capsys):
    folder = tmp_path / "m" / "cola" / "zeroshot"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "predictions_validation.jsonl").write_text("stale\n")
    (folder / "samples_validation.jsonl").write_text("stale\n")
    code, _, err = run(script, capsys, *zs_args(assets, tmp_path / "m" / "cola"))
    assert code == 0, err
    assert layout.is_complete(folder) and "stale" not in (folder / "samples_validation.jsonl").read_text()
    code, _, err = run(script, capsys, *zs_args(assets, tmp_path / "m" / "cola"))
    assert code == 2 and "already holds a complete zero-shot run" in one_error(err)


@pytest.mark.parametrize("case, message", [
    ("stsb", "--zero_shot: lm-eval has no zero-shot STS-B task"),
    ("bert", "(no causal-LM head); drop --zero_shot for this model"),
    ("no_eval", "--zero_shot scores the validation rows: add --do_eval"),
    ("missing", "--zero_shot needs lm-eval, which is not installed here: pip install lm-eval==0.4.13"),
])
def test_bad_inputs_are_one_line_exit_2(script, assets, tmp_path, capsys, monkeypatch, case, message):
    args = zs_args(assets, tmp_path / "m" / "cola", task="stsb" if case == "stsb" else "cola",
                   model="bert" if case == "bert" else "base")
    if case == "no_eval":
        args.remove("--do_eval")
        args += ["--do_train"]
    if case == "missing":
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    code, _, err = run(script, capsys, *args)
    assert code == 2 and message in one_error(err)
    assert not (tmp_path / "m" / "cola" / "zeroshot" / "config.json").exists()


def test_sweep_adds_one_zero_shot_run_per_model_and_task_and_skips_complete_ones(zs_runs, assets, tmp_path,
                                                                                 monkeypatch, capsys):
    import shutil

    from frozen_glue.demo import tiny
    from frozen_glue.sweep import sweep

    (tmp_path / "models.tsv").write_text(f"base\t{assets['base']}\t-\nfresh\t{assets['base']}\t-\n")
    glue = shutil.copytree(assets["glue_dir"], tmp_path / "glue")  # with STS-B: the sweep checks every asked task
    tiny.write_glue_dir(glue, tasks=("stsb",))
    for key, value in {"MODELS": tmp_path / "models.tsv", "RUNS": zs_runs, "GLUE_DIR": glue,
                       "TASKS": "cola stsb", "SEEDS": "1", "LAUNCHER": "python", "DRY_RUN": "1", "ZERO_SHOT": "1",
                       "EXTRA_ARGS": "--max_eval_samples 40 --use_cpu true"}.items():
        monkeypatch.setenv(key, str(value))
    assert sweep.main([]) == 0
    out = capsys.readouterr().out
    zero = [line for line in out.splitlines() if "--zero_shot" in line]
    assert len(zero) == 1 and "--output_dir " + str(zs_runs / "fresh" / "cola") in zero[0]  # none for STS-B
    assert f"skip (complete): {zs_runs / 'base' / 'cola' / 'zeroshot'}" in out
    monkeypatch.setenv("EXTRA_ARGS", "--max_eval_samples 30 --use_cpu true")
    assert sweep.main([]) == 2
    err = capsys.readouterr().err
    assert f"{zs_runs / 'base' / 'cola' / 'zeroshot'}: max_eval_samples 40 -> 30" in one_error(err)


@pytest.mark.parametrize("field, words", [("model_fingerprint", "the model's weights differ"),
                                          ("tokenizer_fingerprint", "the tokenizer differ"),
                                          ("data_fingerprints", "the data (validation) differ")])
def test_the_sweep_skips_a_zero_shot_run_only_with_the_same_fingerprints(zs_runs, assets, tmp_path, monkeypatch,
                                                                          capsys, field, words):
    """A complete zero-shot run of the same protocol but another model, tokenizer or data (its recorded fingerprint
    changed; the model's file stamp too, so it is hashed again) is not skipped: the sweep names what differs."""
    import shutil

    from frozen_glue.sweep import sweep

    folder = shutil.copytree(zs_runs / "base" / "cola" / "zeroshot", tmp_path / "runs" / "base" / "cola" / "zeroshot")
    (tmp_path / "models.tsv").write_text(f"base\t{assets['base']}\t-\n")
    for key, value in {"MODELS": tmp_path / "models.tsv", "RUNS": tmp_path / "runs", "GLUE_DIR": assets["glue_dir"],
                       "TASKS": "cola", "SEEDS": "1", "LAUNCHER": "python", "DRY_RUN": "1", "ZERO_SHOT": "1",
                       "EXTRA_ARGS": "--max_eval_samples 40 --use_cpu true"}.items():
        monkeypatch.setenv(key, str(value))
    assert sweep.main([]) == 0 and f"skip (complete): {folder}" in capsys.readouterr().out
    config = json.loads((folder / "config.json").read_text())
    config[field] = {"validation": "other"} if field == "data_fingerprints" else "other"
    config["model_source"] = None
    (folder / "config.json").write_text(json.dumps(config))
    assert sweep.main([]) == 2
    assert f"{folder}: {words}" in one_error(capsys.readouterr().err)


def write_tree(root, alias, probe, prompt, prompt_hash="p1", gold=(1, 0, 1, 0)):
    """A hand-made sst2 run tree: one probe seed and a zero-shot folder with the given predictions."""
    seed, zs = root / alias / "sst2" / "seed1", root / alias / "sst2" / "zeroshot"
    for folder, preds, extra in ((seed, probe, {"probs": [0.5, 0.5]}), (zs, prompt, {})):
        folder.mkdir(parents=True)
        rows = [{"idx": i, "label": g, "prediction": p, "sentence": f"s{i}", **extra}
                for i, (g, p) in enumerate(zip(gold, preds))]
        layout.atomic_write_jsonl(folder / "predictions_validation.jsonl", rows)
        accuracy = float(np.mean(np.array(preds) == np.array(gold)))
        layout.atomic_write_json(folder / "config.json", {"protocol": {"a": 1}, "protocol_hash": "h",
                                                          "prompt_hash": {"validation": prompt_hash}})
        layout.atomic_write_json(folder / "all_results.json", {"eval_accuracy": accuracy})


def test_report_section_known_answers_and_prompt_hash_refusal(tmp_path):
    from frozen_glue.report import zeroshot_report

    runs = tmp_path / "runs"
    # gold 1 0 1 0. base: probe 4/4, prompt 2/4; derived: probe 3/4, prompt 2/4 (right on idx 1, 3)
    write_tree(runs, "base", probe=(1, 0, 1, 0), prompt=(1, 1, 1, 1))
    write_tree(runs, "derived", probe=(1, 0, 1, 1), prompt=(0, 0, 0, 0))
    (tmp_path / "models.tsv").write_text(f"base\t{tmp_path}\t-\nderived\t{tmp_path}\t-\t\t-\tbase\n")
    lines = zeroshot_report.section(runs, tmp_path / "models.tsv", tmp_path, n_resamples=200)
    assert "## Prompting vs probing\n" in lines
    table = __import__("pandas").read_csv(tmp_path / "zeroshot_vs_probe.csv").set_index("model")
    # derived: probe right on 0 1 2, prompt right on 1 3 -> both 1, probe only 2, prompt only 1, both wrong 0
    assert table.loc["derived", ["both_right", "probe_only", "prompt_only", "both_wrong"]].tolist() == [1, 2, 1, 0]
    assert table.loc["base", ["both_right", "probe_only", "prompt_only", "both_wrong"]].tolist() == [2, 2, 0, 0]
    assert table.loc["base", "mcnemar_p"] == pytest.approx(0.5)  # 2 discordant pairs, both one way: 2 x 0.5^2
    pair = __import__("pandas").read_csv(tmp_path / "zeroshot_pairs.csv").iloc[0]
    # Δprobe = 0.75 - 1.0 = -0.25; Δzero-shot = 0.5 - 0.5 = 0; their difference -0.25
    assert (pair.delta_probe, pair.delta_zero_shot, pair.difference) == pytest.approx((-0.25, 0.0, -0.25))
    assert pair.ci_low <= -0.25 <= pair.ci_high
    examples = (tmp_path / "disagreements_zeroshot.tsv").read_text()
    assert examples.count("probe right, prompt wrong") == 4 and examples.count("prompt right, probe wrong") == 1
    # summarize.py carries the section into report.md
    import importlib.util

    spec = importlib.util.spec_from_file_location("summarize", Path(__file__).resolve().parents[1] / "analysis" /
                                                  "summarize.py")
    summarize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarize)
    assert summarize.main(["--runs", str(runs), "--out", str(tmp_path / "reports"), "--models",
                           str(tmp_path / "models.tsv"), "--n_resamples", "200"]) == 0
    assert "## Prompting vs probing" in (tmp_path / "reports" / "report.md").read_text()
    # another prompt for the derived model: the pair is refused in one line, the rest of the section stays
    layout.atomic_write_json(runs / "derived" / "sst2" / "zeroshot" / "config.json",
                             {"protocol": {"a": 1}, "protocol_hash": "h", "prompt_hash": {"validation": "p2"}})
    lines = zeroshot_report.section(runs, tmp_path / "models.tsv", tmp_path, n_resamples=200)
    refused = [line for line in lines if line.startswith("- refused:")]
    assert refused == ["- refused: base → derived (sst2/validation): prompt hashes differ (p1 vs p2): the two "
                       "zero-shot runs used different prompts (another lm-eval version?); rerun one of them"]


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "shared" / "data" / "glue" / "CoLA").is_dir(),
                    reason="real GLUE data not here")
def test_real_cola_rows_with_a_causal_lm_from_a_config(script, assets, tmp_path, capsys):
    from conftest import SHARED_GLUE

    code, _, err = run(script, capsys, *zs_args({**assets, "glue_dir": SHARED_GLUE}, tmp_path / "m" / "cola",
                                                "--max_eval_samples", "64"))
    assert code == 0, err
    preds = rows(tmp_path / "m" / "cola" / "zeroshot", "predictions_validation.jsonl")
    assert len(preds) == 64 and all(len(r["logliks"]) == 2 for r in preds)
    assert layout.read_config(tmp_path / "m" / "cola" / "zeroshot")["debug_run"] is True
