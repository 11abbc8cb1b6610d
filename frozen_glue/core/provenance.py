"""Provenance a run records: sha256 of a file, the project's git commit, the package versions. Must not decide what
a run's identity is (identity.py) or write anything.
"""

import hashlib
import platform
import subprocess
from pathlib import Path

# the project's checkout: run_glue_frozen.py, launch/, ds_configs/, analysis/ and docs/ beside the package
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def sha256_file(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


UNKNOWN = "unknown"  # the git commit of a project outside a checkout


def git_commit():
    """The project's git commit (with '-dirty' when the tree has changes); "unknown" outside a checkout (or without
    git). Read quietly: git's own messages are captured, never printed."""
    here = PROJECT_ROOT
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=5)
        commit = head.stdout.strip()
        if head.returncode != 0 or not commit:
            return UNKNOWN
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "datasets", "deepspeed", "accelerate", "frozen-glue"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
