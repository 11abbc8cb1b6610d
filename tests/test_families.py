"""Every model a researcher brings (issue 35): for each family of demo/families.py's FAMILIES (a tiny random model
built offline), the cached path equals the Trainer path at the top layer (eval loss within 1e-4, the same
predictions) and --probe_layers all runs, because the cached path trains the model's own head forward
(pooling.own_rule, cached_head.CachedHead), not a table of model types."""

import json

import pytest

from frozen_glue.demo import tiny
from frozen_glue.demo.families import FAMILIES, build_family

from conftest import predictions, results, run


@pytest.fixture(scope="module")
def family_glue(tmp_path_factory):
    return tiny.write_glue_dir(tmp_path_factory.mktemp("families") / "glue", n_train=48, n_dev=24, tasks=("sst2",))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_cached_equals_trainer_and_every_layer_probes(family, family_glue, script, tmp_path, capsys):
    model = build_family(family, tmp_path / "model")
    common = ["--model_name_or_path", model, "--task_name", "sst2", "--glue_dir", family_glue, "--do_train",
              "--do_eval", "--num_train_epochs", "1", "--learning_rate", "2e-2", "--per_device_train_batch_size", "8",
              "--disable_tqdm", "true", "--use_cpu", "true", "--seed", "3"]
    code, _, err = run(script, capsys, *common, "--output_dir", tmp_path / "trainer")
    assert code == 0, err
    code, out, err = run(script, capsys, *common, "--output_dir", tmp_path / "cached", "--feature_cache",
                         tmp_path / "cache", "--probe_layers", "all")
    assert code == 0, err
    trainer, cached = results(tmp_path / "trainer"), results(tmp_path / "cached")
    assert json.loads((tmp_path / "cached" / "config.json").read_text())["path"] == "cached"
    for key in ("eval_loss", "train_loss"):
        assert cached[key] == pytest.approx(trainer[key], abs=1e-4), key
    rows = {path: predictions(tmp_path / path) for path in ("trainer", "cached")}
    assert [r["prediction"] for r in rows["cached"]] == [r["prediction"] for r in rows["trainer"]]
    for a, b in zip(rows["cached"], rows["trainer"]):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)
    layers = json.loads((tmp_path / "cached" / "layer_results.json").read_text())
    assert sorted(map(int, layers)) == [0, 1, 2]  # embeddings and both blocks
    assert layers["2"]["eval_loss"] == pytest.approx(cached["eval_loss"], abs=1e-6)


def test_the_docs_list_the_tested_families():
    """The README's and docs/flags.md's family list is rendered from FAMILIES (demo_docs.families_block)."""
    from frozen_glue.demo import demo_docs

    from conftest import ROOT

    for doc in ("README.md", "docs/flags.md"):
        found = {m["name"]: m["body"] for m in demo_docs.BLOCK.finditer((ROOT / doc).read_text())}
        assert found.get("families") == demo_docs.families_block(), doc
