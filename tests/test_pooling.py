"""Both models of a comparison read the same position of the same text, whatever their pad token: GPT-2 XL has no
pad, COMET-DISTIL ships its own EOS and pad. With --append_eos both read the EOS; without, the last token."""

import json

import pytest
import torch

from frozen_glue.model import pooling

from conftest import TRAIN, predictions, results, run

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
    assert {k: v for k, v in config["pooling"].items() if k != "why"} == {
        "rule": "last_non_pad", "position": "the appended EOS", "pad_token": "<|pad|>", "eos_token": "<|endoftext|>"}


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


# ------------------------------------------------------------------------ --pooling auto: what the model was trained for


@pytest.mark.parametrize("modes, want", [
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "first_token"),
    ({"pooling_mode_lasttoken": True}, "last_non_pad"),
    ({"pooling_mode_max_tokens": True}, None),                                   # a mode the cache cannot read
    ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, None),  # two at once: concatenated
])
def test_sentence_transformers_modes(modes, want):
    assert pooling.sentence_transformers_rule({"word_embedding_dimension": 32, **modes})[0] == want


def as_sentence_transformer(model_dir, out, mode="pooling_mode_mean_tokens"):
    """A copy of a tiny BERT dir laid out as sentence-transformers saves one (modules.json, 1_Pooling/)."""
    import shutil

    shutil.copytree(model_dir, out)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, mode: True}))
    return out


def test_pooling_auto_reads_a_sentence_transformer_by_its_own_pooling(script, assets, tmp_path, capsys):
    # (by hub id from a local hub cache: tests/test_hub.py)
    st = as_sentence_transformer(assets["bert"], tmp_path / "models" / "st")
    common = ["--task_name", "sst2", "--glue_dir", assets["glue_dir"], *TRAIN, "--feature_cache", tmp_path / "c"]
    for name, path in (("plain", assets["bert"]), ("st", st)):
        assert run(script, capsys, "--model_name_or_path", path, "--output_dir", tmp_path / name, *common)[0] == 0
    plain, local = (json.loads((tmp_path / n / "config.json").read_text())["pooling"] for n in ("plain", "st"))
    assert plain["rule"] == "pooler" and plain["why"] == "--pooling auto: the model's own head"
    assert local["rule"] == "mean" and "sentence-transformers model trained for mean_tokens pooling" in local["why"]
    # the Trainer path reads the model's own head and says how to read the trained pooling instead
    code, out, err = run(script, capsys, "--model_name_or_path", st, "--output_dir", tmp_path / "trainer",
                         *common[:-2])
    assert code == 0, err
    assert "pooling: the Trainer path feeds the model's own head; a sentence-transformers model trained for " \
           "mean_tokens pooling (1_Pooling/config.json): add --feature_cache DIR to read the mean" in out
    assert json.loads((tmp_path / "trainer" / "config.json").read_text())["pooling"]["rule"] == "pooler"


def test_two_runs_that_read_different_positions_are_never_compared():
    from frozen_glue.core import identity
    from frozen_glue.core.errors import UserError

    config = {"protocol": {"pooling": "auto"}, "pooling": {"rule": "mean"}}
    with pytest.raises(UserError, match="one model's heads read mean, the other's pooler"):
        identity.relation_of(config, {**config, "pooling": {"rule": "pooler"}})
    assert identity.relation_of(config, config) == ""
    assert identity.relation_of(config, {"protocol": {"pooling": "auto"}}) == ""  # an older run records no rule


def test_two_aliases_of_the_same_weights_are_called_identical():
    from frozen_glue.core import identity

    config = {"protocol": {"pooling": "auto"}, "pooling": {"rule": "mean"}, "model_fingerprint": "f" * 64,
              "tokenizer_fingerprint": "t" * 64}
    assert identity.relation_of(config, dict(config)) == "identical weights: this comparison checks determinism only"
    assert identity.relation_of(config, {**config, "model_fingerprint": "g" * 64}) == ""
    assert identity.relation_of(config, {**config, "tokenizer_fingerprint": "u" * 64}) == ""
