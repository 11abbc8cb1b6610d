"""The study sweep: models x tasks x seeds, one run folder each, resumable. `launch/all_tasks.sh` calls this.
Runs the plan: must not train anything itself, nor decide what runs (sweep_plan.py) or read the environment's
settings (sweep_settings.py); it checks, plans and launches run_glue_frozen.py.

Settings come from the environment (sweep_settings.SweepSettings); extra command-line arguments are passed through
to every run. Complete runs are skipped; a failed run does not stop the sweep; a model x task group runs under its
lock (another launcher's group is left to it); GPUS / JOBS run groups in parallel; the end prints "N complete, M
skipped, K failed" and the failed runs' logs, and the exit code is 1 if any failed.
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
from pathlib import Path

from frozen_glue.config.models_file import read_models
from frozen_glue.core.errors import UserError, run_cli
from frozen_glue.core.layout import LOCK_FILE, is_complete, read_results, run_dir
from frozen_glue.core.lifetime import die_with_parent
from frozen_glue.core.locks import OwnerLock
from frozen_glue.sweep.sweep_checks import check_before_launch
from frozen_glue.sweep.sweep_plan import job_args, plan
from frozen_glue.sweep.sweep_settings import SweepSettings

# named, not __name__: run as `python -m frozen_glue.sweep.sweep` this module is __main__
logger = logging.getLogger("frozen_glue.sweep.sweep")


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


def pin_threads(env, workers: int):
    """With several groups at once on the CPUs, each run gets its share of the cores (OMP_NUM_THREADS, unless the
    user set it): every torch process otherwise starts one thread per core, and on a small head or model the
    threads of two runs spin against each other (the demo's CoLA groups ran 5-10x slower)."""
    if workers > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
        logger.info(f"{workers} groups at once: OMP_NUM_THREADS={env['OMP_NUM_THREADS']} per run (set it to override)")


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
    settings = SweepSettings.from_env(env, passthrough)
    models = read_models(settings.models)
    seed = settings.seeds[0]
    check_before_launch(models, settings.tasks, settings.glue_dir, lambda m, task: job_args(
        m, task, [(seed, run_dir(settings.runs, m.alias, task, seed))], settings))
    jobs, skipped = plan(models, settings)
    for folder in skipped:
        logger.info(f"skip (complete): {folder}")
    if settings.dry_run:
        for m in models:  # a real run reports these per job; a dry run would print the commands silently
            if m.problem:
                logger.warning(f"{m.problem} (its commands below would fail)")
        for job in jobs:
            print(shlex.join(job.command))
        logger.info(f"dry run: {len(jobs)} command(s), {len(skipped)} complete run(s) skipped")
        return 0
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "frozen_glue" / "torch_extensions"))
    how = ("python, seeds grouped per model x task (the cached path runs in one process)"
           if settings.feature_cache else settings.launcher)
    slots = settings.slots
    pin_threads(env, len(slots))
    at_once = (f", {len(slots)} groups at once" + (f" (GPUs {' '.join(map(str, slots))})" if slots[0] is not None
                                                   else "")) if len(slots) > 1 or slots[0] is not None else ""
    logger.info(f"sweep: {len(models)} model(s) x {len(settings.tasks)} task(s) x {len(settings.seeds)} seed(s) via "
                f"{how}{at_once}")
    groups = {}
    for n, job in enumerate(jobs, start=1):
        groups.setdefault((job.model.alias, job.task), []).append((n, job))
    free = queue.Queue()
    for slot, gpu in enumerate(slots):
        free.put((slot, gpu))

    def run_group(key, group):
        slot, gpu = free.get()
        try:
            return run_locked(key, group, len(jobs), env, slot, gpu, settings.runs, settings.port)
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
        from frozen_glue.measures.diagnostics import (
            collapse_advice_for,  # scipy and scikit-learn, only when there is advice to give
        )

        first = next(f for f in folders if (read_results(f) or {}).get("head_collapsed"))
        logger.info(f"{dead} of {len(done)} heads of this sweep collapsed (learnt nothing), so their scores say "
                    f"nothing about the models; likely causes (from {first}): {collapse_advice_for(first)}")


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
