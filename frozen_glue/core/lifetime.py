"""How long a process lives: the sweep's children die with it (even after `kill -9` of the sweep alone), and a run
ends through its cleanups on a termination signal, so that its `.lock` is removed however it is stopped short of
SIGKILL (a lock left by SIGKILL is taken over as abandoned: locks.OwnerLock). Must not start or plan anything."""

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now: preexec_fn must do as little as possible
except (OSError, AttributeError):  # not Linux: no parent-death signal; the sweep's own exit handlers remain
    _prctl = None


def die_with_parent():
    """preexec_fn of the sweep's children: the kernel sends SIGTERM to the child when the sweep's thread that
    started it ends, whatever ends it. SIGTERM, not SIGKILL: the run (exit_on_signals) then removes its lock, and
    the deepspeed launcher passes it on to its ranks."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _exit(signum, frame):
    raise SystemExit(128 + signum)  # unwinds every `with`: locks removed, temp files discarded


def exit_on_signals(signals=(signal.SIGTERM, signal.SIGHUP)):
    """SIGTERM / SIGHUP end the process as an exception would (exit code 128 + the signal), not abruptly; called by
    a run at its start, in the main thread (the only one Python delivers signals to)."""
    if sys.platform != "win32":
        for sig in signals:
            signal.signal(sig, _exit)
