"""--base_dtype bfloat16: the frozen base held in bfloat16 on the cached path (half its memory), the head in float32;
its own cache-key part and protocol entry; refused in one line where the cached path cannot serve the run."""

import json

import pytest
import torch

from frozen_glue.features import cache as feature_cache
from frozen_glue.features import cache_layout
from frozen_glue.features.cache_key import cache_parts

from conftest import TRAIN, assert_refused, run


def args(assets, out, cache, *extra):
    return ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"],
            "--output_dir", out, *TRAIN, "--seeds", "1", "--feature_cache", cache, *extra]


def prepared(script, *argv):
    return script.prepare(*script.parse_args([str(a) for a in argv]))


def test_bfloat16_base_is_held_in_bfloat16_with_a_float32_head_and_its_own_key(script, assets, tmp_path):
    fp32 = prepared(script, *args(assets, tmp_path / "a", tmp_path / "c"))
    bf16 = prepared(script, *args(assets, tmp_path / "a", tmp_path / "c", "--base_dtype", "bfloat16"))
    assert {p.dtype for p in fp32.model.base_model.parameters()} == {torch.float32}
    assert {p.dtype for p in bf16.model.base_model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.model.score.parameters()} == {torch.float32}
    assert "base_dtype" not in cache_parts(fp32, "train")  # entries written before the flag stay valid
    assert cache_parts(bf16, "train")["base_dtype"] == "bfloat16"
    assert "base_dtype" not in fp32.protocol and bf16.protocol["base_dtype"] == "bfloat16"
    # the weights as held are rounded: another fingerprint, another key
    assert bf16.model_fp != fp32.model_fp
    keys = {cache_layout.feature_key(**cache_parts(p, "train")) for p in (fp32, bf16)}
    assert len(keys) == 2


def test_bfloat16_base_features_are_fp32_features_to_bfloat16_rounding(script, assets, tmp_path, capsys):
    for name, extra in (("fp32", []), ("bf16", ["--base_dtype", "bfloat16"])):
        code, _, err = run(script, capsys, *args(assets, tmp_path / name, tmp_path / f"c-{name}", *extra))
        assert code == 0, err
    fp32, bf16 = ({p.name.split("-")[0]: feature_cache.read_features(p).clone()
                   for p in (tmp_path / f"c-{name}").rglob("*.safetensors")} for name in ("fp32", "bf16"))
    for split in ("train", "validation"):
        difference = (bf16[split] - fp32[split]).norm(dim=1) / fp32[split].norm(dim=1)
        assert 0 < difference.max() < 0.05, split  # not the same numbers, but bfloat16 rounding (2^-8) deep
    config = json.loads((tmp_path / "bf16" / "seed1" / "config.json").read_text())
    assert config["protocol"]["base_dtype"] == "bfloat16"


@pytest.mark.parametrize("extra, message", [
    (["--base_dtype", "bfloat16"], "--base_dtype bfloat16 holds the frozen base for the cached path's forward; add "
                                   "--feature_cache DIR"),
    (["--base_dtype", "bfloat16", "--feature_cache", "C", "--base_dropout"],
     "--base_dtype bfloat16 needs the cached path, and the feature cache cannot serve this run: parts of the base"),
    (["--base_dtype", "float16", "--feature_cache", "C"], "--base_dtype float16: use float32 or bfloat16"),
])
def test_base_dtype_misuse_is_one_line(script, assets, tmp_path, capsys, extra, message):
    assert_refused(script, capsys, assets, tmp_path, extra, message)
