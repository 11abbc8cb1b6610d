"""The study sweep: models x tasks x seeds, one run folder each, resumable. `launch/all_tasks.sh` calls this.
Must not train anything itself: it plans, checks and launches run_glue_frozen.py.

Settings come from the environment (the bash entry point's interface): MODELS, TASKS, SEEDS, RUNS, GLUE_DIR,
NUM_GPUS, GPUS, JOBS, DS_CONFIG, LAUNCHER (auto|deepspeed|python), FEATURE_CACHE, DRY_RUN, EXTRA_ARGS, ZERO_SHOT; extra
command-line arguments are passed through to every run. Complete runs are skipped; a failed run does not stop the
sweep; a model x task group runs under its lock (another launcher's group is left to it); GPUS / JOBS run groups
in parallel; the end prints "N complete, M skipped, K failed" and the failed runs' logs, and the exit code is 1 if
any failed.
"""

import concurrent.futures
import contextlib
import logging
import os
import queue
import re
import shlex
import subprocess
import sys
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import arguments, contract, identity
from .ds_config import validate_ds_config
from .protocols import PROTOCOLS
from .errors import UserError, run_cli
from .contract import protocol_diff, protocol_hash
from .hub import is_local_path
from .layout import LOCK_FILE, LOG_FILE, is_complete, read_config, read_results, run_dir
from .lifetime import die_with_parent
from .locks import OwnerLock
from .sweep_checks import check_before_launch, check_not_empty
from .tasks import TASKS, get_task

# named, not __name__: run as `python -m frozen_glue.sweep` this module is __main__
logger = logging.getLogger("frozen_glue.sweep")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "run_glue_frozen.py"


@dataclass
class Model:
    alias: str
    path: str
    tokenizer: str | None
    flags: list
    reference: str | None = None  # its name in a --reference csv of published numbers (5th column), if any
    base: str | None = None       # the alias of the model it was specialized from (6th column), if any
    problem: str | None = None   # why this model cannot run (unset variable, missing dir), or None


def read_models(path) -> list:
    """`alias<TAB>model<TAB>tokenizer or -<TAB>extra flags<TAB>reference name or -<TAB>base alias or -` per line
    (the last three optional); blank lines and # comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"models file {path} does not exist; set MODELS=FILE (see launch/models.tsv)")
    models = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) not in (3, 4, 5, 6) or not all(f.strip() for f in fields[:3]):
            raise UserError(f"{path}:{line_no}: expected 3 to 6 tab-separated fields (alias, model, tokenizer or -, "
                            f"extra flags, reference name or -, base alias or -), found {len(fields)}: {line!r}")
        alias, model, tokenizer = (f.strip() for f in fields[:3])
        for column, value in (("model", model), ("tokenizer", tokenizer)):
            if value.startswith("-") and value != "-":
                raise UserError(f"{path}:{line_no}: the {column} column holds {value!r}, a flag; flags go in the 4th "
                                f"column (alias, model, tokenizer or -, extra flags)")
        flags = shlex.split(os.path.expandvars(fields[3])) if len(fields) >= 4 else []
        reference, base = (fields[i].strip() if len(fields) > i and fields[i].strip() not in ("", "-") else None
                           for i in (4, 5))
        m = Model(alias, os.path.expandvars(model), None if tokenizer == "-" else os.path.expandvars(tokenizer), flags,
                  reference=reference, base=base)
        for value in (m.path, m.tokenizer or ""):
            if m.problem:  # the model's own column first: name one problem, the first
                break
            unset = re.search(r"\$\{?(\w+)", value)  # expandvars leaves unset variables in place
            if unset:
                m.problem = f"model {alias}: {unset.group(1)} is not set; export {unset.group(1)}=/path/to/the/model"
            elif is_local_path(value) and not Path(value).expanduser().exists():
                m.problem = f"model {alias}: {value} does not exist"
            elif value and not Path(value).expanduser().exists() and not hub_available(value):
                m.problem = (f"model {alias}: {value} is a hub id, HF_HUB_OFFLINE is set and it is not in the local "
                             f"HF cache; download it and put its local dir in {path}")
        models.append(m)
    if not models:
        raise UserError(f"models file {path} lists no model")
    if len({m.alias for m in models}) != len(models):
        raise UserError(f"models file {path}: aliases must be unique")
    unknown = [f"{m.alias} -> {m.base}" for m in models if m.base and m.base not in {n.alias for n in models}]
    if unknown:
        raise UserError(f"models file {path}: the base column names no model of the file ({', '.join(unknown)}); "
                        f"give the alias of another line, or -")
    return models


def hub_available(repo_id) -> bool:
    """True unless HF_HUB_OFFLINE is set and the model's config is not in the local HF cache (online, whether the
    hub answers is found out by the run itself, lazily)."""
    from huggingface_hub import try_to_load_from_cache

    from .hub import hub_offline

    try:
        return not hub_offline() or isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # huggingface_hub's HFValidationError: not a possible hub id (spaces, '--', ...)
        raise UserError(f"{repo_id!r} is neither an existing folder nor a valid hub id (namespace/name)") from None


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


@dataclass
class Job:
    model: Model
    task: str
    seeds: list
    folders: list
    log: Path
    command: list
    redo: list = dataclasses.field(default_factory=list)  # complete folders it replaces (REDO_CHANGED=1)


def plan(models, tasks, seeds, runs, settings):
    """(jobs to run, run folders skipped as complete). A complete run is skipped only when its recorded identity
    (identity.py: protocol + model, tokenizer and data fingerprints) equals the one this sweep would produce;
    otherwise the sweep is refused, naming what changed (REDO_CHANGED=1 redoes such runs). With the feature
    cache, one job per model x task."""
    jobs, skipped, changed = [], [], []
    grouped = bool(settings["feature_cache"])
    expected = identity.Expected()
    for m in models:
        for task in tasks:
            todo, redo, parsed = [], [], None
            for seed in seeds:
                folder = run_dir(runs, m.alias, task, seed)
                if not is_complete(folder):
                    todo.append((seed, folder))
                    continue
                parsed = parsed or parse_job(m, task, runs, settings)
                why = changed_since(read_config(folder), parsed, settings, expected, m)
                if not why:
                    skipped.append(folder)
                elif settings["redo_changed"]:
                    todo.append((seed, folder))
                    redo.append(folder)
                else:
                    changed.append(f"{folder}: {why}")
            groups = [todo] if grouped and todo else [[t] for t in todo]
            probes = [make_job(m, task, group, runs, settings, redo=[f for _, f in group if f in redo])
                      for group in groups]
            jobs += probes
            if settings.get("zero_shot") and task != "stsb":  # lm-eval has no STS-B prompt
                jobs += with_zero_shot(probes, zero_shot_job(m, task, runs, settings, skipped, changed), m, settings)
    if changed:
        raise UserError(f"{len(changed)} complete run(s) were made with another model, tokenizer, data or settings "
                        f"than this sweep's and would be mixed with new ones ({'; '.join(changed)}); "
                        f"REDO_CHANGED=1 redoes them, or choose another RUNS")
    return jobs, skipped


def zero_shot_job(m, task, runs, settings, skipped, changed) -> list:
    """ZERO_SHOT=1: [the zero-shot run of model m on task] (runs/<alias>/<task>/zeroshot/, in the group's lock), or []
    when it is complete with the protocol this sweep would run (appended to `skipped`; another protocol goes to
    `changed`, unless REDO_CHANGED)."""
    from . import zeroshot

    folder = Path(runs) / m.alias / task / zeroshot.FOLDER
    args = ["--model_name_or_path", m.path, "--task_name", task, "--do_eval", "--zero_shot",
            "--output_dir", str(folder.parent)] + (["--tokenizer_name", m.tokenizer] if m.tokenizer else []) + \
        (["--glue_dir", settings["glue_dir"]] if settings["glue_dir"] else []) + m.flags + settings["extra"]
    if is_complete(folder):
        try:
            expected = zeroshot.protocol(*arguments.parse_args(args)[:2])
        except UserError as e:
            raise UserError(f"model {m.alias}, task {task}, zero-shot: {e}") from None
        recorded = read_config(folder)
        if recorded.get("protocol_hash") == protocol_hash(expected):
            skipped.append(folder)
            return []
        if not settings["redo_changed"]:
            changed.append(f"{folder}: {protocol_diff(recorded.get('protocol'), expected)}")
            return []
        args.append("--overwrite_output_dir")
    return [Job(m, task, [], [folder], folder / LOG_FILE, [sys.executable, str(SCRIPT), *args])]


def with_zero_shot(probes, zero_shot, m, settings) -> list:
    """The zero-shot job to add, or [] when the model x task's first probe job runs it too (--zero_shot beside the
    probe: one process start less, the same files). Only a plain-python job of a model whose local config names a
    causal-LM head takes it: a refused zero-shot must not take the probe down with it."""
    from .zeroshot import has_causal_head

    if not zero_shot or not probes or uses_deepspeed(settings) or not has_causal_head(m.path):
        return zero_shot
    probes[0].command.append("--zero_shot")
    probes[0].folders += zero_shot[0].folders
    return []


def parse_job(m, task, runs, settings):
    """The parsed arguments of the runs this sweep would start for model m on task (their command)."""
    args = job_args(m, task, [(0, run_dir(runs, m.alias, task, 0))], runs, settings)
    try:
        return arguments.parse_args(args)
    except UserError as e:
        raise UserError(f"model {m.alias}, task {task}: {e}") from None


def changed_since(recorded, parsed, settings, expected, m) -> str:
    """What differs between a complete run's recorded identity and the one this sweep would produce ('' if
    nothing): the protocol first (cheap), then the data, tokenizer and model fingerprints."""
    proto = contract.protocol(*parsed, deepspeed=settings["ds_config"] if uses_deepspeed(settings) else None)
    now = {"protocol": proto, "protocol_hash": protocol_hash(proto)}
    if recorded.get("protocol_hash") != now["protocol_hash"]:
        return protocol_diff(recorded.get("protocol"), proto)
    if m.problem:  # the model cannot be loaded now; its runs will be reported as failed, not compared
        return ""
    try:
        now.update(expected.sources(parsed, recorded))
    except UserError as e:
        raise UserError(f"model {m.alias}: {e}") from None
    return identity.difference(recorded, now)


def uses_deepspeed(settings) -> bool:
    return settings["launcher"] == "deepspeed" and not settings["feature_cache"]


def job_args(m, task, group, runs, settings) -> list:
    """run_glue_frozen.py's arguments for one job (one seed, or a group of seeds with the feature cache)."""
    seeds = [s for s, _ in group]
    args = ["--model_name_or_path", m.path, "--task_name", task, "--do_train", "--do_eval"]
    if m.tokenizer:
        args += ["--tokenizer_name", m.tokenizer]
    if settings["glue_dir"]:
        args += ["--glue_dir", settings["glue_dir"]]
    if settings["feature_cache"]:
        args += ["--feature_cache", settings["feature_cache"], "--seeds", *map(str, seeds),
                 "--output_dir", str(Path(runs) / m.alias / task)]
    else:
        args += ["--seed", str(seeds[0]), "--output_dir", str(group[0][1])]
    return args + m.flags + settings["extra"]


def make_job(m, task, group, runs, settings, redo=()):
    """The job of one group of seeds; `redo`: its complete folders to replace (REDO_CHANGED=1)."""
    seeds = [s for s, _ in group]
    folders = [f for _, f in group]
    args = job_args(m, task, group, runs, settings) + (["--overwrite_output_dir"] if redo else [])
    log = (Path(runs) / m.alias / task if settings["feature_cache"] else folders[0]) / LOG_FILE
    if uses_deepspeed(settings):
        gpus = settings["num_gpus"]
        # the launcher beside this interpreter (a venv's bin/), else the one on PATH
        launcher = Path(sys.executable).parent / "deepspeed"
        command = [str(launcher) if launcher.exists() else "deepspeed", "--num_gpus", str(max(gpus, 1)), "--master_port", str(settings["port"]),
                   str(SCRIPT), *args, "--deepspeed", settings["ds_config"]]
        if gpus == 0:
            command.append("--use_cpu")
    else:  # plain python: the cached path runs in one process; or DeepSpeed not wanted
        command = [sys.executable, str(SCRIPT), *args]
    return Job(m, task, seeds, folders, log, command, list(redo))


def _path(value):
    """A setting's path, relative to the caller's directory (not the repo's), made absolute; None if unset."""
    return str(Path(value).expanduser().resolve()) if value else None


def settings_from_env(env):
    settings = {
        "glue_dir": _path(env.get("GLUE_DIR")),
        "feature_cache": _path(env.get("FEATURE_CACHE")),
        "extra": shlex.split(env.get("EXTRA_ARGS", "")),
        "port": int(env.get("MASTER_PORT", "29512")),
        "redo_changed": env.get("REDO_CHANGED", "0") not in ("", "0"),
        "zero_shot": env.get("ZERO_SHOT", "0") not in ("", "0"),  # also a zero-shot run per model x task
    }
    available = gpu_count()
    wanted = env.get("NUM_GPUS", "")
    try:
        settings["num_gpus"] = int(wanted) if wanted else available
    except ValueError:
        raise UserError(f"NUM_GPUS={wanted!r}: give a whole number") from None
    if settings["num_gpus"] > available:
        raise UserError(f"NUM_GPUS={settings['num_gpus']} but this machine has {available} GPU(s); "
                        f"set NUM_GPUS={available}")
    if wanted and env.get("GPUS", "").strip():
        raise UserError("NUM_GPUS and GPUS both set: NUM_GPUS gives each run that many GPUs, GPUS runs one group per "
                        "listed GPU; set one of them")
    settings["slots"] = parallel_slots(env.get("GPUS", ""), env.get("JOBS", ""), available)
    if settings["slots"][0] is not None:
        settings["num_gpus"] = 1  # each job sees the one GPU of its slot
    launcher = env.get("LAUNCHER", "auto")
    ds_config = env.get("DS_CONFIG", str(ROOT / "ds_configs" / "zero2.json"))
    if launcher not in ("auto", "deepspeed", "python"):
        raise UserError(f"LAUNCHER={launcher!r}: use auto, deepspeed or python")
    if launcher == "auto":
        launcher = "python" if ds_config in ("", "none") else "deepspeed"
    protocol = env.get("PROTOCOL", "")
    if protocol:
        if protocol not in PROTOCOLS:
            raise UserError(f"PROTOCOL={protocol!r}: known protocols are {', '.join(PROTOCOLS)}")
        if settings["feature_cache"]:
            raise UserError(f"PROTOCOL={protocol} runs each seed as its own DeepSpeed run with dropout in the base, "
                            f"as the thesis did; unset FEATURE_CACHE")
        launcher = "deepspeed"  # the thesis ran under DeepSpeed
        # the protocol's flags come first: EXTRA_ARGS and command-line arguments can still override them
        settings["extra"] = PROTOCOLS[protocol](max(settings["num_gpus"], 1)) + settings["extra"]
    if launcher == "deepspeed":
        ds_config = _path(ds_config)
        validate_ds_config(ds_config)
    settings.update(launcher=launcher, ds_config=ds_config)
    return settings


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


def on_slot(command, slot: int, gpu, port: int):
    """(command, environment additions) of a job run by worker `slot` on `gpu`: the deepspeed launcher is given the
    device itself (it ignores CUDA_VISIBLE_DEVICES next to --num_gpus) and a master port of its own."""
    if gpu is None and slot == 0:
        return command, {}
    command = list(command)
    if "--num_gpus" in command:
        i = command.index("--num_gpus")
        command[i:i + 2] = ["--include", f"localhost:{gpu}"] if gpu is not None else command[i:i + 2]
        i = command.index("--master_port")
        command[i + 1] = str(port + slot)
        return command, {}
    return command, {} if gpu is None else {"CUDA_VISIBLE_DEVICES": str(gpu)}


def run_job(job, env, slot=0, gpu=None, port=29512):
    command, extra = on_slot(job.command, slot, gpu, port)
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "a") as log:  # append: a rerun after a crash keeps the first attempt's log
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n")
        log.flush()
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env={**env, **extra},
                               preexec_fn=die_with_parent)  # the run dies with the sweep, even after kill -9
    return code == 0 and all(is_complete(f) for f in job.folders)


def last_error(log):
    """The run's own one-line `error: ...` message, if it printed one."""
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return None
    # at a line start, or right after a progress bar's carriage return or its closing bracket: a progress line
    # never ends in a newline, so an error printed after it would otherwise carry the bar along
    lines = re.findall(r"(?:^|[\r\]|])(error: [^\r\n]*)", text, re.M)
    return lines[-1] if lines else None


def sweep(passthrough) -> int:
    """Plan (a bad setting is a UserError, before anything runs), then run every job; 1 if any failed."""
    env = dict(os.environ)
    check_not_empty(env)
    models = read_models(_path(env.get("MODELS")) or ROOT / "launch" / "models.tsv")
    tasks = parse_tasks(env.get("TASKS", ""))
    seeds = parse_seeds(env.get("SEEDS", "1 2 3 4 5"))
    runs = _path(env.get("RUNS", "runs"))
    settings = settings_from_env(env)
    settings["extra"] += passthrough
    check_before_launch(models, tasks, settings["glue_dir"], lambda m, task: job_args(
        m, task, [(seeds[0], run_dir(runs, m.alias, task, seeds[0]))], runs, settings))
    jobs, skipped = plan(models, tasks, seeds, runs, settings)
    for folder in skipped:
        logger.info(f"skip (complete): {folder}")
    if env.get("DRY_RUN", "0") not in ("", "0"):
        for m in models:  # a real run reports these per job; a dry run would print the commands silently
            if m.problem:
                logger.warning(f"{m.problem} (its commands below would fail)")
        for job in jobs:
            print(shlex.join(job.command))
        logger.info(f"dry run: {len(jobs)} command(s), {len(skipped)} complete run(s) skipped")
        return 0
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "frozen_glue" / "torch_extensions"))
    how = ("python, seeds grouped per model x task (the cached path runs in one process)"
           if settings["feature_cache"] else settings["launcher"])
    slots = settings["slots"]
    at_once = (f", {len(slots)} groups at once" + (f" (GPUs {' '.join(map(str, slots))})" if slots[0] is not None
                                                   else "")) if len(slots) > 1 or slots[0] is not None else ""
    logger.info(f"sweep: {len(models)} model(s) x {len(tasks)} task(s) x {len(seeds)} seed(s) via {how}{at_once}")
    groups = {}
    for n, job in enumerate(jobs, start=1):
        groups.setdefault((job.model.alias, job.task), []).append((n, job))
    free = queue.Queue()
    for slot, gpu in enumerate(slots):
        free.put((slot, gpu))

    def run_group(key, group):
        slot, gpu = free.get()
        try:
            return run_locked(key, group, len(jobs), env, slot, gpu, runs, settings["port"])
        finally:
            free.put((slot, gpu))

    tally = {"complete": 0, "redone": 0, "failed": [], "locked": []}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(slots)) as pool:
        for future in [pool.submit(run_group, key, group) for key, group in groups.items()]:
            for name, value in future.result().items():
                tally[name] += value
    redone = f" ({tally['redone']} redone with the changed settings)" if tally["redone"] else ""
    logger.info(f"{tally['complete']} complete{redone}, {len(skipped)} skipped, " +
                (f"{len(tally['locked'])} locked by other jobs, " if tally["locked"] else "") +
                f"{len(tally['failed'])} failed")
    for label, why in tally["locked"]:
        logger.info(f"  locked: {label}: {why}")
    for label, where in tally["failed"]:
        logger.info(f"  failed: {label}: {where}")
    collapsed_hint([f for job in jobs for f in job.folders])
    return 1 if tally["failed"] else 0


def collapsed_hint(folders):
    """One line when most heads of this sweep learnt nothing: a study of collapsed heads shows nothing."""
    done = [r for r in map(read_results, folders) if r is not None]
    dead = sum(bool(r.get("head_collapsed")) for r in done)
    if done and dead * 2 > len(done):
        logger.info(f"{dead} of {len(done)} heads of this sweep collapsed (learnt nothing), so their scores say "
                    f"nothing about the models: add a head grid chosen on a train hold-out (FEATURE_CACHE=DIR and "
                    f"--head_learning_rates 1e-3 1e-2 1e-1) or more epochs")


def run_locked(key, group, total, env, slot, gpu, runs, port) -> dict:
    """One model x task group's jobs in turn, under the group's lock (runs/<alias>/<task>/.lock): another launcher
    or array element running the same group leaves it to that one. Returns its tally (complete, failed, locked)."""
    alias, task = key
    tally = {"complete": 0, "redone": 0, "failed": [], "locked": []}
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(OwnerLock(Path(runs) / alias / task / LOCK_FILE, f"{alias}/{task}"))
        except UserError as e:
            logger.info(f"left alone, locked by another job: {alias}/{task}")
            tally["locked"].append((f"{alias}/{task}", str(e)))
            return tally
        for n, job in group:
            label = f"{job.model.alias}/{job.task} " + (f"seed(s) {' '.join(map(str, job.seeds))}" if job.seeds
                                                        else "zero-shot")
            where = f" on GPU {gpu}" if gpu is not None else ""
            if job.model.problem:
                logger.info(f"[{n}/{total}] FAILED {label}: {job.model.problem}")
                tally["failed"].append((label, job.model.problem))
                continue
            if not job.redo and all(is_complete(f) for f in job.folders):  # finished elsewhere since planned
                logger.info(f"[{n}/{total}] {label}: completed elsewhere meanwhile")
                continue
            logger.info(f"[{n}/{total}] {label}{where} ...")
            started = time.time()
            if run_job(job, env, slot, gpu, port):
                tally["complete"] += len(job.folders)
                tally["redone"] += len(job.redo)
                logger.info(f"[{n}/{total}] {label} done ({time.time() - started:.0f}s)")
            else:
                tally["complete"] += sum(is_complete(f) for f in job.folders)
                reason = last_error(job.log)
                logger.info(f"[{n}/{total}] {label} FAILED ({time.time() - started:.0f}s)"
                            f"{': ' + reason if reason else ''}")
                tally["failed"].append((label, f"{reason + ' - ' if reason else ''}log: {job.log}"))
    return tally


def main(argv=None) -> int:
    return run_cli(sweep, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
