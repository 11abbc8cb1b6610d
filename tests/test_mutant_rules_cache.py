"""Rules of the feature cache's key and layout, stated with answers written out here (mutation testing,
docs/mutants.md): what the key hashes, under which names (a renamed part would orphan every entry users have), where
an entry lives, and how entries and model folders are read back."""

import hashlib
import json
import logging
import os
import time
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2Model

from frozen_glue.features import cache as feature_cache
from frozen_glue.features import cache_layout
from frozen_glue.features.cache_key import base_dtype_part, cache_parts


def prep(base_dtype="float32"):
    raw = datasets.Dataset.from_dict({"idx": [4, 7], "sentence": ["a b", "c"]})
    return SimpleNamespace(
        model_fp="m" * 64, tokenizer_fp="t" * 64, precision="bf16", pooling_rule={"rule": "last"},
        data_args=SimpleNamespace(max_seq_length=32, pad_to_max_length=False),
        model_args=SimpleNamespace(append_eos=True, base_dtype=base_dtype), config=SimpleNamespace(pad_token_id=3),
        study_args=SimpleNamespace(feature_dtype="float16"), raw={"train": raw},
        task=SimpleNamespace(text_keys=("sentence",)))


def test_the_key_parts_by_name():
    rows = hashlib.sha256(json.dumps([[4, 7], ["a b", "c"]]).encode()).hexdigest()  # data.rows_digest
    expected = {"model_fp": "m" * 64, "tokenizer": "t" * 64, "max_seq_length": 32, "pad_to_max_length": False,
                "append_eos": True, "pooling": {"rule": "last"}, "pad_token_id": 3, "precision": "bf16",
                "dtype": "float16", "data": rows}
    assert cache_parts(prep(), "train") == expected
    assert cache_parts(prep("bfloat16"), "train") == {**expected, "base_dtype": "bfloat16"}
    assert base_dtype_part(prep()) == {} and base_dtype_part(prep("float16")) == {"base_dtype": "float16"}


def test_the_key_is_sha256_of_the_sorted_parts_and_the_format_version():
    parts = {"b": 1, "a": [2, "x"]}
    by_hand = hashlib.sha256(b'{"a": [2, "x"], "b": 1, "format": 1}').hexdigest()
    assert cache_layout.feature_key(**parts) == by_hand


def test_where_an_entry_lives(tmp_path):
    data, meta = cache_layout.entry_paths(tmp_path, "f" * 40, "cola", "train", "0123456789abcdef" * 4)
    stem = tmp_path / ("f" * 32) / "cola" / "train-0123456789abcdef"
    assert (data, meta) == (stem.with_suffix(".safetensors"), stem.with_suffix(".json"))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_an_entry_reads_back_as_a_memory_map_of_its_rows(tmp_path, dtype):
    from safetensors.numpy import save_file

    features = np.arange(12, dtype=dtype).reshape(3, 4)
    save_file({"a_first": np.zeros(5, dtype=np.float32), "features": features}, str(tmp_path / "e.safetensors"))
    read = cache_layout.read_array(tmp_path / "e.safetensors")  # after another tensor: its own offset counts
    assert isinstance(read, np.memmap) and read.dtype == dtype and read.shape == (3, 4)
    assert not read.flags.writeable  # nothing writes into a cache entry
    np.testing.assert_array_equal(read, features)


def test_a_bfloat16_entry_has_no_numpy_view(tmp_path):
    from safetensors.torch import save_file

    save_file({"features": torch.ones(2, 2, dtype=torch.bfloat16)}, str(tmp_path / "e.safetensors"))
    assert cache_layout.read_array(tmp_path / "e.safetensors") is None


def test_a_model_folder_remembers_every_name_that_reached_it(tmp_path):
    first, second = {"model_name_or_path": "a"}, {"model_name_or_path": "b"}
    cache_layout.remember(tmp_path, "f" * 40, first, top=6)
    cache_layout.remember(tmp_path, "f" * 40, first, top=6)  # the same name again: not listed twice
    cache_layout.remember(tmp_path, "f" * 40, second, top=6)
    saved = json.loads((tmp_path / ("f" * 32) / "model.json").read_text())
    assert saved == {"fingerprint": "f" * 40, "top_layer": 6, "names": [first, second]}
    # a model.json written before names were kept: its own fields are its one name
    old = tmp_path / ("o" * 32) / "model.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"fingerprint": "o" * 40, "top_layer": 2, "model_name_or_path": "c"}))
    cache_layout.remember(tmp_path, "o" * 40, {"model_name_or_path": "d"}, top=2)
    assert json.loads(old.read_text())["names"] == [{"model_name_or_path": "c"}, {"model_name_or_path": "d"}]
    (tmp_path / ("0" * 32)).mkdir()
    (tmp_path / ("0" * 32) / "model.json").write_text("{torn")  # unreadable (and first): skipped, not the end
    records = cache_layout.models_in(tmp_path)
    assert [(r["model_name_or_path"], r["fingerprint"], r["top_layer"], r["folder"].name) for r in records] == [
        ("a", "f" * 40, 6, "f" * 32), ("b", "f" * 40, 6, "f" * 32), ("c", "o" * 40, 2, "o" * 32),
        ("d", "o" * 40, 2, "o" * 32)]
    # a torn model.json is written anew by the next run that reaches it
    cache_layout.remember(tmp_path, "0" * 40, second, top=1)
    assert json.loads((tmp_path / ("0" * 32) / "model.json").read_text())["names"] == [second]


def test_layer_entries_are_the_complete_ones_in_name_order(tmp_path):
    folder = tmp_path / "cola"
    folder.mkdir()
    for name, size, written in (("train-b", 5, 5), ("train-a", 3, 3), ("train-c", 4, 9), ("validation-a", 2, 2)):
        (folder / f"{name}.safetensors").write_bytes(b"x" * written)
        (folder / f"{name}.json").write_text(json.dumps({"bytes": size, "name": name}))
    (folder / "train-0.json").write_text(json.dumps({"bytes": 1}))  # no data file (and first: skipped, not the end)
    (folder / "train-1.json").write_text("{torn")
    (folder / "train-1.safetensors").write_bytes(b"x")
    found = cache_layout.layer_entries(tmp_path, "cola", "train")
    assert [(meta["name"], path.name) for meta, path in found] == [("train-a", "train-a.safetensors"),
                                                                  ("train-b", "train-b.safetensors")]


# ------------------------------------------------------------------------------------------------- cache.py

def test_batches_are_length_sorted_and_fill_a_token_budget():
    lengths = [5, 1, 3, 2, 4]
    assert feature_cache.batches(lengths, 2) == [[1, 3], [2, 4], [0]]
    # budget 9: 1, 2, 3 tokens make 3 rows x 3 = 9; the 4-token row would make 4 x 4 = 16; then 2 x 5 = 10 > 9
    assert feature_cache.batches(lengths, 2, tokens_per_batch=9) == [[1, 3, 2], [4], [0]]
    assert feature_cache.batches([7], 2, tokens_per_batch=3) == [[0]]  # a row longer than the budget: alone
    assert feature_cache.batches([], 2, tokens_per_batch=3) == []


def test_names_beside_an_entry(tmp_path):
    data = tmp_path / "train-abc.safetensors"
    assert feature_cache.part_path(data, 3, 1, 4) == tmp_path / ".train-abc.layer3.rank1of4.part"
    temp = feature_cache._temp_name(data)
    assert temp.parent == tmp_path and temp.name.startswith(".train-abc.safetensors.") and temp.suffix == ".tmp"
    assert f".{os.getpid()}." in temp.name and temp != feature_cache._temp_name(data)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_an_entry_written_in_place_is_a_safetensors_file(tmp_path, dtype):
    from safetensors.torch import load_file

    writer = feature_cache.EntryWriter(tmp_path / "sub" / "e.safetensors", 3, 2, dtype)
    writer.write([2, 0], torch.tensor([[5.0, 6.0], [1.0, 2.0]]))
    writer.write(slice(1, 2), torch.tensor([[3.0, 4.0]]))
    written = writer.close()
    header = int.from_bytes(written.read_bytes()[:8], "little")
    assert header % 8 == 0 and written.stat().st_size == 8 + header + 6 * (4 if dtype == torch.float32 else 2)
    features = load_file(written)["features"]
    assert features.dtype == dtype and features.tolist() == [[1, 2], [3, 4], [5, 6]]
    writer.discard()
    assert not written.exists()


def entry(tmp_path, features=None, key="k" * 64):
    features = torch.arange(6, dtype=torch.float32).reshape(2, 3) if features is None else features
    feature_cache.save_entry(tmp_path, "f" * 64, "cola", "train", key, features, {"a": 1})
    return cache_layout.entry_paths(tmp_path, "f" * 64, "cola", "train", key)


def test_an_entry_records_its_key_parts_shape_size_and_checksum(tmp_path):
    data, meta_path = entry(tmp_path)
    meta = json.loads(meta_path.read_text())
    assert {k: meta[k] for k in ("key", "parts", "layer", "rows", "hidden", "dtype", "bytes", "sha256")} == {
        "key": "k" * 64, "parts": {"a": 1}, "layer": None, "rows": 2, "hidden": 3, "dtype": "torch.float32",
        "bytes": data.stat().st_size, "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    assert time.strptime(meta["created"], "%Y-%m-%dT%H:%M:%S%z")
    assert not list(tmp_path.rglob("*.tmp"))
    loaded = feature_cache.load_entry(tmp_path, "f" * 64, "cola", "train", "k" * 64, torch.float32, (2, 3))
    assert loaded.tolist() == [[0, 1, 2], [3, 4, 5]]


def unusable(tmp_path, caplog, *args, **kwargs):
    caplog.clear()
    assert feature_cache.load_entry(tmp_path, "f" * 64, "cola", "train", "k" * 64, *args, **kwargs) is None
    (record,) = caplog.records
    return record.getMessage().split(" is unusable (")[1].removesuffix("); rebuilding it")


def test_an_entry_is_used_only_when_key_size_checksum_dtype_and_shape_match(tmp_path, caplog):
    data, meta_path = entry(tmp_path)
    assert feature_cache.load_entry(tmp_path, "f" * 64, "cola", "train", "x" * 64) is None  # absent: nothing said
    assert unusable(tmp_path, caplog, torch.float16) == "it holds (2, 3) torch.float32, not (2, 3) torch.float16"
    assert unusable(tmp_path, caplog, None, (3, 2)) == "it holds (2, 3) torch.float32, not (3, 2) torch.float32"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "rows": 3}))  # the file holds 2 rows, its JSON says 3
    assert unusable(tmp_path, caplog).startswith("it holds (2, 3) torch.float32, not (3, 3)")
    meta_path.write_text(json.dumps({**meta, "key": "y" * 64}))
    assert unusable(tmp_path, caplog) == "its key differs"
    meta_path.write_text(json.dumps({**meta, "sha256": "0" * 64}))
    assert unusable(tmp_path, caplog, verify="full") == "the checksum differs"
    meta_path.write_text(json.dumps({**meta, "bytes": meta["bytes"] + 1}))
    assert unusable(tmp_path, caplog) == "the file is missing or truncated"
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "bytes"}))
    assert unusable(tmp_path, caplog) == "it cannot be read ('bytes')"
    meta_path.write_text(json.dumps(meta))
    data.unlink()
    assert unusable(tmp_path, caplog) == "the file is missing or truncated"


def tiny_base():
    torch.manual_seed(0)
    return GPT2Model(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=30, n_positions=16, pad_token_id=0))


def collate(rows):
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def test_features_of_one_process_and_of_two_ranks_are_the_rows_pooled_as_the_head_reads_them(tmp_path):
    model = tiny_base().eval()
    ids = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [14, 15], [16, 17, 18, 19]]
    dataset = datasets.Dataset.from_dict({"input_ids": ids, "label": [0, 1, 0, 1, 0]})
    with torch.no_grad():
        by_hand = {layer: torch.stack([model(torch.tensor([r]), output_hidden_states=True).hidden_states[layer][0, -1]
                                       for r in ids]) for layer in (1, 2)}  # each row alone: its last token
    common = dict(model=model, model_fp="f" * 64, task="cola", split="train", dataset=dataset, collator=collate,
                  parts={"p": 1}, layers=[1, 2], top=2, rule="last_non_pad", device=torch.device("cpu"),
                  batch_size=2)
    one = feature_cache.cached_features(tmp_path / "one", **common)
    for layer in (1, 2):
        torch.testing.assert_close(one[layer], by_hand[layer], rtol=1e-5, atol=1e-6)
    assert feature_cache._cached_features(tmp_path / "two", shard=(1, 2), **common) is None  # rank 1 first
    two = feature_cache._cached_features(tmp_path / "two", shard=(0, 2), **common)
    assert all(torch.equal(one[layer], two[layer]) for layer in (1, 2))  # bit for bit
    assert not list((tmp_path / "two").rglob("*.part")) and not list((tmp_path / "two").rglob("*.tmp"))
    metas = {json.loads(p.read_text())["layer"]: json.loads(p.read_text()) for p in (tmp_path / "one").rglob("*.json")}
    assert metas[2]["parts"] == {"p": 1} and metas[1]["parts"] == {"p": 1, "layer": 1}  # the top: the plain key
    assert metas[2]["key"] == cache_layout.feature_key(p=1) and metas[1]["key"] == cache_layout.feature_key(p=1, layer=1)
    before = feature_cache.stats["base_forward_batches"]
    again = feature_cache.cached_features(tmp_path / "one", **common)
    assert feature_cache.stats["base_forward_batches"] == before and torch.equal(again[1], one[1])  # a hit
    feature_cache.cached_features(tmp_path / "one", rebuild=True, **common)
    assert feature_cache.stats["base_forward_batches"] == before + 3  # rebuilt: 3 batches of 2, 2, 1 rows


def test_two_ranks_shares_are_assembled_back_in_row_order_past_one_chunk(tmp_path):
    n = 16_500  # more than two 8192-row chunks per rank
    plan = [[i, i + 1] for i in range(0, n, 2)]  # batches of two rows; rank r takes batches r, r + 2, ...
    for rank in range(2):
        rows = [i for index in plan[rank::2] for i in index]
        part = feature_cache.EntryWriter(tmp_path / f"part{rank}", len(rows), 1, torch.float32)
        part.write(slice(0, len(rows)), torch.tensor(rows, dtype=torch.float32)[:, None])  # packed, in plan order
        part.close().replace(tmp_path / f"part{rank}")
    writer = feature_cache.EntryWriter(tmp_path / "whole", n, 1, torch.float32)
    feature_cache.assemble(writer, plan, 2, lambda rank: tmp_path / f"part{rank}")
    assert np.array_equal(np.asarray(writer.array)[:, 0], np.arange(n, dtype=np.float32))
    writer.close()


def test_rank_0_holds_the_task_folders_lock_and_the_split_names_the_entries(tmp_path, monkeypatch):
    taken = []

    class Lock:
        def __init__(self, path, what, wait=False):
            taken.append((path, what, wait))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(feature_cache, "OwnerLock", Lock)
    model = tiny_base().eval()
    dataset = datasets.Dataset.from_dict({"input_ids": [[5, 6], [7]] * 33, "label": [0, 1] * 33})  # 66 rows
    common = dict(model=model, model_fp="f" * 64, task="cola", split="validation", dataset=dataset, collator=collate,
                  parts={"p": 1}, layers=[2], top=2, rule="last_non_pad", device=torch.device("cpu"))
    before = feature_cache.stats["base_forward_batches"]
    feature_cache.cached_features(tmp_path, **common)
    assert feature_cache.stats["base_forward_batches"] == before + 2  # the default batch: 64 rows
    assert taken == [(tmp_path / ("f" * 32) / "cola" / ".lock", f"feature cache {tmp_path}", True)]
    assert [p.name.split("-")[0] for p in (tmp_path / ("f" * 32) / "cola").glob("*.safetensors")] == ["validation"]
    time.sleep(0.05)  # past the file system's time tick of the write: the stamp the next read takes is trusted
    feature_cache.cached_features(tmp_path, **common)  # a warm read: hashes once, then stamps
    hashed = feature_cache.cache_stamp.stats["bytes_hashed"]
    feature_cache.cached_features(tmp_path, **common)  # stamped by now: not hashed again (--verify_cache stamp)
    assert feature_cache.cache_stamp.stats["bytes_hashed"] == hashed and len(taken) == 3
    assert feature_cache.cached_features(tmp_path, shard=(1, 2), **common) is None and len(taken) == 3  # rank 1


def test_entries_of_several_keys_share_a_folder(tmp_path):
    entry(tmp_path)
    entry(tmp_path, key="j" * 64)  # the folder exists already
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_a_hit_is_said_the_model_is_remembered_by_rank_0_and_another_dtype_is_extracted_anew(tmp_path, caplog):
    model = tiny_base().eval()
    dataset = datasets.Dataset.from_dict({"input_ids": [[5, 6], [7]], "label": [0, 1]})
    common = dict(model=model, model_fp="f" * 64, task="cola", split="train", dataset=dataset, collator=collate,
                  parts={"p": 1}, layers=[2], top=2, rule="last_non_pad", device=torch.device("cpu"))
    feature_cache._cached_features(tmp_path / "r1", shard=(1, 2), describe={"model_name_or_path": "m"}, **common)
    assert not (tmp_path / "r1" / ("f" * 32) / "model.json").exists()  # only rank 0 writes it
    feature_cache.cached_features(tmp_path, describe={"model_name_or_path": "m"}, **common)
    assert json.loads((tmp_path / ("f" * 32) / "model.json").read_text()) == {
        "fingerprint": "f" * 64, "top_layer": 2, "names": [{"model_name_or_path": "m"}]}
    with caplog.at_level(logging.INFO, logger="frozen_glue"):
        feature_cache.cached_features(tmp_path, **common)
    assert "feature cache: hit for cola/train (2 rows), no base forward" in caplog.messages
    half = feature_cache.cached_features(tmp_path, store_dtype=torch.float16, **common)  # same parts, other dtype
    assert half[2].dtype == torch.float16
