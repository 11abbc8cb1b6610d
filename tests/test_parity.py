"""Equal means equal: the cached path (feature cache + fast loop, or Trainer on the cached head) gives the Trainer
path's numbers for every model family x task shape x flag set where they could differ. Each cell runs the CLI
entry point twice (Trainer path, cached path) with two seeds, so the fast loop trains two stacked heads."""

import json

import pytest

from frozen_glue.demo import tiny

from conftest import predictions, results, run

MODELS = ("gpt2", "bert", "roberta")
TASKS = ("sst2", "mnli", "stsb")
FLAGS = {
    "defaults": [],
    # clipping that fires: a bound far below the gradient norm (asserted below from both log histories)
    "clip_wd": ["--weight_decay", "0.1", "--max_grad_norm", "0.05", "--logging_steps", "1"],
    "cosine_warmup": ["--lr_scheduler_type", "cosine", "--warmup_steps", "0.3"],
    "accumulation": ["--gradient_accumulation_steps", "2"],
    "max_steps": ["--max_steps", "7"],
    "label_smoothing": ["--label_smoothing_factor", "0.1"],
    "predict": ["--do_predict"],
}
SEEDS = ("3", "4")


@pytest.fixture(scope="module")
def parity_data(tmp_path_factory, assets, script):
    root = tmp_path_factory.mktemp("parity")
    glue = tiny.write_glue_dir(root / "glue", n_train=44, n_dev=20, tasks=TASKS, test=True)
    return {"script": script, "glue": glue, "gpt2": assets["base"], "bert": assets["bert"], "roberta": assets["roberta"]}


def cell_args(data, model, task, out):
    return ["--model_name_or_path", data[model], "--task_name", task, "--glue_dir", data["glue"], "--output_dir", out,
            "--do_train", "--do_eval", "--num_train_epochs", "2", "--learning_rate", "2e-2",
            "--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--use_cpu", "true", "--seeds", *SEEDS]


def grad_norms(folder):
    state = json.loads((folder / "trainer_state.json").read_text())
    return [e["grad_norm"] for e in state["log_history"] if "grad_norm" in e]


@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_cached_equals_trainer(parity_data, model, task, flags, tmp_path, capsys):
    extra = FLAGS[flags]
    base = cell_args(parity_data, model, task, tmp_path / "trainer") + extra
    if flags == "label_smoothing" and task == "stsb":
        for args in (base, base + ["--feature_cache", tmp_path / "cache"]):
            code, _, err = run(parity_data["script"], capsys, *args)
            assert code == 2 and err.strip().splitlines() == [
                "error: --label_smoothing_factor: stsb is a regression task (no classes to smooth); drop the flag "
                "for stsb"]
        return
    code, _, err = run(parity_data["script"], capsys, *base)
    assert code == 0, err
    code, out, err = run(parity_data["script"], capsys, *cell_args(parity_data, model, task, tmp_path / "cached"),
                         *extra, "--feature_cache", tmp_path / "cache")
    assert code == 0, err
    stacked = model != "roberta"  # RoBERTa's head is two layers: Trainer.train() on the cached head
    assert ("heads train with Trainer.train()" in out) == (not stacked), out
    splits = ("validation_matched", "validation_mismatched") if task == "mnli" else ("validation",)
    for seed in SEEDS:
        t, c = tmp_path / "trainer" / f"seed{seed}", tmp_path / "cached" / f"seed{seed}"
        assert json.loads((c / "config.json").read_text())["path"] == "cached"
        rt, rc = results(t), results(c)
        metrics = [k for k in rt if k.startswith("eval_") and "runtime" not in k and "per_second" not in k]
        assert len(metrics) >= 3 and set(metrics) <= set(rc)
        for key in metrics + ["train_loss", "epoch"]:
            assert rc[key] == pytest.approx(rt[key], abs=1e-5), (key, seed)
        for split in splits:
            pt, pc = predictions(t, split), predictions(c, split)
            assert [r["idx"] for r in pt] == [r["idx"] for r in pc]
            if task == "stsb":
                assert [r["score"] for r in pc] == pytest.approx([r["score"] for r in pt], abs=1e-5)
            else:
                assert [r["prediction"] for r in pt] == [r["prediction"] for r in pc]
                assert [p for r in pc for p in r["probs"]] == pytest.approx([p for r in pt for p in r["probs"]],
                                                                             abs=1e-5)
        if flags == "clip_wd":
            norms_t, norms_c = grad_norms(t), grad_norms(c)
            assert len(norms_t) == len(norms_c) > 5
            assert min(norms_t) > 0.05, "clipping never fired: lower --max_grad_norm"
            assert norms_c == pytest.approx(norms_t, rel=1e-4)
        if flags == "max_steps":
            assert json.loads((c / "trainer_state.json").read_text())["global_step"] == 7
        if flags == "predict":
            names = sorted(p.name for p in t.glob("predict_results_*.txt"))
            assert names == (["predict_results_mnli-mm.txt", "predict_results_mnli.txt"] if task == "mnli"
                             else [f"predict_results_{task}.txt"])
            assert all((t / n).read_text() == (c / n).read_text() for n in names)


def test_bf16_cached_close_to_trainer(parity_data, tmp_path, capsys):
    """bf16 autocasts the extraction and the fast loop as the Trainer autocasts the model: equal up to bf16
    rounding (the two paths batch the base forward differently), not bit for bit."""
    args = cell_args(parity_data, "gpt2", "sst2", tmp_path / "trainer") + ["--bf16"]
    assert run(parity_data["script"], capsys, *args)[0] == 0
    code, out, err = run(parity_data["script"], capsys, *cell_args(parity_data, "gpt2", "sst2", tmp_path / "cached"),
                         "--bf16", "--feature_cache", tmp_path / "cache")
    assert code == 0 and "heads train with Trainer.train()" not in out, err
    import torch

    assert ("warning: --bf16 without a GPU" in out) == (not torch.cuda.is_available())
    for seed in SEEDS:
        rt, rc = results(tmp_path / "trainer" / f"seed{seed}"), results(tmp_path / "cached" / f"seed{seed}")
        assert rc["eval_loss"] == pytest.approx(rt["eval_loss"], abs=2e-3)
        assert rc["train_loss"] == pytest.approx(rt["train_loss"], abs=2e-3)
