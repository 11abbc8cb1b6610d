"""One owner at a time of a folder: the lock file every run folder, sweep group and feature-cache task folder is
held by, with its heartbeat and the takeover of abandoned locks. Must not decide what a folder holds (layout.py).
"""

import getpass
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import psutil

from frozen_glue.core.layout import LOCK_FILE

logger = logging.getLogger(__name__)

STALE_AFTER = 900  # seconds without a heartbeat after which a lock held from another host counts as abandoned


class OwnerLock:
    """One owner at a time of a folder (a run folder, a model x task group of a sweep, a feature-cache task
    folder): `path` holds the owner's pid, host, user and start time, created exclusively, its mtime a heartbeat
    refreshed every minute. Another live owner is refused in one line (`wait`: waited for). An abandoned lock (its
    process gone on this host, or no heartbeat for STALE_AFTER from another host) is named and taken over when it
    is this user's; another user's is refused with how to clear it."""

    def __init__(self, path, what: str, wait: bool = False):
        self.path, self.what, self.wait = Path(path), what, wait
        self.held = False

    def __enter__(self):
        from frozen_glue.core.errors import UserError

        # folders made just for the lock are removed again if the run leaves nothing in them (a user error)
        self.made = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "pid_started": psutil.Process().create_time(), "host": socket.gethostname(),
              "user": getpass.getuser(), "uid": os.getuid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        waited = False
        while True:
            try:
                _create(self.path, me)
            except FileExistsError:
                owner = self._owner()
                who = (f"pid {owner.get('pid')} on host {owner.get('host')}, user {owner.get('user', '?')}, started "
                       f"{owner.get('started')}")
                if self._abandoned(owner, me["host"]):
                    if owner.get("uid", me["uid"]) != me["uid"]:
                        raise UserError(f"{self.what}: {self.path} is an abandoned lock of another user's job ({who}; "
                                        f"that process is gone); ask {owner.get('user', 'its owner')} to remove it, or "
                                        f"remove it yourself if no job of theirs uses it: rm {self.path}") from None
                    logger.info(f"stale lock {self.path} ({who}, no longer running): taking it over")
                    self.path.unlink(missing_ok=True)
                    continue
                if not self.wait:
                    raise UserError(f"{self.what} is in use by another run ({who}); wait for it, or if that process "
                                    f"is gone remove {self.path}") from None
                if not waited:
                    logger.info(f"waiting for {self.path} ({who})")
                    waited = True
                time.sleep(2)
                continue
            self.held = True
            self._beating = threading.Event()
            threading.Thread(target=self._heartbeat, daemon=True).start()
            return self

    def _heartbeat(self):
        while not self._beating.wait(60):
            try:
                os.utime(self.path)
            except OSError:
                return

    def _owner(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _abandoned(self, owner, host) -> bool:
        if owner and owner.get("host") == host:
            return not _alive(owner.get("pid"), owner.get("pid_started"))
        try:  # another host's, or a lock not yet written: judged by its heartbeat
            return time.time() - self.path.stat().st_mtime > STALE_AFTER
        except OSError:
            return False

    def __exit__(self, *exc):
        if self.held:
            self._beating.set()
            self.path.unlink(missing_ok=True)
            self.held = False
            for folder in self.made:  # deepest first
                try:
                    folder.rmdir()
                except OSError:
                    break


def RunLock(folder) -> OwnerLock:
    """A run folder's owner (`.lock` in it): a second run of the same folder is refused."""
    return OwnerLock(Path(folder) / LOCK_FILE, str(folder))


def _create(path: Path, content: dict):
    """The lock file, created exclusively and whole: its JSON goes to a temp file first, then a hard link names it,
    which fails if the lock exists. A job killed at any moment leaves either no lock or a readable one (an empty lock
    would be judged only by its heartbeat, 15 minutes)."""
    tmp = path.with_name(f".{path.name}.{content['host']}.{content['pid']}.tmp")
    tmp.write_text(json.dumps(content))
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: exclusive create, then write
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(content, f)
    finally:
        tmp.unlink(missing_ok=True)


def _alive(pid, started=None) -> bool:
    """Whether the lock's owner still runs: its pid exists and, when the lock records when its owner started, that
    process started then. A pid reused by another process after the owner was killed (SIGKILL leaves its lock
    behind, even right after the run completed) is not the owner."""
    try:
        now = psutil.Process(int(pid)).create_time()
    except (TypeError, ValueError, psutil.NoSuchProcess):
        return False
    except psutil.AccessDenied:  # another user's live process
        return True
    return started is None or abs(now - started) < 1.0
