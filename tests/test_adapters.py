"""Adapters as models (issue 35): a PEFT adapter dir is its base with the adapter merged. Known answers on a tiny
GPT-2 and a LoRA adapter trained a few steps offline: the adapter's features and predictions equal those of the
same adapter merged and saved with save_pretrained; its identity differs from its base's; an adapter whose base is
missing exits 2 with one line and writes nothing; --adapter_base names a local copy of a hub-id base; the models
file reads an adapter's base, refuses another; the report says what B is."""

import argparse
import json

import pytest
import torch

from frozen_glue.config.models_file import read_models
from frozen_glue.core.errors import UserError
from frozen_glue.demo.families import build_lora_adapter
from frozen_glue.features import cache_layout
from frozen_glue.report import report

from conftest import TRAIN, one_error, predictions, results, run


@pytest.fixture(scope="module")
def adapter(assets, tmp_path_factory):
    return build_lora_adapter(assets["base"], tmp_path_factory.mktemp("lora") / "adapter")


def args(assets, model, out, *extra):
    return ["--model_name_or_path", model, "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir",
            out, *TRAIN, "--seeds", "1", "2", *extra]


def merged_copy(assets, adapter, out):
    """The adapter merged into its base and saved whole, with the base's tokenizer: what the adapter must equal."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(assets["base"]), adapter).merge_and_unload() \
        .save_pretrained(out)
    AutoTokenizer.from_pretrained(assets["base"]).save_pretrained(out)
    return out


def test_an_adapter_equals_its_merged_copy_and_differs_from_its_base(script, assets, adapter, tmp_path, capsys):
    merged = merged_copy(assets, adapter, tmp_path / "merged")
    runs = tmp_path / "runs"
    for name, model in (("adapter", adapter), ("merged", merged), ("base", assets["base"])):
        code, _, err = run(script, capsys, *args(assets, model, runs / name / "cola", "--feature_cache",
                                                 tmp_path / f"cache-{name}"))
        assert code == 0, err
    configs = {n: json.loads((runs / n / "cola" / "seed1" / "config.json").read_text()) for n in ("adapter", "merged",
                                                                                                "base")}
    assert configs["adapter"]["model_fingerprint"] == configs["merged"]["model_fingerprint"]
    assert configs["adapter"]["model_fingerprint"] != configs["base"]["model_fingerprint"]
    info = configs["adapter"]["adapter"]
    assert (info["peft_type"], info["r"], info["target_modules"]) == ("LORA", 4, ["c_attn"])
    assert info["adapter_parameters"] == 2 * 4 * (32 + 96)  # 2 blocks x (A: 4 x 32 + B: 96 x 4)
    assert configs["merged"]["adapter"] is None
    for seed in (1, 2):
        a, m = runs / "adapter" / "cola" / f"seed{seed}", runs / "merged" / "cola" / f"seed{seed}"
        assert results(a)["eval_loss"] == results(m)["eval_loss"]
        assert predictions(a) == predictions(m)
    entries = {n: {meta["key"]: path for meta, path in cache_layout.layer_entries(
        next((tmp_path / f"cache-{n}").glob("*/")), "cola", "validation")} for n in ("adapter", "merged")}
    features = [torch.from_numpy(cache_layout.read_array(next(iter(entries[n].values()))).copy())
                for n in ("adapter", "merged")]
    assert torch.equal(*features)
    models = tmp_path / "models.tsv"  # the report says what the adapter is: base + LoRA, r, targets, its share
    models.write_text(f"base\t{assets['base']}\t-\nadapter\t{adapter}\t-\nmerged\t{merged}\t-\n")
    report.summarize(argparse.Namespace(runs=str(runs), out=str(tmp_path / "rep"), reference=None, models=str(models),
                                        slice=[], n_resamples=50, feature_cache=None))
    share = 100 * 1024 / info["base_parameters"]  # 1024 of the base's 42,368 (its 64 head weights are not base)
    assert info["base_parameters"] == 42368 and f"{share:.2g}" == "2.4"
    assert "- adapter = base + LoRA (r 4, c_attn, 2.4 % of base's parameters)" in \
        (tmp_path / "rep" / "report.md").read_text().splitlines()


def test_an_adapter_whose_base_is_missing_is_one_line_and_writes_nothing(script, assets, adapter, tmp_path, capsys):
    lost = build_lora_adapter(assets["base"], tmp_path / "lost", base_name=str(tmp_path / "no-such-base"))
    hub = build_lora_adapter(assets["base"], tmp_path / "hub", base_name="some-org/tiny-gpt2-base")
    capsys.readouterr()
    code, _, err = run(script, capsys, *args(assets, lost, tmp_path / "out"))
    assert code == 2 and "the adapter" in one_error(err) and "--adapter_base DIR" in err
    assert not (tmp_path / "out").exists()
    code, _, err = run(script, capsys, *args(assets, hub, tmp_path / "out", "--adapter_base", assets["base"]))
    assert code == 0, err
    code, _, err = run(script, capsys, *args(assets, assets["base"], tmp_path / "o2", "--adapter_base",
                                             assets["base"]))
    assert code == 2 and "--adapter_base" in one_error(err) and "is not a PEFT adapter dir" in err


def test_the_models_file_reads_an_adapters_base_and_refuses_another(assets, adapter, tmp_path):
    path = tmp_path / "models.tsv"
    path.write_text(f"a\t{assets['base']}\t-\nb\t{adapter}\t-\t\t-\t-\nc\t{assets['comet']}\t-\n")
    assert {m.alias: m.base for m in read_models(path)} == {"a": None, "b": "a", "c": None}
    path.write_text(f"a\t{assets['base']}\t-\nb\t{adapter}\t-\t\t-\tc\nc\t{assets['comet']}\t-\n")
    with pytest.raises(UserError, match="b is an adapter of .*, but its base column names c"):
        read_models(path)
