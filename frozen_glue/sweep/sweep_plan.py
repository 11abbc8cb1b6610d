"""The sweep's plan: which runs of models x tasks x seeds are complete with this sweep's identity (skipped), which
are to run, and the command of each job (run_glue_frozen.py under python or the deepspeed launcher). Must not
launch anything; sweep.py runs the jobs.
"""

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from frozen_glue.config import arguments, contract
from frozen_glue.config.contract import protocol_hash
from frozen_glue.config.models_file import Model
from frozen_glue.core import identity
from frozen_glue.core.errors import UserError
from frozen_glue.core.identity import protocol_diff
from frozen_glue.core.layout import LOG_FILE, ZEROSHOT_DIR, is_complete, read_config, run_dir
from frozen_glue.core.provenance import PROJECT_ROOT
from frozen_glue.science import zeroshot
from frozen_glue.sweep.expected import Expected

SCRIPT = PROJECT_ROOT / "run_glue_frozen.py"


@dataclass
class Job:
    model: Model
    task: str
    seeds: list
    folders: list
    log: Path
    command: list
    redo: list = dataclasses.field(default_factory=list)  # complete folders it replaces (REDO_CHANGED=1)


def plan(models, settings):
    """(jobs to run, run folders skipped as complete). A complete run is skipped only when its recorded identity
    (identity.py: protocol + model, tokenizer and data fingerprints) equals the one this sweep would produce;
    otherwise the sweep is refused, naming what changed (REDO_CHANGED=1 redoes such runs). With the feature
    cache, one job per model x task."""
    jobs, skipped, changed = [], [], []
    grouped = bool(settings.feature_cache)
    expected = Expected()
    for m in models:
        for task in settings.tasks:
            todo, redo, parsed = [], [], None
            for seed in settings.seeds:
                folder = run_dir(settings.runs, m.alias, task, seed)
                if not is_complete(folder):
                    todo.append((seed, folder))
                    continue
                parsed = parsed or parse_job(m, task, settings)
                why = changed_since(read_config(folder), parsed, settings, expected, m)
                if not why:
                    skipped.append(folder)
                elif settings.redo_changed:
                    todo.append((seed, folder))
                    redo.append(folder)
                else:
                    changed.append(f"{folder}: {why}")
            groups = [todo] if grouped and todo else [[t] for t in todo]
            probes = [make_job(m, task, group, settings, redo=[f for _, f in group if f in redo])
                      for group in groups]
            jobs += probes
            if settings.zero_shot and task != "stsb":  # lm-eval has no STS-B prompt
                jobs += with_zero_shot(probes, zero_shot_job(m, task, settings, skipped, changed, expected), m,
                                       settings)
    if changed:
        raise UserError(f"{len(changed)} complete run(s) were made with another model, tokenizer, data or settings "
                        f"than this sweep's and would be mixed with new ones ({'; '.join(changed)}); "
                        f"REDO_CHANGED=1 redoes them, or choose another RUNS")
    return jobs, skipped


def zero_shot_job(m, task, settings, skipped, changed, expected) -> list:
    """ZERO_SHOT=1: [the zero-shot run of model m on task] (runs/<alias>/<task>/zeroshot/, in the group's lock), or []
    when it is complete with the identity this sweep would produce: its protocol, then the model, tokenizer and data
    fingerprints (`expected`, as for the probe's runs). Complete: appended to `skipped`; another identity goes to
    `changed`, unless REDO_CHANGED."""
    folder = Path(settings.runs) / m.alias / task / ZEROSHOT_DIR
    args = ["--model_name_or_path", m.path, "--task_name", task, "--do_eval", "--zero_shot",
            "--output_dir", str(folder.parent)] + (["--tokenizer_name", m.tokenizer] if m.tokenizer else []) + \
        (["--glue_dir", settings.glue_dir] if settings.glue_dir else []) + m.flags + list(settings.extra)
    if is_complete(folder):
        recorded = read_config(folder)
        why = zero_shot_changed(recorded, args, expected, m, task)
        if not why:
            skipped.append(folder)
            return []
        if not settings.redo_changed:
            changed.append(f"{folder}: {why}")
            return []
        args.append("--overwrite_output_dir")
    return [Job(m, task, [], [folder], folder / LOG_FILE, [sys.executable, str(SCRIPT), *args])]


def zero_shot_changed(recorded, args, expected, m, task) -> str:
    """What differs between a complete zero-shot run's recorded identity and this sweep's ('' if nothing)."""
    try:
        parsed = arguments.parse_args(args)
        proto = zeroshot.protocol(*parsed[:3])
        if recorded.get("protocol_hash") != protocol_hash(proto):
            return protocol_diff(recorded.get("protocol"), proto)
        if m.problem:
            return ""
        now = {"protocol": proto, "protocol_hash": protocol_hash(proto), **expected.zero_shot_sources(parsed, recorded)}
    except UserError as e:
        raise UserError(f"model {m.alias}, task {task}, zero-shot: {e}") from None
    return identity.difference(recorded, now)


def with_zero_shot(probes, zero_shot, m, settings) -> list:
    """The zero-shot job to add, or [] when the model x task's first probe job runs it too (--zero_shot beside the
    probe: one process start less, the same files). Only a plain-python job of a model whose local config names a
    causal-LM head takes it: a refused zero-shot must not take the probe down with it."""
    if not zero_shot or not probes or settings.uses_deepspeed or not zeroshot.has_causal_head(m.path):
        return zero_shot
    probes[0].command.append("--zero_shot")
    probes[0].folders += zero_shot[0].folders
    return []


def parse_job(m, task, settings):
    """The parsed arguments of the runs this sweep would start for model m on task (their command)."""
    args = job_args(m, task, [(0, run_dir(settings.runs, m.alias, task, 0))], settings)
    try:
        return arguments.parse_args(args)
    except UserError as e:
        raise UserError(f"model {m.alias}, task {task}: {e}") from None


def changed_since(recorded, parsed, settings, expected, m) -> str:
    """What differs between a complete run's recorded identity and the one this sweep would produce ('' if
    nothing): the protocol first (cheap), then the data, tokenizer and model fingerprints."""
    proto = contract.protocol(*parsed, deepspeed=settings.ds_config if settings.uses_deepspeed else None)
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


def job_args(m, task, group, settings) -> list:
    """run_glue_frozen.py's arguments for one job (one seed, or a group of seeds with the feature cache)."""
    seeds = [s for s, _ in group]
    args = ["--model_name_or_path", m.path, "--task_name", task, "--do_train", "--do_eval"]
    if m.tokenizer:
        args += ["--tokenizer_name", m.tokenizer]
    if settings.glue_dir:
        args += ["--glue_dir", settings.glue_dir]
    if settings.feature_cache:
        args += ["--feature_cache", settings.feature_cache, "--seeds", *map(str, seeds),
                 "--output_dir", str(Path(settings.runs) / m.alias / task)]
    else:
        args += ["--seed", str(seeds[0]), "--output_dir", str(group[0][1])]
    return args + m.flags + list(settings.extra)


def make_job(m, task, group, settings, redo=()):
    """The job of one group of seeds; `redo`: its complete folders to replace (REDO_CHANGED=1)."""
    seeds = [s for s, _ in group]
    folders = [f for _, f in group]
    args = job_args(m, task, group, settings) + (["--overwrite_output_dir"] if redo else [])
    log = (Path(settings.runs) / m.alias / task if settings.feature_cache else folders[0]) / LOG_FILE
    if settings.uses_deepspeed:
        gpus = settings.num_gpus
        # the launcher beside this interpreter (a venv's bin/), else the one on PATH
        launcher = Path(sys.executable).parent / "deepspeed"
        command = [str(launcher) if launcher.exists() else "deepspeed", "--num_gpus", str(max(gpus, 1)),
                   "--master_port", str(settings.port), str(SCRIPT), *args, "--deepspeed", settings.ds_config]
        if gpus == 0:
            command.append("--use_cpu")
    else:  # plain python: the cached path runs in one process; or DeepSpeed not wanted
        command = [sys.executable, str(SCRIPT), *args]
    return Job(m, task, seeds, folders, log, command, list(redo))
