"""Feature cache: with the base frozen and in eval mode, the head's input for an example never changes, so the
base runs forward once per split and every seed / epoch / head setting trains from the stored features.
Must not decide what goes into the key (run.py's cache_parts does) or train anything.

Layout: <cache_dir>/<model_fingerprint>/<task>/<split>-<key16>.safetensors plus <same>.json. The key covers
everything that changes the features (see `feature_key`). An entry is used only when its JSON parses, names
the same key, and the safetensors file has the recorded size and sha256; anything else is rebuilt. Writers go
through temp files and renames, so two processes filling the same entry cannot leave a torn file.
"""

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .layout import atomic_write_json, sha256_file
from .pooling import pool

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
stats = {"base_forward_batches": 0}   # read by the tests: a cache hit must leave this at 0


def feature_key(**parts) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True).encode()).hexdigest()


def entry_paths(cache_dir, model_fp, task, split, key):
    stem = Path(cache_dir) / model_fp[:32] / task / f"{split}-{key[:16]}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def load_entry(cache_dir, model_fp, task, split, key):
    """The cached features, or None (with the reason logged) when the entry is absent, stale or corrupt."""
    data_path, meta_path = entry_paths(cache_dir, model_fp, task, split, key)
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        problem = None
        if meta.get("key") != key:
            problem = "its key differs"
        elif not data_path.exists() or data_path.stat().st_size != meta["bytes"]:
            problem = "the file is missing or truncated"
        elif sha256_file(data_path) != meta["sha256"]:
            problem = "the checksum differs"
        if problem is None:
            features = load_file(data_path)["features"]
            if tuple(features.shape) == (meta["rows"], meta["hidden"]):
                return features
            problem = "its shape differs"
    except (OSError, ValueError, KeyError) as e:
        problem = f"it cannot be read ({e})"
    logger.warning("feature cache: %s is unusable (%s); rebuilding it", data_path, problem)
    return None


def save_entry(cache_dir, model_fp, task, split, key, features: torch.Tensor, parts: dict):
    data_path, meta_path = entry_paths(cache_dir, model_fp, task, split, key)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = data_path.with_name(f".{data_path.name}.{time.time_ns()}.tmp")
    try:
        save_file({"features": features.contiguous()}, str(tmp))
        meta = {"key": key, "parts": parts, "rows": features.shape[0], "hidden": features.shape[1],
                "dtype": str(features.dtype), "bytes": tmp.stat().st_size, "sha256": sha256_file(tmp),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp.replace(data_path)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_json(meta_path, meta)
    logger.info("feature cache: wrote %s (%d x %d %s, %.1f MB)", data_path, meta["rows"], meta["hidden"],
                meta["dtype"], meta["bytes"] / 1e6)
    return meta["bytes"]


@torch.no_grad()
def extract(model, dataset, collator, rule, batch_size, device, autocast_dtype=None, store_dtype=torch.float32,
            desc="features"):
    """One no-grad forward of the frozen base over `dataset` (tokenized, unpadded), in length-sorted batches
    (least padding), pooled as the head would, written back in dataset order. Only the pooled features of
    the split (rows x hidden) are held, never the per-token hidden states beyond one batch."""
    base = model.base_model
    base.eval()
    lengths = [len(ids) for ids in dataset["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    hidden = model.config.hidden_size
    out = torch.empty(len(order), hidden, dtype=store_dtype)
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", mininterval=2):
        index = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collator([rows[i] for i in index]).items()}
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            output = base(**batch)
            pooled = pool(output, batch["input_ids"], batch["attention_mask"], rule, model.config.pad_token_id)
        stats["base_forward_batches"] += 1
        out[torch.tensor(index)] = pooled.float().cpu().to(store_dtype)
    return out


def cached_features(cache_dir, model, model_fp, task, split, dataset, collator, parts, rebuild=False,
                    **extract_kwargs):
    """Features for one split: from the cache when a valid entry exists (unless `rebuild`: --overwrite_cache),
    else extracted and stored under the same key (atomically, replacing the old entry)."""
    key = feature_key(**parts)
    features = None if rebuild else load_entry(cache_dir, model_fp, task, split, key)
    if features is not None:
        logger.info("feature cache: hit for %s/%s (%d rows), no base forward", task, split, features.shape[0])
        return features
    started = time.time()
    features = extract(model, dataset, collator, desc=f"{task}/{split}", **extract_kwargs)
    size = save_entry(cache_dir, model_fp, task, split, key, features, parts)
    logger.info(f"feature cache: {task}/{split} extracted in {time.time() - started:.1f}s, {size / 1e6:.1f} MB on "
                f"disk")
    return features
