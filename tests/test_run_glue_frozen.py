"""run_glue_frozen.py: freezing, training, COMET-style loading, metrics (data layouts and bad input:
test_run_inputs.py)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from frozen_glue.core.tasks import TASKS, compute_metrics
from frozen_glue.model import heads, loading

from conftest import TRAIN, predictions, results, run


def study(script, *args):
    """A Study built from CLI arguments (loads data, tokenizer and model; trains nothing yet)."""
    parsed = script.parse_args([str(a) for a in args])
    return script.prepare(*parsed)


def base_args(assets, out, task="sst2", model="base"):
    return ["--model_name_or_path", assets[model], "--task_name", task, "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN]


# ----------------------------------------------------------------------------------------------- freezing


def test_frozen_base_is_bit_identical_and_head_changes(script, assets, tmp_path, capsys):
    s = study(script, *base_args(assets, tmp_path / "run"))
    before = {k: v.clone() for k, v in s.model.base_model.state_dict().items()}
    script.execute(s)
    out = capsys.readouterr().out
    assert "trainable parameters: 64 of" in out  # score: 2 labels x 32 hidden
    after = s.model.base_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    head = load_file(tmp_path / "run" / "head.safetensors")
    assert list(head) == ["score.weight"]
    init = torch.nn.Linear(32, 2, bias=False)
    heads.init_head([init], s.config, 42)
    assert not torch.allclose(head["score.weight"], init.weight)
    s.model.train()  # what the Trainer calls every step: the frozen base must stay in eval mode (no dropout)
    assert s.model.training and s.model.score.training and not s.model.base_model.training
    assert not any(m.training for m in s.model.base_model.modules())


def test_unfreeze_top_layer_changes_exactly_top_block_and_head(script, assets, tmp_path):
    s = study(script, *base_args(assets, tmp_path / "run"), "--unfreeze_top_layers", "1")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    script.execute(s)
    changed = {k for k, v in s.model.state_dict().items() if not torch.equal(before[k], v)}
    assert "score.weight" in changed
    assert changed - {"score.weight"} and all(k.startswith("transformer.h.1.") for k in changed - {"score.weight"})
    trainable = {n for n, p in s.model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in before if n.startswith("transformer.h.1.") or n == "score.weight"}
    s.model.train()
    assert s.model.transformer.h[1].training and s.model.transformer.h[1].attn.attn_dropout.training
    assert not s.model.transformer.h[0].training and not s.model.transformer.drop.training


# the exact trainable parameters with the top block unfrozen, written out: block 1 of 2 and the head, nothing of
# the embeddings, block 0, GPT-2's final layer norm or BERT's pooler
BLOCK = {"gpt2": ["attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_1.weight",
                  "ln_1.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                  "mlp.c_proj.bias"],
         "bert": ["attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
                  "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
                  "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
                  "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
                  "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"]}
TRAINABLE = {
    "base": {f"transformer.h.1.{n}" for n in BLOCK["gpt2"]} | {"score.weight"},
    "bert": {f"bert.encoder.layer.1.{n}" for n in BLOCK["bert"]} | {"classifier.weight", "classifier.bias"},
    "roberta": {f"roberta.encoder.layer.1.{n}" for n in BLOCK["bert"]}
    | {"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"},
}


@pytest.mark.parametrize("model", list(TRAINABLE))
def test_unfreeze_top_layers_trains_exactly_these_parameters(script, assets, tmp_path, model):
    s = study(script, *base_args(assets, tmp_path / "run", model=model), "--unfreeze_top_layers", "1")
    assert {n for n, p in s.model.named_parameters() if p.requires_grad} == TRAINABLE[model]


def test_freeze_base_false_trains_everything(script, assets, tmp_path, capsys):
    s = study(script, *base_args(assets, tmp_path / "run"), "--freeze_base", "false")
    total = sum(p.numel() for p in s.model.parameters())
    assert f"trainable parameters: {total:,} of {total:,} (100.0000%)" in capsys.readouterr().out


def test_learnable_task_reaches_high_accuracy(script, assets, tmp_path, capsys):
    code, out, err = run(script, capsys, *base_args(assets, tmp_path / "run"))
    assert code == 0, err
    assert results(tmp_path / "run")["eval_accuracy"] >= 0.9


def test_same_seed_gives_identical_metrics(script, assets, tmp_path, capsys):
    for name in ("a", "b"):
        assert run(script, capsys, *base_args(assets, tmp_path / name, task="cola"), "--seed", "7")[0] == 0
    ra, rb = results(tmp_path / "a"), results(tmp_path / "b")
    assert ra["eval_matthews_correlation"] == rb["eval_matthews_correlation"]
    assert ra["eval_loss"] == rb["eval_loss"]


# ------------------------------------------------------------------------------------------------- COMET


def test_comet_style_checkpoint_trains_and_evaluates(script, assets, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(script, capsys, "--model_name_or_path", assets["comet"], "--tokenizer_name",
                       assets["comet_tokenizer"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
                       "--output_dir", out, *TRAIN)
    assert code == 0, err
    r = results(out)
    assert {"eval_matthews_correlation", "eval_loss", "eval_samples", "train_runtime", "train_samples"} <= set(r)
    config = json.loads((out / "config.json").read_text())
    assert config["path"] == "trainer" and config["model_fingerprint"] and config["debug_run"] is False
    assert all(v.startswith("sha256:") for v in config["data_fingerprints"].values())
    assert config["versions"]["torch"] and "token" not in config["args"]["model"]


def test_comet_pad_is_eos_and_padding_does_not_change_logits(script, assets, tmp_path):
    s = study(script, "--model_name_or_path", assets["comet"], "--tokenizer_name", assets["comet_tokenizer"],
              "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir", tmp_path, "--do_train", "--do_eval")
    tok, model = s.tokenizer, s.model
    assert tok.pad_token == tok.eos_token == "[EOS]"
    assert model.config.pad_token_id == tok.eos_token_id
    assert model.get_input_embeddings().num_embeddings == len(tok)  # already covered [EOS]: no resize
    model.eval()
    short, long = "the cat sees wonderful", "a big old dog walked slowly under the green tree terrible"
    with torch.no_grad():
        alone = model(**tok(short, return_tensors="pt")).logits
        batch = model(**tok([short, long], return_tensors="pt", padding=True)).logits
    assert torch.allclose(alone[0], batch[0], atol=1e-5)


def test_pad_token_flag_adds_distinct_pad_and_resizes(script, assets, tmp_path):
    s = study(script, "--model_name_or_path", assets["comet"], "--tokenizer_name", assets["comet_tokenizer"],
              "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir", tmp_path, "--do_train", "--do_eval",
              "--pad_token", "[PAD]", "--append_eos")
    assert s.tokenizer.pad_token == "[PAD]" and s.tokenizer.pad_token_id != s.tokenizer.eos_token_id
    assert s.model.get_input_embeddings().num_embeddings == len(s.tokenizer)
    ids = s.tokenized["validation"][0]["input_ids"]
    assert ids[-1] == s.tokenizer.eos_token_id


def test_tokenizer_without_eos_gets_one(assets):
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(assets["bert"])
    tok.pad_token = None
    n = len(tok)
    assert loading.ensure_pad_token(tok) is True
    assert tok.pad_token == tok.eos_token and len(tok) == n + 1


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_equal_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert compute_metrics(TASKS["cola"], pred, gold) == {"matthews_correlation": matthews_corrcoef(gold, pred)}
    m = compute_metrics(TASKS["mrpc"], pred, gold)
    assert m["accuracy"] == accuracy_score(gold, pred) and m["f1"] == f1_score(gold, pred)
    assert m["combined_score"] == pytest.approx((m["accuracy"] + m["f1"]) / 2)
    s_gold, s_pred = rng.uniform(0, 5, 100), rng.uniform(0, 5, 100)
    m = compute_metrics(TASKS["stsb"], s_pred, s_gold)
    assert m["pearson"] == pearsonr(s_pred, s_gold)[0] and m["spearmanr"] == spearmanr(s_pred, s_gold)[0]


def test_reported_metric_matches_prediction_file(script, assets, tmp_path, capsys):
    assert run(script, capsys, *base_args(assets, tmp_path / "run", task="cola"))[0] == 0
    rows = predictions(tmp_path / "run")
    assert [r["idx"] for r in rows] == list(range(100))
    assert set(rows[0]) == {"idx", "label", "prediction", "probs", "pvi", "sentence"}
    mcc = matthews_corrcoef([r["label"] for r in rows], [r["prediction"] for r in rows])
    assert results(tmp_path / "run")["eval_matthews_correlation"] == pytest.approx(mcc)


MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2")


def write_mnli(root, n=60):
    from frozen_glue.demo.tiny import synthetic_sentences

    labels = ["entailment", "neutral", "contradiction"]
    (root / "MNLI").mkdir(parents=True)
    for name, extra in (("train.tsv", "\tlabel1\tgold_label"),
                        ("dev_matched.tsv", "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"),
                        ("dev_mismatched.tsv", "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")):
        rows = [MNLI_HEADER + extra]
        for i, (text, y) in enumerate(synthetic_sentences(n, len(name))):
            gold = labels[y if i % 5 else 2]
            n_labels = extra.count("label")
            rows.append("\t".join([str(i), "1", "1a", "fiction", "( x )", "( y )", "(S x)", "(S y)", text,
                                   'he said "yes"'] + [gold] * n_labels))
        (root / "MNLI" / name).write_text("\n".join(rows) + "\n")


def test_mnli_writes_mm_keys_and_two_prediction_files(script, tmp_path, assets, capsys):
    write_mnli(tmp_path / "glue")
    out = tmp_path / "run"
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "mnli",
                       "--glue_dir", tmp_path / "glue", "--output_dir", out, *TRAIN)
    assert code == 0, err
    r = results(out)
    assert {"eval_accuracy", "eval_accuracy_mm", "eval_loss", "eval_loss_mm", "eval_samples_mm"} <= set(r)
    assert len(predictions(out, "validation_matched")) == len(predictions(out, "validation_mismatched")) == 60
    assert predictions(out, "validation_matched")[0]["hypothesis"] == 'he said "yes"'


def write_stsb(root, n=80):
    from frozen_glue.demo.tiny import synthetic_sentences

    (root / "STS-B").mkdir(parents=True)
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    for name, seed in (("train.tsv", 1), ("dev.tsv", 2)):
        rows = [header] + [f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{t}\t{t}\t{5.0 * y:.3f}"
                           for i, (t, y) in enumerate(synthetic_sentences(n, seed))]
        (root / "STS-B" / name).write_text("\n".join(rows) + "\n")


def test_stsb_runs_as_regression(script, tmp_path, assets, capsys):
    write_stsb(tmp_path / "glue")
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "stsb",
                       "--glue_dir", tmp_path / "glue", "--output_dir", tmp_path / "run", *TRAIN)
    assert code == 0, err
    r = results(tmp_path / "run")
    assert {"eval_pearson", "eval_spearmanr", "eval_combined_score"} <= set(r)
    row = predictions(tmp_path / "run")[0]
    assert isinstance(row["score"], float) and "probs" not in row
    assert load_file(tmp_path / "run" / "head.safetensors")["score.weight"].shape == (1, 32)


def test_do_predict_writes_upstream_file(script, tmp_path, assets, capsys):
    glue = tmp_path / "glue"
    (glue / "CoLA").mkdir(parents=True)
    for f in ("train.tsv", "dev.tsv"):
        (glue / "CoLA" / f).write_text((assets["glue_dir"] / "CoLA" / f).read_text())
    (glue / "CoLA" / "test.tsv").write_text("index\tsentence\n0\tthe cat wonderful\n1\tthe dog terrible\n")
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola",
                       "--glue_dir", glue, "--output_dir", tmp_path / "run", "--do_predict", *TRAIN)
    assert code == 0, err
    lines = (tmp_path / "run" / "predict_results_cola.txt").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 3
    assert lines[1].split("\t")[1] in TASKS["cola"].label_names
