"""The hub code path, offline: a dataset repo folder in the hub layout, a model and a tokenizer given by hub id and
resolved from a Hugging Face cache the test builds (with --model_revision), and the one-line failure when there
is neither hub nor local data. Every test runs `run_glue_frozen.py` as a user does, in a subprocess."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from frozen_glue.demo import tiny

from conftest import ROOT, results

REV_MAIN, REV_V1 = "a" * 40, "b" * 40


def cli(*args, env=None, timeout=300):
    """`python run_glue_frozen.py ARGS` with HF_HUB_OFFLINE=1 and the given environment: (code, stdout, stderr)."""
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    proc = subprocess.run([sys.executable, str(ROOT / "run_glue_frozen.py"), *map(str, args)], capture_output=True,
                          text=True, env=full, cwd=ROOT, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


FAST = ["--do_train", "--do_eval", "--num_train_epochs", "1", "--learning_rate", "1e-2",
        "--per_device_train_batch_size", "16", "--disable_tqdm", "true", "--use_cpu", "true"]


@pytest.fixture(scope="module")
def dataset_repo(tmp_path_factory):
    """A GLUE dataset repo as on the hub: one parquet file per config and split, the configs declared in the
    README's YAML header (how nyu-mll/glue is laid out)."""
    import datasets

    root = tmp_path_factory.mktemp("hub-dataset") / "glue"
    configs = {"cola": {"train": 60, "validation": 20},
               "mnli": {"train": 60, "validation_matched": 20, "validation_mismatched": 20}}
    yaml = ["---", "configs:"]
    for config, splits in configs.items():
        yaml.append(f"- config_name: {config}\n  data_files:")
        for i, (split, n) in enumerate(splits.items()):
            if config == "cola":
                rows = tiny._task_rows("cola", n, i)
                data = {"sentence": [r[0] for r in rows], "label": [r[1] for r in rows]}
            else:
                rows = tiny._task_rows("mnli", n, i)
                data = {"premise": [r[0] for r in rows], "hypothesis": [r[1] for r in rows],
                        "label": [tiny.MNLI_LABELS.index(r[2]) for r in rows]}
            data["idx"] = list(range(n))
            (root / config).mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_dict(data).to_parquet(str(root / config / f"{split}-00000-of-00001.parquet"))
            yaml.append(f"  - split: {split}\n    path: {config}/{split}-*")
    (root / "README.md").write_text("\n".join(yaml + ["---", "", "A GLUE-layout test repo."]) + "\n")
    return root


def add_to_hub_cache(cache, repo_id, source, revision, ref):
    """Put the files of `source` into an HF hub cache as repo `repo_id` at `revision`, with refs/<ref> -> it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(revision)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, assets):
    """org/tiny-gpt2 at main (the tiny base) and at v1 (the COMET-style model's weights), org/tiny-comet-tok (a
    separate tokenizer repo, as COMET-DISTIL ships)."""
    cache = tmp_path_factory.mktemp("hf-home") / "hub"
    add_to_hub_cache(cache, "org/tiny-gpt2", assets["base"], REV_MAIN, "main")
    add_to_hub_cache(cache, "org/tiny-gpt2", assets["comet"], REV_V1, "v1")
    add_to_hub_cache(cache, "org/tiny-comet-tok", assets["comet_tokenizer"], REV_MAIN, "main")
    return cache


def test_dataset_repo_folder_through_the_hub_loader(dataset_repo, assets, tmp_path):
    env = {"HF_DATASETS_CACHE": str(tmp_path / "ds-cache")}
    code, out, err = cli("--model_name_or_path", assets["base"], "--task_name", "cola", "--dataset_name", dataset_repo,
                         "--output_dir", tmp_path / "cola", *FAST, env=env)
    assert code == 0, err
    res = results(tmp_path / "cola")
    assert res["eval_samples"] == 20 and res["train_samples"] == 60 and "eval_matthews_correlation" in res
    config = json.loads((tmp_path / "cola" / "config.json").read_text())
    assert set(config["data_fingerprints"]) == {"train", "validation"}
    assert all(v.startswith("datasets:") for v in config["data_fingerprints"].values())
    # MNLI's two validation splits keep the hub's names and give upstream's _mm keys
    code, _, err = cli("--model_name_or_path", assets["base"], "--task_name", "mnli", "--dataset_name", dataset_repo,
                       "--output_dir", tmp_path / "mnli", *FAST, env=env)
    assert code == 0, err
    res = results(tmp_path / "mnli")
    assert res["eval_samples"] == res["eval_samples_mm"] == 20 and "eval_accuracy_mm" in res
    assert (tmp_path / "mnli" / "predictions_validation_mismatched.jsonl").exists()


def test_model_and_tokenizer_by_hub_id_from_the_local_cache(hub_cache, assets, tmp_path):
    env = {"HF_HUB_CACHE": str(hub_cache)}
    glue = ["--task_name", "cola", "--glue_dir", assets["glue_dir"], *FAST]
    code, _, err = cli("--model_name_or_path", "org/tiny-gpt2", "--output_dir", tmp_path / "main", *glue, env=env)
    assert code == 0, err
    code, _, err = cli("--model_name_or_path", "org/tiny-gpt2", "--model_revision", "v1", "--tokenizer_name",
                       "org/tiny-comet-tok", "--output_dir", tmp_path / "v1", *glue, env=env)
    assert code == 0, err
    code, _, err = cli("--model_name_or_path", assets["comet"], "--tokenizer_name", assets["comet_tokenizer"],
                       "--output_dir", tmp_path / "local", *glue, env=env)
    assert code == 0, err
    fp = {k: json.loads((tmp_path / k / "config.json").read_text()) for k in ("main", "v1", "local")}
    # the revision picked other weights; the hub copy of the COMET-style model is the local one, bit for bit
    assert fp["main"]["model_fingerprint"] != fp["v1"]["model_fingerprint"] == fp["local"]["model_fingerprint"]
    assert fp["v1"]["tokenizer_fingerprint"] == fp["local"]["tokenizer_fingerprint"]
    assert results(tmp_path / "v1")["eval_matthews_correlation"] == results(tmp_path / "local")[
        "eval_matthews_correlation"]
    # an id that is not in the cache: one line, exit 2
    code, out, err = cli("--model_name_or_path", "org/not-cached", "--output_dir", tmp_path / "nc", *glue, env=env)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: cannot load the model config from org/not-cached") and "HF_HUB_OFFLINE" in err


def test_no_local_data_and_no_hub_is_one_line(assets, tmp_path):
    code, out, err = cli("--model_name_or_path", assets["base"], "--task_name", "rte", "--output_dir", tmp_path / "r",
                         *FAST, env={"HF_DATASETS_CACHE": str(tmp_path / "empty")})
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: cannot load dataset nyu-mll/glue (config rte): HF_HUB_OFFLINE is set")
    assert "--glue_dir DIR" in err
    assert not (tmp_path / "r").exists()  # nothing written before the data is there


def test_help_touches_no_network(tmp_path):
    """--help (and importing the package) opens no socket: hub access is decided lazily by huggingface_hub."""
    probe = ("import socket, runpy, sys\n"
             "def refuse(*a, **k):\n    raise SystemExit('network used at start-up')\n"
             "socket.create_connection = refuse\nsocket.socket.connect = refuse\n"
             f"sys.argv = ['run_glue_frozen.py', '--help']\nrunpy.run_path({str(ROOT / 'run_glue_frozen.py')!r}, "
             "run_name='__main__')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--feature_cache" in proc.stdout and "--head_from" in proc.stdout


def test_make_cola_with_hub_data_and_no_glue_dir(dataset_repo, assets, tmp_path):
    """`make cola` as the README shows it, with only the environment changed: tiny models, the hub-layout dataset
    folder instead of nyu-mll/glue, no GLUE_DIR. The sweep and the report run through."""
    models = tmp_path / "models.tsv"
    models.write_text(f"tiny-gpt2\t{assets['base']}\t-\t\ntiny-comet\t{assets['comet']}\t{assets['comet_tokenizer']}\t\n")
    train = f"--dataset_name {dataset_repo} " + " ".join(FAST[2:])
    env = {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "ds"), MODELS=str(models), SEEDS="2",
               LAUNCHER="python")
    proc = subprocess.run(["make", "-s", "cola", f"VENV={os.path.dirname(os.path.dirname(sys.executable))}",
                           f"RUNS={tmp_path / 'runs'}", f"REPORTS={tmp_path / 'reports'}", f"TRAIN_ARGS={train}",
                           f"FEATURE_CACHE={tmp_path / 'cache'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 complete, 0 skipped, 0 failed" in proc.stdout
    assert (tmp_path / "reports" / "report.md").exists()
    config = json.loads((tmp_path / "runs" / "tiny-comet" / "cola" / "seed2" / "config.json").read_text())
    assert config["args"]["data"]["dataset_name"] == str(dataset_repo) and config["args"]["data"]["glue_dir"] is None


def test_a_sentence_transformer_by_hub_id_is_read_by_its_own_pooling(assets, tmp_path):
    """modules.json and 1_Pooling/config.json come from the hub snapshot as the weights do (offline)."""
    from test_pooling import as_sentence_transformer

    st = as_sentence_transformer(assets["bert"], tmp_path / "st")
    snapshot = tmp_path / "hub" / "models--org--tiny-st" / "snapshots" / REV_MAIN
    shutil.copytree(st, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(REV_MAIN)
    code, out, err = cli("--model_name_or_path", "org/tiny-st", "--task_name", "sst2", "--glue_dir", assets["glue_dir"],
                         "--output_dir", tmp_path / "run", "--feature_cache", tmp_path / "c", *FAST,
                         env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert code == 0, err
    pooled = json.loads((tmp_path / "run" / "config.json").read_text())["pooling"]
    assert pooled["rule"] == "mean" and "trained for mean_tokens pooling" in pooled["why"]


@pytest.mark.parametrize("target", ["cola", "all"])
def test_make_dry_run_prints_the_commands_and_summarizes_nothing(assets, tmp_path, target):
    """DRY_RUN=1 make cola|all: the sweep prints its commands and runs none, so there is nothing to summarize; the
    target exits 0 without calling summarize (which would refuse an empty runs folder with exit 2)."""
    models = tmp_path / "models.tsv"
    models.write_text(f"tiny-gpt2\t{assets['base']}\t-\t\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELS": str(models), "SEEDS": "1", "LAUNCHER": "python",
           "GLUE_DIR": str(assets["glue_dir"]), "DRY_RUN": "1", "TASKS": "cola"}
    proc = subprocess.run(["make", "-s", target, f"VENV={os.path.dirname(os.path.dirname(sys.executable))}",
                           f"RUNS={tmp_path / 'runs'}", f"REPORTS={tmp_path / 'reports'}",
                           f"FEATURE_CACHE={tmp_path / 'cache'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "run_glue_frozen.py" in proc.stdout and "--standardize_features" in proc.stdout
    assert not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()
