"""A run's identity (docs/DESIGN.md): its protocol plus the fingerprints of the model, tokenizer and data it ran
on. The sweep skips a complete run only when its identity is the one it would produce now; analysis never averages
runs of different identities. Must not write anything.

The fingerprints themselves are computed elsewhere (fingerprinting.model_fingerprint,
fingerprinting.tokenizer_fingerprint, data.load_glue) and fed in: this module only compares them (and stamps a
model's files, source_stamp), so reading a run folder's identity loads nothing. What a sweep expects a run to record
is expected.py's (the sweep).
"""

import hashlib
import json
from pathlib import Path

from frozen_glue.core.errors import UserError

FIELDS = ("protocol_hash", "model_fingerprint", "tokenizer_fingerprint", "data_fingerprints")
WORDS = {"model_fingerprint": "the model's weights", "tokenizer_fingerprint": "the tokenizer",
         "data_fingerprints": "the data"}


def of_config(config: dict) -> dict:
    """The identity a run's config.json records (runs of any format version: the fields predate the name)."""
    return {k: config.get(k) for k in FIELDS}


def identity_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def protocol_diff(old: dict | None, new: dict) -> str:
    """'learning_rate 0.02 -> 0.05, num_train_epochs 2.0 -> 6.0': what differs between two protocols."""
    if old is None:
        return "made without a recorded protocol (an older frozen-GLUE)"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in keys) or "no argument differs"


def difference(old_config: dict, new_config: dict) -> str:
    """What differs between two runs' identities, in words ('' when nothing does): the protocol's arguments
    (protocol_diff), then the model, tokenizer or data by name."""
    old, new = of_config(old_config), of_config(new_config)
    parts = []
    if old["protocol_hash"] != new["protocol_hash"]:
        parts.append(protocol_diff(old_config.get("protocol"), new_config.get("protocol")))
    for key, words in WORDS.items():
        if old[key] != new[key]:
            if key == "data_fingerprints" and old[key] and new[key]:
                splits = sorted(s for s in set(old[key]) | set(new[key]) if old[key].get(s) != new[key].get(s))
                words += f" ({', '.join(splits)})"
            parts.append(f"{words} differ")
    return ", ".join(parts)


def relation(protocol_a: dict | None, protocol_b: dict | None, rules=(None, None)) -> str:
    """How two models' runs relate beyond being two models: '' (the same protocol), 'control' (they differ only in
    --random_init: the no-pretraining control of the same architecture), or 'settings differ: …'. Refused: two
    pooling choices, or two pooling rules (`rules`: what each run's config.json records, e.g. a sentence-transformers
    model read by its mean under --pooling auto beside a copy without its pooling files read by the pooler): the
    heads would read different things (docs/DESIGN.md)."""
    if all(rules) and rules[0] != rules[1]:
        raise UserError(f"one model's heads read {rules[0]}, the other's {rules[1]} (config.json: pooling.rule): pass "
                        f"both the same --pooling (e.g. --pooling mean) and rerun")
    if protocol_a == protocol_b:
        return ""
    a, b = protocol_a or {}, protocol_b or {}
    if a.get("pooling", "auto") != b.get("pooling", "auto"):
        raise UserError(f"one model was probed with --pooling {a.get('pooling', 'auto')}, the other with --pooling "
                        f"{b.get('pooling', 'auto')}; compare runs of the same pooling")
    if protocol_a is not None and protocol_b is not None and \
            {k for k in set(a) | set(b) if a.get(k) != b.get(k)} == {"random_init"}:
        return "control"
    return f"settings differ: {protocol_diff(protocol_a, protocol_b)}"


def relation_of(config_a: dict | None, config_b: dict | None) -> str:
    """relation() of two runs' config.json: their protocols and the pooling rules they record (None for runs made
    before config.json recorded one)."""
    a, b = config_a or {}, config_b or {}
    rules = tuple((c.get("pooling") or {}).get("rule") for c in (a, b))
    kind = relation(a.get("protocol"), b.get("protocol"), rules)
    if a.get("model_fingerprint") and a.get("model_fingerprint") == b.get("model_fingerprint") and \
            a.get("tokenizer_fingerprint") == b.get("tokenizer_fingerprint"):
        return IDENTICAL + (f"; {kind}" if kind else "")
    return kind


# two aliases of the same weights and tokenizer (a `cp -r` copy, the same hub id twice): any difference is seeds
IDENTICAL = "identical weights: this comparison checks determinism only"


def source_stamp(*names) -> str | None:
    """A cheap stamp of a model's files (names, sizes, modification times; not their bytes): a local dir's, or the
    local HF cache snapshot of a hub id; None when neither is here. When it equals the recorded one, the weights are
    the ones the run hashed. Several names (an adapter dir and its base: adapters.source_names): one stamp of all."""
    if len(names) > 1:
        stamps = [source_stamp(name) for name in names]
        return None if None in stamps else hashlib.sha256(" ".join(stamps).encode()).hexdigest()[:16]
    name = names[0]
    path = Path(str(name)).expanduser()
    if not path.exists():
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(str(name), "config.json")
        except ValueError:  # not a hub id either (a missing local path): huggingface_hub's HFValidationError
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached).parent
    files = sorted(p for p in (path.iterdir() if path.is_dir() else [path]) if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]

