"""Both models of a comparison read the same position of the same text, whatever their pad token: GPT-2 XL has no
pad, COMET-DISTIL ships its own EOS and pad. With --append_eos both read the EOS; without, the last token."""

import json

import pytest
import torch
from conftest import TRAIN, predictions, results, run

from frozen_glue import pooling

MODELS = {"base": ("base", None), "comet_pad": ("comet_pad", "comet_pad_tokenizer")}


def model_args(assets, name):
    model, tokenizer = MODELS[name]
    return ["--model_name_or_path", assets[model]] + (["--tokenizer_name", assets[tokenizer]] if tokenizer else [])


def study(script, assets, name, tmp_path, *extra):
    args = [*model_args(assets, name), "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir",
            tmp_path / name, "--do_train", "--do_eval", *extra]
    return script.prepare(*script.parse_args([str(a) for a in args]))


@pytest.mark.parametrize("append_eos", [False, True])
def test_same_pooled_position_for_base_and_comet(script, assets, tmp_path, append_eos):
    extra = ["--append_eos"] if append_eos else []
    pooled = {}
    for name in MODELS:
        s = study(script, assets, name, tmp_path, *extra)
        data = s.tokenized["validation"].select(range(24))
        batch = s.collator([{k: data[i][k] for k in ("input_ids", "attention_mask")} for i in range(len(data))])
        pad = s.model.config.pad_token_id
        assert pad == s.tokenizer.pad_token_id and (pad != s.tokenizer.eos_token_id or not append_eos)
        positions = torch.arange(batch["input_ids"].shape[1])
        index = (positions * (batch["input_ids"] != pad)).argmax(-1)  # the rule the cached path applies
        ids = batch["input_ids"][torch.arange(len(index)), index]
        lengths = torch.tensor([len(x) for x in data["input_ids"]])
        assert torch.equal(index, lengths - 1)  # the last token of each input (the EOS when appended)
        if append_eos:
            assert (ids == s.tokenizer.eos_token_id).all()
        # the Trainer path: the model's own head reads that position
        s.model.eval()
        with torch.no_grad():
            hidden = s.model.base_model(**batch).last_hidden_state
            own = s.model(**batch).logits
        assert torch.allclose(own, s.model.score(hidden[torch.arange(len(index)), index]), atol=1e-6)
        pooled[name] = index
        config_rule = pooling.pooled_position("last_non_pad", append_eos)
        assert config_rule == ("the appended EOS" if append_eos else "the last token of the text")
    assert torch.equal(pooled["base"], pooled["comet_pad"])


@pytest.mark.parametrize("cached", [False, True])
def test_append_eos_predictions_do_not_depend_on_the_pad_token(script, assets, tmp_path, capsys, cached):
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    common = [*model_args(assets, "base"), "--task_name", "cola", "--glue_dir", assets["glue_dir"], *TRAIN,
              "--append_eos", *cache]
    code, out, err = run(script, capsys, *common, "--output_dir", tmp_path / "auto")
    assert code == 0, err
    assert "--append_eos: the pad token is now a distinct <|pad|> (it was unset)" in out
    assert run(script, capsys, *common, "--output_dir", tmp_path / "flag", "--pad_token", "[PAD]")[0] == 0
    a, b = predictions(tmp_path / "auto"), predictions(tmp_path / "flag")
    assert [r["probs"] for r in a] == [r["probs"] for r in b]
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["pooling"] == {"rule": "last_non_pad", "position": "the appended EOS", "pad_token": "<|pad|>",
                                 "eos_token": "<|endoftext|>"}


@pytest.mark.parametrize("cached", [False, True])
def test_comet_copy_with_only_added_tokens_predicts_as_its_base(script, assets, tmp_path, capsys, cached):
    cache = ["--feature_cache", tmp_path / "cache"] if cached else []
    common = ["--task_name", "cola", "--glue_dir", assets["glue_dir"], *TRAIN, *cache]
    assert run(script, capsys, "--model_name_or_path", assets["base"], *common, "--output_dir", tmp_path / "b")[0] == 0
    code, _, err = run(script, capsys, "--model_name_or_path", assets["copy"], "--tokenizer_name",
                       assets["copy_tokenizer"], *common, "--output_dir", tmp_path / "c")
    assert code == 0, err
    base, copy = predictions(tmp_path / "b"), predictions(tmp_path / "c")
    assert [r["prediction"] for r in base] == [r["prediction"] for r in copy]
    assert [p for r in copy for p in r["probs"]] == pytest.approx([p for r in base for p in r["probs"]], abs=1e-6)
    assert results(tmp_path / "c")["eval_loss"] == pytest.approx(results(tmp_path / "b")["eval_loss"], abs=1e-6)
    configs = [json.loads((tmp_path / f / "config.json").read_text())["pooling"] for f in ("b", "c")]
    assert configs[0]["position"] == configs[1]["position"] == "the last token of the text"
    assert (configs[0]["pad_token"], configs[1]["pad_token"]) == ("<|endoftext|>", "[PAD]")
