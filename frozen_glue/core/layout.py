"""The run folder contract of docs/DESIGN.md: names, completeness, atomic writes, iteration over a run tree and the
protocol hash (the run lock: locks.py; provenance: provenance.py). Must not load models or compute results.

Everything that reads or writes a run folder (the script, the launcher, the analysis) goes through here.
"""

import dataclasses
import json
import math
import numbers
import os
import tempfile
from pathlib import Path

RUN_FORMAT_VERSION = 1              # of config.json and the run folder: a later format can tell old runs apart
RESULTS_FILE = "all_results.json"   # written LAST and atomically: its presence means "complete"
CONFIG_FILE = "config.json"         # written FIRST, before any training
HEAD_FILE = "head.safetensors"
LOCK_FILE = ".lock"                 # one owner per run folder: pid, host, start time
LOG_FILE = "run.log"                # the launcher sends each run's stdout/stderr here
TRAIN_RESULTS_FILE = "train_results.json"
EVAL_RESULTS_FILE = "eval_results.json"
STATE_FILE = "trainer_state.json"
LAYER_RESULTS_FILE = "layer_results.json"  # only with --probe_layers: {"<layer>": {"eval_<metric>": ...}}
SELECTION_FILE = "selection.json"  # only with a head-setting grid: hold-out scores and the setting chosen
LAYER_HEADS_FILE = "layer_heads.safetensors"  # only with --probe_layers: every probed layer's head, "layer<L>.<name>"
MDL_FILE = "mdl.json"                # only with --probe_mdl: online codelength per probed layer
SELECTIVITY_FILE = "selectivity.json"  # only with --probe_control: task, control and selectivity per probed layer
CONVEX_FILE = "convex.json"          # only with --probe_convex: the head's and a convex probe's score per probed layer
MODEL_DIR = "model"                 # only with --save_full_model
ZEROSHOT_DIR = "zeroshot"           # runs/<alias>/<task>/zeroshot/ (--zero_shot), beside the seed folders; never a seed
# every output a run writes (config.json aside, which a new run replaces first): cleared before a run starts, so
# a killed rerun never leaves an old run's files beside the new config.json
OUTPUT_PATTERNS = (RESULTS_FILE, TRAIN_RESULTS_FILE, EVAL_RESULTS_FILE, STATE_FILE, HEAD_FILE, LAYER_RESULTS_FILE,
                   LAYER_HEADS_FILE, SELECTION_FILE, MDL_FILE, SELECTIVITY_FILE, CONVEX_FILE, "predictions_*.jsonl",
                   "predict_results_*.txt", MODEL_DIR)


def predictions_file(split: str) -> str:
    """Our per-example dump of a validation split."""
    return f"predictions_{split}.jsonl"


def predict_results_file(task: str, split: str) -> str:
    """Upstream's test-split predictions: predict_results_<task>.txt (MNLI mismatched: predict_results_mnli-mm.txt)."""
    return f"predict_results_{task}{'-mm' if split.endswith('_mismatched') else ''}.txt"


def seed_dir(parent, seed) -> Path:
    """One seed's run folder inside a model x task folder."""
    return Path(parent) / f"seed{seed}"


def run_dir(runs_root, model_alias: str, task: str, seed: int) -> Path:
    return seed_dir(Path(runs_root) / model_alias / task, seed)


def seed_folders(output_dir, seeds, seed) -> dict:
    """{seed: run folder}: with --seeds each seed in <output_dir>/seed<N>; with --seed alone, output_dir itself."""
    if seeds:
        return {s: seed_dir(output_dir, s) for s in seeds}
    return {seed: Path(output_dir)}


@dataclasses.dataclass(frozen=True)
class Run:
    """One complete run folder as readers see it."""

    model: str
    task: str
    seed: int
    folder: Path
    results: dict
    config: dict

    @property
    def protocol(self):
        return self.config.get("protocol")

    @property
    def protocol_hash(self):
        return self.config.get("protocol_hash")

    @property
    def deterministic(self) -> bool:
        """A deterministic probe (--probe logistic): every seed is the same fit, so its seeds count as one run."""
        return (self.protocol or {}).get("probe") == "logistic"

    @property
    def identity_hash(self):
        """The hash of its identity (identity.py: protocol + model, tokenizer and data fingerprints), from the
        recorded fields: what readers refuse to average across."""
        from frozen_glue.core.identity import identity_hash, of_config

        return identity_hash(of_config(self.config))

    @property
    def selection(self) -> dict:
        """selection.json of a run that chose its head setting; {} otherwise."""
        try:
            return json.loads((self.folder / SELECTION_FILE).read_text())
        except (OSError, ValueError):
            return {}

    @property
    def layers(self) -> dict:
        """{layer: {"eval_<metric>": value}} of a --probe_layers run; {} otherwise."""
        try:
            return {int(k): v for k, v in json.loads((self.folder / LAYER_RESULTS_FILE).read_text()).items()}
        except (OSError, ValueError):
            return {}


def iter_runs(runs_root, model=None, task=None):
    """(complete runs under runs_root, sorted; warnings naming every run folder skipped as incomplete or
    corrupt). The one way readers (summarize, disagreements, figures) find runs."""
    from frozen_glue.core.tasks import TASKS

    root = Path(runs_root)
    runs, skipped = [], []
    for folder in sorted(root.glob(f"{model or '*'}/{task or '*'}/seed*")):
        alias, name, seed = folder.parent.parent.name, folder.parent.name, folder.name.removeprefix("seed")
        if name not in TASKS or not seed.isdigit() or not folder.is_dir():
            continue
        results = read_results(folder)
        if results is None:
            skipped.append(f"corrupt {RESULTS_FILE}, run skipped: {folder / RESULTS_FILE}"
                           if (folder / RESULTS_FILE).exists() else
                           f"incomplete run (no {RESULTS_FILE}), not counted: {folder}")
            continue
        runs.append(Run(alias, name, int(seed), folder, results, read_config(folder)))
    return runs, skipped


def counted(found):
    """The runs of `found` that count as runs: all of them, except that a deterministic probe's seeds (--probe
    logistic: every seed is the same fit) count once, the first of each model x task x identity."""
    seen = set()
    for run in found:
        key = (run.model, run.task, run.identity_hash)
        if not (run.deterministic and key in seen):
            seen.add(key)
            yield run


def read_results(folder):
    """The parsed all_results.json of a run folder, or None when the run is not complete."""
    try:
        with open(Path(folder) / RESULTS_FILE) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def read_json(path) -> dict:
    """A parsed JSON object file, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def read_config(folder) -> dict:
    """The parsed config.json of a run folder, or {} when it is missing or unreadable."""
    return read_json(Path(folder) / CONFIG_FILE)


def is_complete(folder) -> bool:
    return read_results(folder) is not None


def clear_outputs(folder):
    """Remove every output of a previous run in `folder` (all_results.json first: the run is incomplete from
    the first removal on)."""
    import shutil

    folder = Path(folder)
    (folder / RESULTS_FILE).unlink(missing_ok=True)
    for pattern in OUTPUT_PATTERNS:
        for path in folder.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes):
    """Write to a temp file in the same folder, fsync, rename: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def strict(obj):
    """`obj` with every NaN / inf float (numpy's too) replaced by None: strict JSON readers reject NaN."""
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):  # float, numpy floats
        return float(obj) if math.isfinite(obj) else None
    return obj


def atomic_write_json(path, obj):
    """Strict JSON: null where a value is undefined, never NaN (allow_nan=False proves it)."""
    text = json.dumps(strict(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_jsonl(path, rows):
    atomic_write_bytes(path, "".join(json.dumps(strict(r), ensure_ascii=False, allow_nan=False) + "\n"
                                     for r in rows).encode())


def check_writable(path, what: str):
    """A UserError, before anything is written, when `path` (a folder, made if missing) cannot be written: under a
    regular file, or in a read-only or foreign folder. Checked at start so that no half-made output is left."""
    from frozen_glue.core.errors import UserError

    path = Path(path).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file, not a folder; give a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: {existing} is not writable (read-only or another user's); give a "
                        f"folder you can write")
