"""The sweep's children die with it (kill -9 of the sweep's own pid, not its group), a run removes its lock when a
signal ends it, and a run's error line is read back clean from a log full of progress bars."""

import json
import os
import signal
import subprocess
import sys
import time

from frozen_glue.core.layout import LOCK_FILE, is_complete
from frozen_glue.sweep.sweep import last_error

from conftest import ROOT, TRAIN

SLOW = "--num_train_epochs 200 --learning_rate 1e-2 --per_device_train_batch_size 16 --disable_tqdm true"


def wait_for(condition, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (finished, not yet reaped by its parent) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_run_dies_with_the_sweep_and_removes_its_lock(tmp_path, assets):
    models = tmp_path / "m.tsv"
    models.write_text(f"gpt2\t{assets['base']}\t-\t\n")
    env = {**os.environ, "PYTHON": sys.executable, "MODELS": str(models), "RUNS": str(tmp_path / "runs"),
           "GLUE_DIR": str(assets["glue_dir"]), "TASKS": "cola", "SEEDS": "1", "LAUNCHER": "python",
           "EXTRA_ARGS": SLOW}
    folder = tmp_path / "runs" / "gpt2" / "cola" / "seed1"
    # the bash entry point execs python: proc.pid is the sweep itself
    proc = subprocess.Popen(["bash", str(ROOT / "launch" / "all_tasks.sh")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: (folder / "config.json").exists() and (folder / LOCK_FILE).exists())
        run_pid = json.loads((folder / LOCK_FILE).read_text())["pid"]
        assert run_pid != proc.pid and alive(run_pid)
        os.kill(proc.pid, signal.SIGKILL)  # the sweep only, not its process group
        proc.wait()
        assert wait_for(lambda: not alive(run_pid), timeout=30), "the run outlived the sweep"
        assert not (folder / LOCK_FILE).exists() and not is_complete(folder)
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if alive(proc.pid) else None


def test_sigterm_ends_a_run_through_its_cleanups(assets, tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_glue_frozen.py"), "--model_name_or_path", assets["base"],
                             "--task_name", "cola", "--glue_dir", assets["glue_dir"], "--output_dir", out, *TRAIN,
                             "--num_train_epochs", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert wait_for(lambda: (out / "config.json").exists() and (out / LOCK_FILE).exists())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err.decode()
    assert not (out / LOCK_FILE).exists() and not is_complete(out)


def test_the_error_line_is_read_clean_from_a_log_with_progress_bars(tmp_path):
    log = tmp_path / "run.log"
    lock = "error: runs/a/cola/seed1 is in use by another run (pid 7 on host h); wait for it"
    log.write_text("\n=== 2026 cmd\nMap:  50%|#####     | 5/10 [00:01<00:01]\rMap: 100%|##########| 10/10 [00:02<00:00]"
                   + lock + "\rtrain:  10%|#         | 1/10")
    assert last_error(log) == lock
    log.write_text("warning: x\nerror: first\nstep 3\n" + lock + "\n")
    assert last_error(log) == lock
    log.write_text("a Validation error: not ours\n")
    assert last_error(log) is None


def test_a_lock_left_by_sigkill_is_stale_even_when_its_pid_lives_again(tmp_path):
    """SIGKILL right after a run completed leaves its .lock behind. The lock records when its owner started, so a
    pid since reused by another process (here: this test's own pid with another start time) is not its owner: the
    lock is taken over. The owner itself (same pid, same start) is refused. Old locks without a start time: by pid."""
    import psutil
    import pytest

    from frozen_glue.core.errors import UserError
    from frozen_glue.core.locks import OwnerLock

    me, lock = psutil.Process(), tmp_path / LOCK_FILE
    host = {"host": os.uname().nodename, "uid": os.getuid(), "started": "earlier"}
    lock.write_text(json.dumps({"pid": me.pid, "pid_started": me.create_time() - 3600, **host}))
    with OwnerLock(lock, "the run folder"):
        assert json.loads(lock.read_text())["pid_started"] == me.create_time()
    assert not lock.exists()
    for recorded in ({"pid_started": me.create_time()}, {}):
        lock.write_text(json.dumps({"pid": me.pid, **recorded, **host}))
        with pytest.raises(UserError, match="is in use by another run"):
            with OwnerLock(lock, "the run folder"):
                pass
