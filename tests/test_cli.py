"""The command line as a user meets it: eval-only and predict-only with a trained head, the flag contract (works,
falls back in one line, or is refused in one line), upstream's output files and keys on both paths, and exit
codes with their messages."""

import json
import os
import subprocess
import sys

import pytest
import torch

from frozen_glue.config import arguments, contract
from frozen_glue.features import cache as feature_cache

from conftest import ROOT, TRAIN, one_error, predictions, results, run


def gpt2_args(assets, out, *extra, task="cola"):
    return ["--model_name_or_path", assets["base"], "--task_name", task, "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN, *extra]



# ------------------------------------------------------------------------------------- eval-only, predict-only


def test_full_classifier_checkpoint_is_evaluated_with_its_own_head(script, assets, tmp_path, capsys):
    """A saved *ForSequenceClassification keeps its trained head under --do_eval alone (here a head that says
    class 0 for everything: a random head would not)."""
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(assets["bert"], num_labels=2)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0, -5.0]))
    model.save_pretrained(tmp_path / "clf")
    (tmp_path / "clf" / "vocab.txt").write_bytes((assets["bert"] / "vocab.txt").read_bytes())
    code, out, err = run(script, capsys, "--model_name_or_path", tmp_path / "clf", "--tokenizer_name", assets["bert"],
                         "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir", tmp_path / "eval",
                         "--do_eval", "--use_cpu", "true")
    assert code == 0, err
    assert f"evaluating the classification head saved in {tmp_path / 'clf'}" in out
    assert {r["prediction"] for r in predictions(tmp_path / "eval")} == {0}
    assert "train_loss" not in results(tmp_path / "eval")


def test_base_without_head_is_refused_for_eval_only(script, assets, tmp_path, capsys):
    for flags in (["--do_eval"], ["--do_predict"]):
        code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r")[:8], *flags, "--use_cpu", "true")
        assert code == 2
        assert one_error(err) == (f"error: {assets['base']} has no trained classification head (a new one would be "
                                  f"random); to evaluate a head trained with this tool pass --head_from <run "
                                  f"folder>, or add --do_train")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("cached", [False, True])
def test_head_from_reproduces_the_run(script, assets, tmp_path, capsys, cached):
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "train"), *cache)[0] == 0
    code, out, err = run(script, capsys, *gpt2_args(assets, tmp_path / "eval")[:8], "--do_eval", "--use_cpu", "true",
                         "--head_from", tmp_path / "train", *cache)
    assert code == 0, err
    trained, evaluated = results(tmp_path / "train"), results(tmp_path / "eval")
    for key in ("eval_matthews_correlation", "eval_loss"):
        assert evaluated[key] == trained[key]
    # the same predictions, probabilities and pvi (an eval-only run reads the train labels for the prior too)
    assert predictions(tmp_path / "eval") == predictions(tmp_path / "train")
    assert predictions(tmp_path / "eval")[0]["pvi"] is not None
    assert not (tmp_path / "eval" / "train_results.json").exists()


def test_head_from_another_base_or_task_is_refused(script, assets, tmp_path, capsys):
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "train"))[0] == 0
    code, _, err = run(script, capsys, "--model_name_or_path", assets["comet"], "--tokenizer_name",
                       assets["comet_tokenizer"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
                       "--output_dir", tmp_path / "e1", "--do_eval", "--head_from", tmp_path / "train")
    assert code == 2 and "was trained on another model (model fingerprint" in one_error(err)
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "e2", task="sst2")[:8], "--do_eval",
                       "--head_from", tmp_path / "train")
    assert code == 2 and one_error(err).endswith("is a cola run; this run is sst2")
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "e3")[:8], "--do_eval",
                       "--head_from", tmp_path / "nothing")
    assert code == 2 and "no head.safetensors there" in one_error(err)


# ---------------------------------------------------------------------------------------------- flag contract


def test_every_training_flag_has_one_place_in_the_contract():
    import dataclasses

    fields = {f.name for f in dataclasses.fields(arguments.FrozenTrainingArguments) if f.init}
    sets = [contract.NO_EFFECT, contract.FAST_LOOP, set(contract.CHANGES_FEATURES), set(contract.REFUSED)]
    named = set().union(*sets)
    assert named <= fields, f"not TrainingArguments fields: {named - fields}"
    assert sum(len(s) for s in sets) == len(named), "a flag is in two sets"
    # what is left falls back to Trainer.train() on the cached path: a short, deliberate list
    assert fields - named == {"bf16", "fp16", "eval_strategy", "save_strategy", "lr_scheduler_type", "optim",
                              "neftune_noise_alpha", "torch_compile", "torch_compile_backend", "torch_compile_mode",
                              "use_liger_kernel", "parallelism_config", "fsdp", "fsdp_config", "eval_on_start"} - named


def test_fallback_reasons_come_from_the_allowlist():
    def reason(*argv):
        *_, training = arguments.parse_args(["--model_name_or_path", "m", "--task_name", "cola", "--output_dir", "o",
                                             "--do_train", *argv])
        return contract.fast_loop_fallback(training)

    assert reason() is None
    assert reason("--weight_decay", "0.1", "--max_grad_norm", "0.1", "--gradient_accumulation_steps", "2",
                  "--lr_scheduler_type", "cosine", "--warmup_steps", "0.1", "--logging_steps", "3",
                  "--label_smoothing_factor", "0.1", "--max_steps", "5", "--optim", "sgd") is None
    assert reason("--optim", "adafactor") == "--optim adafactor (not elementwise)"
    assert reason("--eval_strategy", "epoch") == "--eval_strategy epoch"
    assert reason("--lr_scheduler_type", "reduce_lr_on_plateau", "--eval_strategy", "epoch") == (
        "--lr_scheduler_type reduce_lr_on_plateau (needs evaluation during training), --eval_strategy epoch")


def test_optimizer_outside_the_fast_loop_falls_back_with_equal_results(script, assets, tmp_path, capsys):
    extra = ["--optim", "adafactor", "--seeds", "1", "2"]
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "t", *extra))[0] == 0
    code, out, _ = run(script, capsys, *gpt2_args(assets, tmp_path / "c", *extra), "--feature_cache", tmp_path / "k")
    assert code == 0
    assert [ln for ln in out.splitlines() if "Trainer.train()" in ln] == [
        "cached path: heads train with Trainer.train(), one seed at a time (--optim adafactor (not elementwise))"]
    for seed in ("seed1", "seed2"):
        assert results(tmp_path / "c" / seed)["eval_loss"] == pytest.approx(
            results(tmp_path / "t" / seed)["eval_loss"], abs=1e-5)


def test_eval_strategy_epoch_logs_validation_metrics_on_both_paths(script, assets, tmp_path, capsys):
    extra = ["--eval_strategy", "epoch"]
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "t", *extra))[0] == 0
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "c", *extra), "--feature_cache", tmp_path / "k")[0] == 0
    for path in ("t", "c"):
        history = json.loads((tmp_path / path / "trainer_state.json").read_text())["log_history"]
        evals = [e for e in history if "eval_matthews_correlation" in e]
        assert [e["epoch"] for e in evals] == [1.0, 2.0], path
    assert results(tmp_path / "c")["eval_loss"] == pytest.approx(results(tmp_path / "t")["eval_loss"], abs=1e-5)


def test_overwrite_cache_rebuilds_the_same_entry(script, assets, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "a"), "--feature_cache", cache)[0] == 0
    entries = sorted(cache.rglob("*.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in entries]
    before = feature_cache.stats["base_forward_batches"]
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "b"), "--feature_cache", cache, "--overwrite_cache")[0] == 0
    assert feature_cache.stats["base_forward_batches"] > before
    assert sorted(cache.rglob("*.safetensors")) == entries  # same keys: rebuilt in place, nothing orphaned
    assert all(p.stat().st_mtime_ns > s for p, s in zip(entries, stamps))
    code, out, _ = run(script, capsys, *gpt2_args(assets, tmp_path / "c"), "--feature_cache", cache)
    assert code == 0 and "0 base forward batches this run" in out  # the rebuilt entry is found again
    assert results(tmp_path / "c")["eval_loss"] == results(tmp_path / "a")["eval_loss"]


@pytest.mark.parametrize("cached", [False, True])
def test_save_full_model_is_a_loadable_classifier(script, assets, tmp_path, capsys, cached):
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    assert run(script, capsys, *gpt2_args(assets, tmp_path / "run"), "--save_full_model", *cache)[0] == 0
    model = tmp_path / "run" / "model"
    assert (model / "config.json").exists()
    code, _, err = run(script, capsys, "--model_name_or_path", model, "--task_name", "cola", "--glue_dir",
                       assets["glue_dir"], "--output_dir", tmp_path / "eval", "--do_eval", "--use_cpu", "true")
    assert code == 0, err
    assert results(tmp_path / "eval")["eval_loss"] == pytest.approx(results(tmp_path / "run")["eval_loss"], abs=1e-6)


@pytest.mark.parametrize("flag, message", [
    (["--push_to_hub"], "--push_to_hub: not supported"),
    (["--resume_from_checkpoint", "ckpt"], "--resume_from_checkpoint: runs write no checkpoints"),
    (["--load_best_model_at_end", "true", "--eval_strategy", "epoch"], "--load_best_model_at_end: would choose"),
])
def test_refused_flags_name_the_alternative(script, assets, tmp_path, capsys, flag, message):
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r"), *flag)
    assert code == 2 and one_error(err).startswith(f"error: {message}")
    assert not (tmp_path / "r").exists()


# -------------------------------------------------------------------------------------- upstream's outputs

# what upstream run_glue.py writes into --output_dir (model files aside: we save the head only), and its keys
UPSTREAM = {
    "train_results.json": {"epoch", "total_flos", "train_loss", "train_runtime", "train_samples",
                           "train_samples_per_second", "train_steps_per_second"},
    "eval_results.json": {"epoch", "eval_loss", "eval_matthews_correlation", "eval_runtime", "eval_samples",
                          "eval_samples_per_second", "eval_steps_per_second"},
    "trainer_state.json": {"log_history", "global_step", "max_steps", "num_train_epochs", "total_flos",
                           "train_batch_size", "logging_steps", "epoch"},
    "predict_results_cola.txt": None,
}
UPSTREAM["all_results.json"] = UPSTREAM["train_results.json"] | UPSTREAM["eval_results.json"]


@pytest.mark.parametrize("cached", [False, True])
def test_upstream_files_and_keys(script, assets, tmp_path, capsys, cached):
    glue = tmp_path / "glue"
    from frozen_glue.demo import tiny

    tiny.write_glue_dir(glue, n_train=40, n_dev=16, tasks=("cola",), test=True)
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    args = gpt2_args(assets, tmp_path / "run", "--do_predict", "--logging_steps", "2", *cache)
    args[args.index("--glue_dir") + 1] = glue
    assert run(script, capsys, *args)[0] == 0
    for name, keys in UPSTREAM.items():
        path = tmp_path / "run" / name
        assert path.exists(), name
        if keys:
            assert keys <= set(json.loads(path.read_text())), (name, keys - set(json.loads(path.read_text())))
    history = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == [2, 4, 6]
    assert all({"loss", "grad_norm", "learning_rate", "epoch"} <= set(e) for e in history if "loss" in e)
    lines = (tmp_path / "run" / "predict_results_cola.txt").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 17
    assert {ln.split("\t")[1] for ln in lines[1:]} <= {"acceptable", "unacceptable"}


# ---------------------------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("extra, message", [
    (["--learnig_rate", "1e-3"], "error: unknown argument(s): --learnig_rate (did you mean --learning_rate?); see "
                                 "python run_glue_frozen.py --help"),
    # a prefix of a flag is not the flag (argparse's allow_abbrev would run these as --max_train_samples and
    # --num_train_epochs)
    (["--max_train", "50"], "error: unknown argument(s): --max_train (did you mean --do_train?)"),
    (["--num_train_epoch", "1"], "error: unknown argument(s): --num_train_epoch (did you mean --num_train_epochs?)"),
    (["--learning_rate", "fast"], "error: argument --learning_rate/--learning-rate: invalid float value: 'fast'"),
    (["--max_train_samples", "-5"], "error: --max_train_samples -5: give a positive number"),
    (["--max_eval_samples", "0"], "error: --max_eval_samples 0: give a positive number"),
    (["--deepspeed", "missing.json"], "error: --deepspeed missing.json does not exist; pick one of "),
    (["--train_file", "x.csv"], "error: --glue_dir and --train_file/--validation_file/--test_file name two data "
                                "sources; pass one of them"),
    (["--head_from", "somewhere"], "error: --head_from evaluates a trained head; with --do_train the head is "
                                   "trained anew. Drop one of them"),
    (["--task_name", "colaa"], "error: unknown task 'colaa': choose one of cola sst2 mrpc stsb qqp mnli qnli rte wnli"),
])
def test_user_errors_are_one_line_and_exit_2(script, assets, tmp_path, capsys, extra, message):
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r"), *extra)
    assert code == 2 and one_error(err).startswith(message), err


def test_report_to_an_integration_that_is_not_installed(script, assets, tmp_path, capsys):
    from transformers.integrations import get_available_reporting_integrations

    if "tensorboard" in get_available_reporting_integrations():
        pytest.skip("tensorboard is installed here")
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r"), "--report_to", "tensorboard")
    assert code == 2 and one_error(err).startswith("error: --report_to tensorboard: not installed here")


def test_invalid_deepspeed_configs(script, assets, tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{ not json")
    (tmp_path / "stage.json").write_text(json.dumps({"zero_optimization": {"stage": 7}}))
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r"), "--deepspeed", tmp_path / "broken.json")
    assert code == 2 and "is not valid JSON" in one_error(err)
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r"), "--deepspeed", tmp_path / "stage.json")
    assert code == 2 and "is not a valid DeepSpeed config" in one_error(err)


def test_nothing_to_do_and_output_dir_that_is_a_file(script, assets, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "file"))
    assert code == 2 and one_error(err) == (f"error: --output_dir {tmp_path / 'file'} is a file; give a folder (it "
                                            f"is created if missing)")
    code, _, err = run(script, capsys, *gpt2_args(assets, tmp_path / "r")[:8])
    assert code == 2 and one_error(err) == "error: nothing to do: pass --do_train, --do_eval and/or --do_predict"


def test_real_process_exit_codes(assets, tmp_path):
    """The same contract through a real process: exit 2 and one stderr line; exit 0 for --help."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    script = str(ROOT / "run_glue_frozen.py")
    proc = subprocess.run([sys.executable, script, *map(str, gpt2_args(assets, tmp_path / "r")), "--learnig_rate",
                           "1e-3"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and one_error(proc.stderr).startswith("error: unknown argument(s): --learnig_rate")
    (tmp_path / "args.json").write_text(json.dumps({"model_name_or_path": str(assets["base"]), "task_name": "cola",
                                                    "output_dir": str(tmp_path / "r"), "do_train": True,
                                                    "max_train_samples": -1}))
    proc = subprocess.run([sys.executable, script, str(tmp_path / "args.json")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and one_error(proc.stderr) == "error: --max_train_samples -1: give a positive number"


def test_every_entry_point_reports_a_user_error_in_one_line(tmp_path):
    """analysis/, bench/ and the console scripts run under the same wrapper as run_glue_frozen.py."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    bin_dir = os.path.dirname(sys.executable)
    cases = [([sys.executable, str(ROOT / "analysis" / "disagreements.py"), "--models", "a", "b"],
              "error: the following arguments are required: --task; see disagreements.py --help"),
             ([sys.executable, str(ROOT / "analysis" / "summarize.py"), "--runs", str(tmp_path / "none")],
              f"error: runs dir {tmp_path / 'none'} does not exist;"),
             ([sys.executable, str(ROOT / "bench" / "bench_cache.py"), "--models", "nope"],
              "error: argument --models: invalid choice: 'nope'"),
             ([os.path.join(bin_dir, "frozen-glue-run"), "--model_name_or_path", "m", "--task_name", "cola",
               "--learnig_rate", "1"],
              "error: unknown argument(s): --learnig_rate (did you mean --learning_rate?)")]
    for command, message in cases:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
        assert proc.returncode == 2 and one_error(proc.stderr).startswith(message), (command, proc.stderr)


def test_log_level_flags_set_our_progress_lines(script, assets, tmp_path, capsys):
    code, out, _ = run(script, capsys, *gpt2_args(assets, tmp_path / "a"))
    assert code == 0 and "trainable parameters:" in out and "run complete:" in out
    code, out, _ = run(script, capsys, *gpt2_args(assets, tmp_path / "b"), "--log_level", "warning")
    assert code == 0 and "trainable parameters:" not in out and "run complete:" not in out
    assert (tmp_path / "b" / "all_results.json").exists()
