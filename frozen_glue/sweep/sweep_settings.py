"""The sweep's settings: the environment (the bash entry point's interface) read and checked once into a frozen
SweepSettings. Must not read the models file, plan jobs or launch anything.

MODELS, TASKS, SEEDS, RUNS, GLUE_DIR, NUM_GPUS, GPUS, JOBS, DS_CONFIG, LAUNCHER (auto|deepspeed|python), PROTOCOL,
FEATURE_CACHE, EXTRA_ARGS, MASTER_PORT, DRY_RUN, REDO_CHANGED, ZERO_SHOT; a bad value is a UserError naming it.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path

from frozen_glue.config.ds_config import validate_ds_config
from frozen_glue.config.protocols import PROTOCOLS
from frozen_glue.core.errors import UserError
from frozen_glue.core.provenance import PROJECT_ROOT
from frozen_glue.core.tasks import TASKS, get_task
from frozen_glue.sweep.sweep_checks import check_not_empty


@dataclass(frozen=True)
class SweepSettings:
    models: Path                  # MODELS: the models file (default launch/models.tsv)
    tasks: tuple                  # TASKS (default: all nine), lower-case names
    seeds: tuple                  # SEEDS (default 1 2 3 4 5)
    runs: str                     # RUNS: the runs root, absolute
    glue_dir: str | None          # GLUE_DIR, absolute, or None (the hub's copy)
    feature_cache: str | None     # FEATURE_CACHE, absolute, or None (no cache: one job per seed)
    extra: tuple                  # PROTOCOL's flags + EXTRA_ARGS + the sweep's command-line arguments, for every run
    port: int                     # MASTER_PORT of the deepspeed launcher (worker n adds n)
    redo_changed: bool            # REDO_CHANGED=1: redo complete runs made with other settings
    zero_shot: bool               # ZERO_SHOT=1: also a zero-shot run per model x task
    dry_run: bool                 # DRY_RUN=1: print the commands, run nothing
    num_gpus: int                 # NUM_GPUS (default: all; 1 with GPUS, each job sees its slot's GPU)
    slots: tuple                  # GPUS / JOBS: one entry per worker, its GPU or None (see parallel_slots)
    launcher: str                 # LAUNCHER resolved: deepspeed or python
    ds_config: str                # DS_CONFIG: absolute and checked when the launcher is deepspeed, else as given
    protocol: str = ""            # PROTOCOL, or "" (its flags are in `extra`)

    @classmethod
    def from_env(cls, env, passthrough=()) -> "SweepSettings":
        """The settings of a sweep started in environment `env` with command-line arguments `passthrough` (passed
        on to every run, after EXTRA_ARGS)."""
        check_not_empty(env)
        models = Path(_path(env.get("MODELS")) or PROJECT_ROOT / "launch" / "models.tsv")
        tasks = parse_tasks(env.get("TASKS", ""))
        seeds = parse_seeds(env.get("SEEDS", "1 2 3 4 5"))
        runs = _path(env.get("RUNS", "runs"))
        feature_cache = _path(env.get("FEATURE_CACHE"))
        extra = shlex.split(env.get("EXTRA_ARGS", ""))
        port = int(env.get("MASTER_PORT", "29512"))
        num_gpus, slots = gpus_from_env(env)
        launcher, ds_config, protocol_flags = launcher_from_env(env, feature_cache, num_gpus)
        return cls(models=models, tasks=tuple(tasks), seeds=tuple(seeds), runs=runs,
                   glue_dir=_path(env.get("GLUE_DIR")), feature_cache=feature_cache,
                   extra=tuple(protocol_flags + extra + list(passthrough)), port=port,
                   redo_changed=_on(env, "REDO_CHANGED"), zero_shot=_on(env, "ZERO_SHOT"),
                   dry_run=_on(env, "DRY_RUN"),
                   num_gpus=num_gpus, slots=tuple(slots), launcher=launcher, ds_config=ds_config,
                   protocol=env.get("PROTOCOL", ""))

    @property
    def uses_deepspeed(self) -> bool:
        return self.launcher == "deepspeed" and not self.feature_cache


def _on(env, name) -> bool:
    """A 0/1 switch: unset, empty or 0 is off."""
    return env.get(name, "0") not in ("", "0")


def _path(value):
    """A setting's path, relative to the caller's directory (not the repo's), made absolute; None if unset."""
    return str(Path(value).expanduser().resolve()) if value else None


def parse_tasks(text):
    names = [t for t in text.replace(",", " ").split() if t]
    for name in names:
        get_task(name)  # unknown names raise with the list of valid ones
    return [n.lower() for n in names] or list(TASKS)


def parse_seeds(text):
    try:
        return [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise UserError(f"SEEDS={text!r}: give whole numbers, e.g. SEEDS='1 2 3 4 5'") from None


def gpu_count():
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch, no GPUs
        return 0


def gpus_from_env(env) -> tuple:
    """(GPUs each run gets, the workers' slots) from NUM_GPUS, GPUS and JOBS."""
    available = gpu_count()
    wanted = env.get("NUM_GPUS", "")
    try:
        num_gpus = int(wanted) if wanted else available
    except ValueError:
        raise UserError(f"NUM_GPUS={wanted!r}: give a whole number") from None
    if num_gpus > available:
        raise UserError(f"NUM_GPUS={num_gpus} but this machine has {available} GPU(s); "
                        f"set NUM_GPUS={available}")
    if wanted and env.get("GPUS", "").strip():
        raise UserError("NUM_GPUS and GPUS both set: NUM_GPUS gives each run that many GPUs, GPUS runs one group per "
                        "listed GPU; set one of them")
    slots = parallel_slots(env.get("GPUS", ""), env.get("JOBS", ""), available)
    if slots[0] is not None:
        num_gpus = 1  # each job sees the one GPU of its slot
    return num_gpus, slots


def launcher_from_env(env, feature_cache, num_gpus) -> tuple:
    """(launcher, DeepSpeed config, the protocol's flags) from LAUNCHER, DS_CONFIG and PROTOCOL."""
    launcher = env.get("LAUNCHER", "auto")
    ds_config = env.get("DS_CONFIG", str(PROJECT_ROOT / "ds_configs" / "zero2.json"))
    if launcher not in ("auto", "deepspeed", "python"):
        raise UserError(f"LAUNCHER={launcher!r}: use auto, deepspeed or python")
    if launcher == "auto":
        launcher = "python" if ds_config in ("", "none") else "deepspeed"
    protocol, flags = env.get("PROTOCOL", ""), []
    if protocol:
        if protocol not in PROTOCOLS:
            raise UserError(f"PROTOCOL={protocol!r}: known protocols are {', '.join(PROTOCOLS)}")
        if feature_cache:
            raise UserError(f"PROTOCOL={protocol} runs each seed as its own DeepSpeed run with dropout in the base, "
                            f"as the thesis did; unset FEATURE_CACHE")
        launcher = "deepspeed"  # the thesis ran under DeepSpeed
        # the protocol's flags come first: EXTRA_ARGS and command-line arguments can still override them
        flags = list(PROTOCOLS[protocol](max(num_gpus, 1)))
    if launcher == "deepspeed":
        ds_config = _path(ds_config)
        validate_ds_config(ds_config)
    return launcher, ds_config, flags


def parallel_slots(gpus: str, jobs: str, available: int) -> list:
    """The sweep's workers: one per GPU of GPUS="0 1 2 3" (each job sees that one device), JOBS=N workers that
    share the machine, or one worker (None: the job sees what the launcher gives it)."""
    if gpus.strip() and jobs.strip():
        raise UserError("GPUS and JOBS both set: GPUS runs one job per listed GPU; JOBS=N runs N jobs that share the "
                        "machine (e.g. on CPUs). Set one of them")
    if gpus.strip():
        wanted = gpus.replace(",", " ").split()
        bad = [g for g in wanted if not g.isdigit() or int(g) >= available]
        if not available:
            raise UserError(f"GPUS={gpus!r}: this machine has no GPU; unset GPUS (JOBS=N runs N groups at once "
                            f"without GPUs)")
        if bad:
            raise UserError(f"GPUS={gpus!r}: this machine has GPUs 0-{available - 1}; {', '.join(bad)} "
                            f"{'is' if len(bad) == 1 else 'are'} not among them")
        if len(set(wanted)) != len(wanted):
            raise UserError(f"GPUS={gpus!r} lists a GPU twice; list each once, e.g. GPUS='0 1'")
        return [int(g) for g in wanted]
    try:
        count = int(jobs) if jobs.strip() else 1
    except ValueError:
        count = 0
    if count < 1:
        raise UserError(f"JOBS={jobs!r}: give how many model x task groups run at once, e.g. JOBS=2")
    return [None] * count
