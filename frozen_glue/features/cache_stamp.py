"""Cache-entry integrity without re-reading the entry: an entry is hashed in full when it is written (commit_entry)
and the first time it is read; that read records a stamp beside it (<entry>.stamp: size, mtime_ns, ctime_ns and
inode of the file, and the sha256 they vouch for). A later load whose file still has exactly that stat skips the
hash (--verify_cache stamp, the default); --verify_cache full hashes every time.

Why the stat is enough: rewriting a file in place (same size) sets its mtime and ctime; replacing it (a rename, a
copy) gives another inode and ctime; ctime cannot be set back by a user. One trap, as in git's "racily clean" index
entries: file timestamps have a coarse granularity (a kernel tick), so a rewrite in the same tick as the stamp
would keep the stamped times. A stamp is therefore trusted only when the entry's mtime and ctime are strictly older
than the stamp file's own mtime (the same filesystem clock); otherwise the entry is hashed again and re-stamped.
Must not decide what an entry holds (cache.py does)."""

import json
import os
from pathlib import Path

from frozen_glue.core.layout import atomic_write_json
from frozen_glue.core.provenance import sha256_file

SUFFIX = ".stamp"
MODES = ("stamp", "full")
stats = {"bytes_hashed": 0}   # read by the tests and the bench: a warm load must leave this unchanged


def stamp_path(data_path) -> Path:
    return Path(data_path).with_suffix(SUFFIX)


def _stat(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def hash_file(path) -> str:
    """sha256 of a whole file, counted in stats["bytes_hashed"]."""
    digest = sha256_file(path)
    stats["bytes_hashed"] += os.path.getsize(path)
    return digest


def _stamp_holds(data_path, sha256) -> bool:
    try:
        with open(stamp_path(data_path)) as f:
            written = os.fstat(f.fileno()).st_mtime_ns  # the stamp file read is the one whose time this is
            recorded = json.load(f)
        now = _stat(data_path)
    except (OSError, ValueError):
        return False
    # racily clean (changed in the tick the stamp was taken): not trusted, hashed again
    return recorded == {**now, "sha256": sha256} and max(now["mtime_ns"], now["ctime_ns"]) < written


def verified(data_path, sha256, verify="stamp") -> bool:
    """Whether the file holds the bytes whose sha256 was recorded when it was written: by its stamp, or by hashing it
    (then stamping it, when nothing changed it while it was hashed)."""
    if verify == "stamp" and _stamp_holds(data_path, sha256):
        return True
    before = _stat(data_path)
    if hash_file(data_path) != sha256:
        return False
    if _stat(data_path) == before:
        atomic_write_json(stamp_path(data_path), {**before, "sha256": sha256})
    return True
