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

from .layout import LOCK_FILE

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
        from .errors import UserError

        # folders made just for the lock are removed again if the run leaves nothing in them (a user error)
        self.made = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "user": getpass.getuser(), "uid": os.getuid(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        waited = False
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
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
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
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
            return not _alive(owner.get("pid"))
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


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
