"""A run's identity is its protocol plus the model, tokenizer and data fingerprints: the sweep skips a complete run
only when all of them are unchanged and names what changed otherwise; REDO_CHANGED=1 redoes such runs and says
so; a fingerprint depends only on what it names."""

import json
import os
import shutil

import pytest

from frozen_glue.config import arguments
from frozen_glue.core import identity
from frozen_glue.model import fingerprinting, loading
from frozen_glue.run import prepare
from frozen_glue.sweep.expected import Expected

from conftest import FAST, copy_complete, plan_sweep
from conftest import launch_sweep as sweep


def models_tsv(tmp_path, alias, model, tokenizer="-"):
    path = tmp_path / f"models-{alias}-{abs(hash(str(model))) % 1000}.tsv"
    path.write_text(f"{alias}\t{model}\t{tokenizer}\t\n")
    return path


def test_tokenizer_fingerprint_ignores_the_truncation_length(assets):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(assets["base"])
    before = fingerprinting.tokenizer_fingerprint(tok)
    tok(["a sentence long enough to be cut"], truncation=True, max_length=4)  # sets the backend's truncation
    assert "truncation" in json.loads(tok.backend_tokenizer.to_str()) and json.loads(
        tok.backend_tokenizer.to_str())["truncation"]
    assert fingerprinting.tokenizer_fingerprint(tok) == before
    tok.add_tokens(["<new>"])  # what maps text to ids changed: another fingerprint
    assert fingerprinting.tokenizer_fingerprint(tok) != before


def test_another_model_under_the_same_alias_is_refused_not_skipped(tmp_path, assets, small_glue, complete_sweep,
                                                                   monkeypatch, capsys):
    env = {"GLUE_DIR": small_glue, "SEEDS": "1 2", **copy_complete(complete_sweep, tmp_path)}  # m: the base, complete
    code, out = plan_sweep(monkeypatch, capsys, {**env, "MODELS": models_tsv(tmp_path, "m", assets["base"])})
    assert code == 0 and "0 complete, 2 skipped, 0 failed" in out, out
    code, out = plan_sweep(monkeypatch, capsys, {**env, "SEEDS": "1 2 3", "MODELS": models_tsv(
        tmp_path, "m", assets["copy"], assets["copy_tokenizer"])})
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1, out
    assert "2 complete run(s) were made with another model, tokenizer, data or settings" in errors[0]
    assert "the model's weights differ" in errors[0] and "the tokenizer differ" in errors[0]
    assert not (tmp_path / "runs" / "m" / "cola" / "seed3").exists()  # nothing ran


def test_changed_data_is_refused_and_redone_on_request(tmp_path, assets, small_glue, complete_sweep, monkeypatch,
                                                       capsys):
    glue = tmp_path / "glue"
    shutil.copytree(small_glue, glue)  # the complete runs' data, copied
    env = {"GLUE_DIR": glue, "SEEDS": "1 2", "MODELS": models_tsv(tmp_path, "m", assets["base"]),
           **copy_complete(complete_sweep, tmp_path)}
    assert plan_sweep(monkeypatch, capsys, env)[0] == 0
    train = glue / "CoLA" / "train.tsv"
    lines = train.read_text().splitlines()
    train.write_text("".join("\t".join([f[0], str(1 - int(f[1])), *f[2:]]) + "\n"
                             for f in (ln.split("\t") for ln in lines)))  # every train label flipped
    code, out = plan_sweep(monkeypatch, capsys, env)
    assert code == 2 and "the data (train) differ" in out, out
    code, out = sweep({**env, "REDO_CHANGED": "1"})
    assert code == 0 and "2 complete (2 redone with the changed settings), 0 skipped, 0 failed" in out, out
    assert "completed elsewhere meanwhile" not in out
    code, out = plan_sweep(monkeypatch, capsys, env)
    assert code == 0 and "0 complete, 2 skipped, 0 failed" in out, out


def test_redo_changed_redoes_a_whole_complete_group(tmp_path, assets, small_glue, complete_sweep, monkeypatch,
                                                    capsys):
    """REDO_CHANGED=1 with every seed complete (the cached sweep's one job per model x task) really reruns them."""
    env = {"GLUE_DIR": small_glue, "SEEDS": "1 2", "MODELS": models_tsv(tmp_path, "m", assets["base"]),
           **copy_complete(complete_sweep, tmp_path)}
    changed = FAST.replace("1e-2", "3e-2")
    code, out = plan_sweep(monkeypatch, capsys, {**env, "EXTRA_ARGS": changed, "REDO_CHANGED": "1", "DRY_RUN": "1"})
    assert code == 0 and out.count("--overwrite_output_dir") == 1
    code, out = sweep({**env, "EXTRA_ARGS": changed, "REDO_CHANGED": "1"})
    assert code == 0 and "2 complete (2 redone with the changed settings), 0 skipped, 0 failed" in out, out
    lrs = {json.loads((tmp_path / "runs" / "m" / "cola" / f"seed{s}" / "config.json").read_text())["args"][
        "training"]["learning_rate"] for s in (1, 2)}
    assert lrs == {0.03}


def test_an_unchanged_model_dir_is_not_hashed_again(tmp_path, assets, small_glue):
    """The sweep takes the recorded model fingerprint while the model dir's stamp (names, sizes, mtimes) is the
    recorded one; a touched weight file makes it load and hash the model."""
    model = tmp_path / "model"
    shutil.copytree(assets["base"], model)
    parsed = arguments.parse_args(["--model_name_or_path", str(model), "--task_name", "cola", "--glue_dir",
                                   str(small_glue), "--do_train", "--do_eval", "--output_dir", str(tmp_path / "o")])
    recorded = {"model_source": identity.source_stamp(model), "model_fingerprint": "recorded-not-recomputed"}
    assert Expected().sources(parsed, recorded)["model_fingerprint"] == "recorded-not-recomputed"
    weights = next(model.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10 ** 9))
    got = Expected().sources(parsed, recorded)
    config = loading.load_config(parsed[0], prepare.get_task("cola"))
    tokenizer = prepare.load_tokenizer(parsed[0], config)
    real = fingerprinting.model_fingerprint(prepare.load_frozen_model(parsed[0], config, tokenizer)[0])
    assert got["model_fingerprint"] == real


@pytest.mark.parametrize("a, b, want", [
    ({"lr": 1, "random_init": False}, {"lr": 1, "random_init": True}, "control"),
    ({"lr": 1, "random_init": False}, {"lr": 2, "random_init": True}, "settings differ: lr 1 -> 2, random_init "
                                                                      "False -> True"),
    ({"lr": 1}, {"lr": 1}, ""),
])
def test_relation_of_two_protocols(a, b, want):
    assert identity.relation(a, b) == want


def test_two_poolings_are_never_compared():
    from frozen_glue.core.errors import UserError

    with pytest.raises(UserError, match="--pooling auto, the other with --pooling mean"):
        identity.relation({"pooling": "auto"}, {"pooling": "mean"})
