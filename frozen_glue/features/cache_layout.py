"""The feature cache on disk, without torch: <cache_dir>/<model_fingerprint[:32]>/<task>/<split>-<key16>.safetensors
plus <same>.json, and model.json in each fingerprint folder (the names that reached these weights). The key
(feature_key) covers everything that changes the features; cache_key.py's cache_parts says what that is. An entry is
read here as a numpy memory map (read_array), which is how the report (drift.py) reads features. Must not import
torch or write entries (cache.py extracts and commits them)."""

import hashlib
import json
from pathlib import Path

import numpy as np

from frozen_glue.core.layout import atomic_write_json

CACHE_FORMAT_VERSION = 1  # of a cache entry: part of every key, so a new format never reads an old entry
MODEL_FILE = "model.json"  # in each fingerprint folder: the model's name, tokenizer, --random_init, top layer
NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16}  # safetensors dtype codes an entry may hold, memory-mapped


def feature_key(**parts) -> str:
    return hashlib.sha256(json.dumps({"format": CACHE_FORMAT_VERSION, **parts}, sort_keys=True).encode()).hexdigest()


def entry_paths(cache_dir, model_fp, task, split, key):
    stem = Path(cache_dir) / model_fp[:32] / task / f"{split}-{key[:16]}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def read_array(path) -> np.ndarray | None:
    """An entry's features as a read-only numpy memory map (rows are read from disk when used); None when its dtype
    has no numpy twin (bfloat16: cache.read_features loads it whole)."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        info = json.loads(f.read(size))["features"]
    if info["dtype"] not in NUMPY_DTYPES:
        return None
    start, _ = info["data_offsets"]
    return np.memmap(path, dtype=NUMPY_DTYPES[info["dtype"]], mode="r", offset=8 + size + start,
                     shape=tuple(info["shape"]))


def remember(cache_dir, model_fp, describe: dict, top: int):
    """model.json of a fingerprint folder: `names`, every (model_name_or_path, tokenizer_name, random_init) that
    reached these weights, so a reader starting from any of them (drift.py) finds the features; a `cp -r` copy
    under a second path has the same fingerprint and shares the entries."""
    path = Path(cache_dir) / model_fp[:32] / MODEL_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    names = known.get("names") or ([{k: known[k] for k in describe if k in known}] if known else [])
    if describe not in names:
        atomic_write_json(path, {"fingerprint": model_fp, "top_layer": top, "names": [*names, describe]})


def models_in(cache_dir) -> list:
    """One record per name of every fingerprint folder of a cache (model.json's `names`; a file written before
    names were kept is its one name): the name's fields, `fingerprint`, `top_layer` and `folder`."""
    out = []
    for path in sorted(Path(cache_dir).glob(f"*/{MODEL_FILE}")):
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for name in known.get("names") or [known]:
            out.append({**name, "fingerprint": known.get("fingerprint"), "top_layer": known.get("top_layer"),
                        "folder": path.parent})
    return out


def layer_entries(model_folder, task, split) -> list:
    """[(meta, data path)] of every valid-looking entry of one model's task/split (any layer, any key)."""
    out = []
    for meta_path in sorted((Path(model_folder) / task).glob(f"{split}-*.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        data_path = meta_path.with_suffix(".safetensors")
        if data_path.exists() and data_path.stat().st_size == meta.get("bytes"):
            out.append((meta, data_path))
    return out
