"""Shared fixtures: tiny offline models and GLUE-format data, built once per test session (seconds).
No test touches the network: HF_HUB_OFFLINE is set before anything imports transformers/datasets."""

import importlib.util
import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# on xdist workers (make test runs two): one torch thread per process, so that the workers do not fight over the
# cores, and each worker its own range of rendezvous ports for the launchers the sweep starts (tests that start
# torchrun themselves name ports of their own)
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["MASTER_PORT"] = str(29500 + 40 * int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")))

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# every module of the package by its file stem (stems are unique across the subpackages: docs cite `layout.counted`)
MODULE_FILES = {p.stem: p for p in sorted((ROOT / "frozen_glue").rglob("*.py")) if p.stem != "__init__"}
SUBPACKAGES = sorted(p.parent.name for p in (ROOT / "frozen_glue").glob("*/__init__.py"))


def dotted(path: Path) -> str:
    """frozen_glue/core/layout.py -> frozen_glue.core.layout"""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


SHARED_GLUE = ROOT.parent / "shared" / "data" / "glue"

# fast, deterministic head training for the tiny models
TRAIN = ["--do_train", "--do_eval", "--num_train_epochs", "2", "--learning_rate", "1e-2",
         "--per_device_train_batch_size", "16", "--disable_tqdm", "true", "--use_cpu", "true"]


def load_script():
    spec = importlib.util.spec_from_file_location("run_glue_frozen", ROOT / "run_glue_frozen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def script():
    """The run_glue_frozen module, imported once; tests call script.main([...]) in-process. The console log is set up
    as run_cli sets it up, for the tests that call script.execute directly and read what it logs."""
    from frozen_glue.core.errors import setup_logging

    setup_logging()
    return load_script()


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    from frozen_glue.demo import tiny

    root = tmp_path_factory.mktemp("assets")
    paths = tiny.build_demo(root)
    paths["bert"] = tiny.build_tiny_bert(root / "models" / "tiny-bert")
    paths["roberta"] = tiny.build_tiny_roberta(root / "models" / "tiny-roberta")
    # COMET-DISTIL as it may ship: its own EOS, pad and relation tokens, resized embeddings
    paths["comet_pad"], paths["comet_pad_tokenizer"] = tiny.build_comet_style(
        paths["base"], root / "models" / "comet-pad", root / "tokenizers" / "comet-pad", pad=True,
        relations=tiny.RELATIONS)
    # the same, but no training: only tokens added, so its weights equal the base's
    paths["copy"], paths["copy_tokenizer"] = tiny.build_comet_style(
        paths["base"], root / "models" / "copy", root / "tokenizers" / "copy", steps=0, pad=True,
        relations=tiny.RELATIONS)
    return paths


def run(script, capsys, *args):
    """Run the script in-process: (exit code, stdout, stderr)."""
    code = script.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err):
    """The single stderr line of a user error (the test fails if there is more, or a traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def assert_refused(script, capsys, assets, tmp_path, extra, message):
    """A CoLA run of the tiny base with `extra` flags ("C" stands for a feature cache folder) is refused: exit 2, one
    line starting `error: <message>`, and no run written."""
    extra = [str(tmp_path / "c") if e == "C" else e for e in extra]
    code, _, err = run(script, capsys, "--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir",
                       assets["glue_dir"], "--output_dir", tmp_path / "out", *TRAIN, *extra)
    assert code == 2 and err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / "all_results.json").exists()


def results(folder):
    return json.loads((Path(folder) / "all_results.json").read_text())


def predictions(folder, split="validation"):
    return [json.loads(line) for line in (Path(folder) / f"predictions_{split}.jsonl").read_text().splitlines()]
