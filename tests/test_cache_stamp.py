"""Cache integrity without re-reading: an entry is hashed when written and on its first read, then trusted by its
stamp (size, mtime, ctime, inode) until the file changes; --verify_cache full hashes every load."""

import json
import os
import time

import torch

from frozen_glue.features import cache as feature_cache
from frozen_glue.features import cache_layout, cache_stamp

from conftest import TRAIN, run

FP, KEY = "fp" * 20, "k" * 64


def hashed(action):
    """(what `action()` returned, bytes it hashed)."""
    before = cache_stamp.stats["bytes_hashed"]
    out = action()
    return out, cache_stamp.stats["bytes_hashed"] - before


def tick():
    time.sleep(0.05)  # past the filesystem clock's granularity (a kernel tick), as any real rerun is


def load(cache, verify="stamp"):
    return feature_cache.load_entry(cache, FP, "cola", "train", KEY, verify=verify)


def test_first_read_hashes_then_the_stamp_skips_the_hash_until_the_file_changes(tmp_path):
    features = torch.randn(100, 8)
    feature_cache.save_entry(tmp_path, FP, "cola", "train", KEY, features, {})
    data_path, _ = cache_layout.entry_paths(tmp_path, FP, "cola", "train", KEY)
    size = data_path.stat().st_size
    tick()
    got, n = hashed(lambda: load(tmp_path))
    assert torch.equal(got, features) and n == size  # first read: hashed in full, then stamped
    stamp = json.loads(cache_stamp.stamp_path(data_path).read_text())
    assert stamp["size"] == size and stamp["inode"] == data_path.stat().st_ino
    tick()
    got, n = hashed(lambda: load(tmp_path))
    assert torch.equal(got, features) and n == 0      # warm: not a byte hashed
    assert hashed(lambda: load(tmp_path, "full"))[1] == size  # --verify_cache full: hashed anyway
    tick()
    raw = bytearray(data_path.read_bytes())            # an in-place rewrite of the same size: new mtime, ctime
    raw[-1] ^= 0xFF
    data_path.write_bytes(bytes(raw))
    got, n = hashed(lambda: load(tmp_path))
    assert got is None and n == size


def test_a_stamp_taken_in_the_tick_of_the_last_change_is_not_trusted(tmp_path):
    """The racily-clean case: a rewrite in the same clock tick as the stamp keeps the stamped times, so a stamp is
    trusted only when the file's times are strictly older than the stamp file's own."""
    feature_cache.save_entry(tmp_path, FP, "cola", "train", KEY, torch.randn(10, 4), {})
    data_path, _ = cache_layout.entry_paths(tmp_path, FP, "cola", "train", KEY)
    tick()
    load(tmp_path)
    stamp = cache_stamp.stamp_path(data_path)
    changed = data_path.stat().st_ctime_ns
    os.utime(stamp, ns=(changed, changed))  # the stamp written in the tick of the file's last change
    assert hashed(lambda: load(tmp_path))[1] == data_path.stat().st_size


def test_a_stamp_vouches_only_for_the_checksum_it_was_taken_with(tmp_path):
    feature_cache.save_entry(tmp_path, FP, "cola", "train", KEY, torch.randn(10, 4), {})
    data_path, meta_path = cache_layout.entry_paths(tmp_path, FP, "cola", "train", KEY)
    tick()
    load(tmp_path)
    tick()
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "sha256": "0" * 64}))  # another entry's record, same file
    assert load(tmp_path) is None


def test_a_warm_rerun_hashes_nothing_and_verify_full_hashes_every_entry(script, assets, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["--model_name_or_path", assets["base"], "--task_name", "cola", "--glue_dir", assets["glue_dir"], *TRAIN,
            "--seeds", "1", "--feature_cache", cache, "--overwrite_output_dir"]
    sizes = lambda: sum(p.stat().st_size for p in cache.rglob("*.safetensors"))  # noqa: E731
    for i, expected in enumerate(("write", "first read", "warm", "full")):
        extra = ["--verify_cache", "full"] if expected == "full" else []
        (code, out, err), n = hashed(lambda: run(script, capsys, *args, "--output_dir", tmp_path / "r", *extra))
        assert code == 0, err
        assert n == {"write": sizes(), "first read": sizes(), "warm": 0, "full": sizes()}[expected], expected
        tick()
    code, _, err = run(script, capsys, *args, "--output_dir", tmp_path / "r", "--verify_cache", "sometimes")
    assert code == 2 and err.strip() == "error: --verify_cache sometimes: use stamp or full"
