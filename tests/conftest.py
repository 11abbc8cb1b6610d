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
# set by tests/mutants.py (`make mutants`): mutmut runs the tests against a mutated copy of the package, in process
MUTATION_RUN = os.environ.get("FROZEN_GLUE_MUTATION_RUN") == "1"
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


def built_once(name, build, tmp_path_factory):
    """build(folder) -> {key: path}, once per session; in a mutation run once per `make mutants`, in the folder
    FROZEN_GLUE_MUTATION_ASSETS names (tests/mutants.py sets it): mutmut forks a process per mutant, and each would
    otherwise build the session's tiny models again. The first build is the stats pass's, by the unmutated
    package; later processes read its manifest (written last, atomically, under a lock)."""
    shared = os.environ.get("FROZEN_GLUE_MUTATION_ASSETS")
    if not shared:
        return build(tmp_path_factory.mktemp(name))
    import fcntl

    folder = Path(shared) / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest.is_file():
            (folder / "files").mkdir(exist_ok=True)
            paths = build(folder / "files")
            manifest.with_suffix(".tmp").write_text(json.dumps({k: str(v) for k, v in paths.items()}))
            manifest.with_suffix(".tmp").replace(manifest)
    return {k: Path(v) for k, v in json.loads(manifest.read_text()).items()}


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    return built_once("assets", build_assets, tmp_path_factory)


def build_assets(root):
    from frozen_glue.demo import tiny

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


@pytest.fixture(scope="session")
def small_glue(tmp_path_factory):
    """CoLA only, 64 train and 32 dev rows: the sweeps' data."""
    from frozen_glue.demo import tiny

    def build(folder):
        return {"glue": tiny.write_glue_dir(folder / "glue", n_train=64, n_dev=32, tasks=("cola",))}

    return built_once("small", build, tmp_path_factory)["glue"]


# the sweeps' head recipe: 2 epochs, fast and deterministic
FAST = "--num_train_epochs 2 --learning_rate 1e-2 --per_device_train_batch_size 16 --disable_tqdm true"


def launch_sweep(env_extra, *args, cwd=ROOT, timeout=600):
    """`bash launch/all_tasks.sh` as a user runs it (a real process, python launcher, CoLA, seed 1, FAST unless
    `env_extra` says otherwise): (exit code, stdout + stderr)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHON": sys.executable, "TASKS": "cola", "SEEDS": "1", "LAUNCHER": "python",
           "EXTRA_ARGS": FAST, **{k: str(v) for k, v in env_extra.items()}}
    proc = subprocess.run(["bash", str(ROOT / "launch" / "all_tasks.sh"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def sweep_environment(patch, env_extra, cwd=ROOT):
    """The settings of a sweep run in this process, as launch_sweep gives them to a process: launch_sweep's defaults
    under `env_extra`, none of the sweep's own variables left from the caller's environment, `cwd` as the working
    folder (relative paths in the settings are the caller's)."""
    import sys

    patch.chdir(cwd)
    for key in ("DRY_RUN", "REDO_CHANGED", "FEATURE_CACHE", "ZERO_SHOT", "JOBS", "GPUS", "DS_CONFIG"):
        patch.delenv(key, raising=False)
    env = {"PYTHON": sys.executable, "TASKS": "cola", "SEEDS": "1", "LAUNCHER": "python", "EXTRA_ARGS": FAST,
           **env_extra}
    for key, value in env.items():
        patch.setenv(key, str(value))


def plan_sweep(monkeypatch, capsys, env_extra, *args, cwd=ROOT):
    """The same sweep in this process, for a sweep that stops at its plan (DRY_RUN, a refusal, every run skipped):
    the settings, checks and plan are the script's own (sweep.main), without a process start (~6 s). Sweeps that
    launch runs go through launch_sweep. (exit code, stdout + stderr)."""
    from frozen_glue.sweep import sweep

    with monkeypatch.context() as patch:
        sweep_environment(patch, env_extra, cwd)
        capsys.readouterr()
        code = sweep.main(list(args))
        out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="session")
def complete_sweep(assets, small_glue, tmp_path_factory):
    """A cached sweep run to completion once per session (per xdist worker): the tiny base as alias `m` on
    small_glue, seeds 1 and 2, FEATURE_CACHE. Tests that start from a complete tree copy it (copy_complete)
    instead of each running the same sweep."""

    def build(root):
        root.mkdir(parents=True, exist_ok=True)
        models = root / "models.tsv"
        models.write_text(f"m\t{assets['base']}\t-\t\n")
        env = {"MODELS": models, "GLUE_DIR": small_glue, "RUNS": root / "runs", "FEATURE_CACHE": root / "cache",
               "SEEDS": "1 2"}
        code, out = sweep_in_process(env) if MUTATION_RUN else launch_sweep(env)
        assert code == 0 and "2 complete, 0 skipped, 0 failed" in out, out
        return {"root": root}

    return built_once("complete", build, tmp_path_factory)["root"]


def sweep_in_process(env_extra):
    """In a mutation run only (a process would run the unmutated package): the same sweep in this process, each
    job's own run_glue_frozen arguments given to the script's main here instead of a python process, so that the
    tests that start from a complete tree still reach their in-process checks. (exit code, log lines)"""
    import logging
    import sys

    from frozen_glue.core import lifetime
    from frozen_glue.core.layout import is_complete
    from frozen_glue.sweep import sweep

    def run_here(job, env, slot=0, gpu=None, port=0):
        assert job.command[:2] == [sys.executable, str(ROOT / "run_glue_frozen.py")], job.command
        code = load_script().main([str(a) for a in job.command[2:]])
        return code == 0 and all(is_complete(f) for f in job.folders)

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    with pytest.MonkeyPatch.context() as patch:
        sweep_environment(patch, env_extra)
        patch.setattr(sweep, "run_job", run_here)
        patch.setattr(lifetime, "exit_on_signals", lambda *a, **k: None)  # runs here are in the sweep's threads
        logging.getLogger("frozen_glue").addHandler(handler)  # the package logs there (it does not propagate)
        try:
            code = sweep.main([])
        finally:
            logging.getLogger("frozen_glue").removeHandler(handler)
    return code, "\n".join(lines)


def copy_complete(complete, tmp_path, alias="m"):
    """The complete tree under tmp_path (runs/<alias>/cola/seed1-2, cache/): {RUNS, FEATURE_CACHE} for a sweep."""
    import shutil

    shutil.copytree(complete / "runs" / "m", tmp_path / "runs" / alias)
    shutil.copytree(complete / "cache", tmp_path / "cache")
    return {"RUNS": tmp_path / "runs", "FEATURE_CACHE": tmp_path / "cache"}


def bootstrap_test(metric, seeds_a, seeds_b, gold, n_resamples=2000, seed=0, confidence=0.95):
    """(difference, CI low, CI high, p) of the hierarchical bootstrap as the report reads it: the distribution
    (stats.hierarchical_distribution), its interval at 1 - confidence and its p."""
    from frozen_glue.measures import stats

    observed, dist = stats.hierarchical_distribution(metric, seeds_a, seeds_b, gold, n_resamples, seed)
    return (observed, *stats.bootstrap_interval(dist, 1 - confidence), stats.bootstrap_p(dist))


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


# what starts the package in another process: its scripts, launchers and make (a process that cannot import it,
# git for provenance or the pip / nvidia-smi probes lm-eval's environment report runs, is harmless)
PACKAGE_STARTERS = {"bash", "sh", "make", "deepspeed", "torchrun", "accelerate"}


def starts_the_package(args) -> bool:
    """Would this command line run frozen_glue code: a launcher or make, a .py or .sh script, or a command that
    names the package or this checkout?"""
    words = [os.fsdecode(a) for a in ([args] if isinstance(args, (str, bytes, os.PathLike)) else args)]
    words = [w for word in words for w in word.split()]
    if not words:
        return False
    program, rest = words[0], words[1:]  # the program may be this checkout's .venv python: only its name counts
    return Path(program).name in PACKAGE_STARTERS or program.endswith((".py", ".sh")) or any(
        w.endswith((".py", ".sh")) or "frozen_glue" in w or str(ROOT) in w for w in rest)


@pytest.fixture(scope="session", autouse=True)
def no_processes_in_a_mutation_run():
    """Under `make mutants`, a test is skipped where it starts the package in another process (starts_the_package:
    a run, a sweep, a launcher, make): that process would import the installed, unmutated package, so it could
    neither kill a mutant nor keep one alive, and it costs seconds a mutant. What the test checked in process before
    that point still counts. (Session-scoped and autouse: it is in place before the session fixtures that start
    sweeps.)"""
    if not MUTATION_RUN:
        yield
        return
    import subprocess

    start = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        if starts_the_package(args):
            pytest.skip("starts a process: it would run the unmutated package (make mutants)")
        start(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", guarded)
        yield


def pytest_collection_modifyitems(items):
    """Under `make mutants`, the tests a mutant runs go fastest first (by the durations mutmut measured in its stats
    pass, mutants/mutmut-stats.json; pytest stops at the first failure): a killed mutant costs its fastest killing
    test, not the slow end-to-end test pytest would otherwise reach first."""
    stats = Path("mutmut-stats.json")  # mutmut runs pytest in its mutants/ copy
    if not MUTATION_RUN or not stats.is_file():
        return
    seconds = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: seconds.get(item.nodeid, 0.0))
