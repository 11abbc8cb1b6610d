"""Feature cache: with the base frozen and in eval mode, the head's input for an example never changes, so the
base runs forward once per split and every seed / epoch / head setting trains from the stored features.
Must not decide what goes into the key (cache_key.py's cache_parts does) or train anything.

Where entries live and how one is read without torch: cache_layout.py (the key, the paths, model.json), so that
the report reads features without loading torch. One entry per layer (--probe_layers; the top layer's entry is the
plain run's). Entries are written and read memory-mapped: extraction never holds a split's features in RAM,
and training reads the rows it uses. An entry is used only when its JSON parses, names
the same key, and the safetensors file has the recorded size and sha256 (checked by hashing it, or by its stamp once
it has been hashed on a read: cache_stamp.py); anything else is rebuilt. Writers go
through temp files and renames, so two processes filling the same entry cannot leave a torn file; and a job
extracting a model's task holds <model_fingerprint>/<task>/.lock, so a second job waits and then reads.
"""

import contextlib
import itertools
import json
import logging
import os
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from frozen_glue.core.layout import LOCK_FILE, atomic_write_json
from frozen_glue.core.locks import OwnerLock
from frozen_glue.features import cache_layout, cache_stamp
from frozen_glue.features.cache_layout import entry_paths, feature_key, remember
from frozen_glue.model import sharding
from frozen_glue.model.pooling import pool_layers

logger = logging.getLogger(__name__)

stats = {"base_forward_batches": 0}   # read by the tests: a cache hit must leave this at 0


def _temp_name(path):
    """A temp file beside `path` that no other process (even on another host of a shared filesystem) picks."""
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{time.time_ns()}.tmp")


DTYPE_CODE = {torch.float32: "F32", torch.float16: "F16"}


def read_features(path) -> torch.Tensor:
    """The stored features, memory-mapped (rows are read from disk when used; bfloat16 is read whole)."""
    array = cache_layout.read_array(path)
    if array is None:
        return load_file(path)["features"]
    with warnings.catch_warnings():  # read-only on purpose: nothing writes into a cache entry
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


class EntryWriter:
    """A safetensors file ({"features": rows x hidden}) filled in place through a memory map, so a split's features
    never sit in RAM whole; it becomes the entry by a rename once complete."""

    def __init__(self, data_path, rows, hidden, dtype):
        self.data_path, self.rows, self.hidden, self.dtype = Path(data_path), rows, hidden, dtype
        self.data_path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _temp_name(self.data_path)
        nbytes = rows * hidden * torch.tensor([], dtype=dtype).element_size()
        header = json.dumps({"features": {"dtype": DTYPE_CODE[dtype], "shape": [rows, hidden],
                                          "data_offsets": [0, nbytes]}}).encode()
        header += b" " * (-len(header) % 8)  # the format aligns the data to 8 bytes
        with open(self.tmp, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
            f.truncate(8 + len(header) + nbytes)
        self.array = np.memmap(self.tmp, dtype=cache_layout.NUMPY_DTYPES[DTYPE_CODE[dtype]], mode="r+", offset=8 + len(header),
                               shape=(rows, hidden))

    def write(self, index, values: torch.Tensor):
        self.array[index] = values.to(self.dtype).numpy()

    def close(self) -> Path:
        self.array.flush()
        del self.array
        return self.tmp

    def discard(self):
        self.tmp.unlink(missing_ok=True)


def load_entry(cache_dir, model_fp, task, split, key, dtype=None, shape=None, verify="stamp"):
    """The cached features, or None (with the reason logged) when the entry is absent, stale or corrupt, or not of
    the requested `dtype` / `shape` (rows x hidden) when given: a key that missed a part must not serve them.
    `verify`: --verify_cache (stamp: a stamped, unchanged file is not hashed again; full: always hashed)."""
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
        elif not cache_stamp.verified(data_path, meta["sha256"], verify):
            problem = "the checksum differs"
        if problem is None:
            features = read_features(data_path)
            want = tuple(shape or (meta["rows"], meta["hidden"])), dtype or features.dtype
            if (tuple(features.shape), features.dtype) == want and want[0] == (meta["rows"], meta["hidden"]):
                return features
            problem = f"it holds {tuple(features.shape)} {features.dtype}, not {want[0]} {want[1]}"
    except (OSError, ValueError, KeyError) as e:
        problem = f"it cannot be read ({e})"
    logger.warning("feature cache: %s is unusable (%s); rebuilding it", data_path, problem)
    return None


def save_entry(cache_dir, model_fp, task, split, key, features: torch.Tensor, parts: dict):
    """Store features held in memory (tests; extraction streams through EntryWriter and commit_entry)."""
    data_path, _ = entry_paths(cache_dir, model_fp, task, split, key)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(data_path)
    save_file({"features": features.contiguous()}, str(tmp))
    return commit_entry(cache_dir, model_fp, task, split, key, tmp, tuple(features.shape), features.dtype, parts)


def commit_entry(cache_dir, model_fp, task, split, key, tmp, shape, dtype, parts, layer=None):
    """A complete temp file becomes the entry (rename), then its JSON: a reader trusts only a matching pair."""
    data_path, meta_path = entry_paths(cache_dir, model_fp, task, split, key)
    try:
        meta = {"key": key, "parts": parts, "layer": layer, "rows": shape[0], "hidden": shape[1], "dtype": str(dtype),
                "bytes": tmp.stat().st_size, "sha256": cache_stamp.hash_file(tmp),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp.replace(data_path)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_json(meta_path, meta)
    logger.info("feature cache: wrote %s (%d x %d %s, %.1f MB)", data_path, meta["rows"], meta["hidden"],
                meta["dtype"], meta["bytes"] / 1e6)
    return meta["bytes"]


def batches(lengths, batch_size, tokens_per_batch=None):
    """Row indices in length-sorted batches (least padding): `batch_size` rows each, or, with a token budget, as many
    rows as fit in `tokens_per_batch` padded tokens (short GLUE sentences make big batches, long pairs small ones)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if not tokens_per_batch:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    out, current = [], []
    for i in order:  # ascending: the newest row is the longest, so the padded size is len(batch) x its length
        if current and (len(current) + 1) * lengths[i] > tokens_per_batch:
            out.append(current)
            current = []
        current.append(i)
    return out + [current] if current else out


@torch.no_grad()
def extract(model, dataset, collator, rule, plan, device, writers, top, autocast_dtype=None, desc="features",
            packed=False):
    """One no-grad forward of the frozen base over the `plan` batches (row indices of `dataset`, tokenized and
    unpadded), each requested layer pooled as the head would read it and written into `writers` ({layer:
    EntryWriter}): at the rows' own indices, or, `packed`, one after another (a rank's share). Only one batch of
    hidden states is held at a time."""
    base = model.base_model
    base.eval()
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    below_top = any(layer != top for layer in writers)
    offset = 0
    for index in tqdm(plan, desc=desc, unit="batch", mininterval=2):
        batch = {k: v.to(device) for k, v in collator([rows[i] for i in index]).items()}
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            output = base(**batch, output_hidden_states=below_top)
            pooled = pool_layers(output, batch["input_ids"], rule, model.config.pad_token_id, list(writers), top,
                                 batch.get("attention_mask"))
        stats["base_forward_batches"] += 1
        where = slice(offset, offset + len(index)) if packed else index
        for layer, values in pooled.items():
            writers[layer].write(where, values.float().cpu())
        offset += len(index)


def part_path(data_path, layer, rank, size) -> Path:
    """Where rank `rank` of `size` leaves its share of one layer's entry (a hidden name: never read as an entry)."""
    return data_path.with_name(f".{data_path.stem}.layer{layer}.rank{rank}of{size}.part")


def extract_share(model, dataset, collator, share, hidden, dtype, at, **extract_kwargs):
    """One rank's share of the batches, packed one after another into its part file of each layer (`at`: {layer:
    path}), renamed into place only once complete."""
    writers = {layer: EntryWriter(path, sum(map(len, share)), hidden, dtype) for layer, path in at.items()}
    try:
        extract(model, dataset, collator, plan=share, writers=writers, packed=True, **extract_kwargs)
        for layer, writer in writers.items():
            writer.close().replace(at[layer])
    finally:
        for writer in writers.values():
            writer.discard()


def assemble(writer, plan, size, part_of):
    """Rank 0: the ranks' packed shares (`part_of(rank)`) written back into `writer` at their rows' indices."""
    for rank in range(size):
        rows = [i for index in plan[rank::size] for i in index]
        part = read_features(part_of(rank))
        for start in range(0, len(rows), 8192):  # bounded memory on MNLI-sized splits
            writer.write(rows[start:start + 8192], part[start:start + 8192])


def cached_features(cache_dir, model, model_fp, task, split, dataset, collator, parts, layers, top, shard=(0, 1),
                    **kwargs):
    """{layer: features} of one split (`_cached_features`), under the lock of the model's task folder in the cache:
    a second job that needs the same features waits for the first and then reads them, instead of running the same
    forward pass beside it (rank 0 takes it for all ranks)."""
    lock = Path(cache_dir) / model_fp[:32] / task / LOCK_FILE
    with OwnerLock(lock, f"feature cache {cache_dir}", wait=True) if shard[0] == 0 else contextlib.nullcontext():
        return _cached_features(cache_dir, model, model_fp, task, split, dataset, collator, parts, layers, top,
                                shard=shard, **kwargs)


def _cached_features(cache_dir, model, model_fp, task, split, dataset, collator, parts, layers, top, rebuild=False,
                     store_dtype=torch.float32, describe=None, batch_size=64, tokens_per_batch=None, shard=(0, 1),
                     verify="stamp", **extract_kwargs):
    """{layer: features} for one split: from the cache where a valid entry exists (unless `rebuild`:
    --overwrite_cache), the missing layers extracted together in one forward pass and stored under their keys
    (atomically, replacing old entries). The top layer's key is the plain run's (no layer in it).

    `shard` = (rank, ranks) under a multi-process launcher: rank 0 decides what is missing, every rank runs its
    share of the batches (round-robin over the same length-sorted plan, so each batch is the one a single process
    would run: the same features, bit for bit) into a part file, and rank 0 assembles and commits the entries after
    a barrier; the other ranks return None. A rank that dies leaves part files only, never an entry."""
    rank, size = shard
    keys = {layer: feature_key(**parts) if layer == top else feature_key(**parts, layer=layer) for layer in layers}
    want = {"dtype": store_dtype, "shape": (len(dataset), model.config.hidden_size)}
    found = {layer: None if rebuild or rank else load_entry(cache_dir, model_fp, task, split, key, **want,
                                                            verify=verify)
             for layer, key in keys.items()}
    if describe and rank == 0:  # which model a fingerprint is, for readers starting from a model's name (drift.py)
        remember(cache_dir, model_fp, describe, top)
    missing = sharding.from_rank0([layer for layer, features in found.items() if features is None])
    if not missing:
        logger.info("feature cache: hit for %s/%s (%d rows), no base forward", task, split, len(dataset))
        return found if rank == 0 else None
    started = time.time()
    plan = batches([len(ids) for ids in dataset["input_ids"]], batch_size, tokens_per_batch)
    data_paths = {layer: entry_paths(cache_dir, model_fp, task, split, keys[layer])[0] for layer in missing}
    hidden, desc = model.config.hidden_size, f"{task}/{split}"
    if size > 1:  # every rank's share into its part files; rank 0 assembles the entries from all of them below
        extract_share(model, dataset, collator, plan[rank::size], hidden, store_dtype, top=top,
                      at={layer: part_path(path, layer, rank, size) for layer, path in data_paths.items()},
                      desc=f"{desc} rank {rank}/{size}", **extract_kwargs)
        sharding.barrier()
        if rank != 0:
            return None
    writers = {layer: EntryWriter(path, len(dataset), hidden, store_dtype) for layer, path in data_paths.items()}
    try:
        if size == 1:
            extract(model, dataset, collator, plan=plan, writers=writers, top=top, desc=desc, **extract_kwargs)
        size_on_disk = 0
        for layer, writer in writers.items():
            if size > 1:
                assemble(writer, plan, size, lambda r, layer=layer: part_path(data_paths[layer], layer, r, size))
            part = parts if layer == top else {**parts, "layer": layer}
            size_on_disk += commit_entry(cache_dir, model_fp, task, split, keys[layer], writer.close(),
                                         (len(dataset), hidden), store_dtype, part, layer)
            # just written and hashed: read it mapped, without hashing it again as load_entry would
            found[layer] = read_features(data_paths[layer])
    finally:
        for writer in writers.values():
            writer.discard()
        if size > 1:  # assembled, or failed: a rerun extracts anew
            for (layer, path), r in itertools.product(data_paths.items(), range(size)):
                part_path(path, layer, r, size).unlink(missing_ok=True)
    logger.info(f"feature cache: {task}/{split} extracted in {time.time() - started:.1f}s"
                f"{f' ({len(missing)} layers)' if len(missing) > 1 else ''}"
                f"{f' over {size} ranks' if size > 1 else ''}, {size_on_disk / 1e6:.1f} MB on disk")
    return found


