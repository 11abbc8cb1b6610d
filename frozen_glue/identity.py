"""A run's identity (docs/DESIGN.md): its protocol plus the fingerprints of the model, tokenizer and data it ran
on. The sweep skips a complete run only when its identity is the one it would produce now; analysis never averages
runs of different identities. Must not write anything.

The fingerprints themselves are computed elsewhere (fingerprinting.model_fingerprint,
fingerprinting.tokenizer_fingerprint, data.load_glue); this module compares them, and computes what a sweep expects
without running anything: the data and tokenizer fingerprints always (cheap), the model's only when its files'
stamp (names, sizes, modification times) differs from the one the run recorded, since hashing GPT-2 XL's weights
reads 6 GB.
"""

import hashlib
import json
from pathlib import Path

from .errors import UserError
from .contract import protocol_diff

FIELDS = ("protocol_hash", "model_fingerprint", "tokenizer_fingerprint", "data_fingerprints")
WORDS = {"model_fingerprint": "the model's weights", "tokenizer_fingerprint": "the tokenizer",
         "data_fingerprints": "the data"}


def of_config(config: dict) -> dict:
    """The identity a run's config.json records (runs of any format version: the fields predate the name)."""
    return {k: config.get(k) for k in FIELDS}


def identity_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def difference(old_config: dict, new_config: dict) -> str:
    """What differs between two runs' identities, in words ('' when nothing does): the protocol's arguments
    (contract.protocol_diff), then the model, tokenizer or data by name."""
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


def source_stamp(name) -> str | None:
    """A cheap stamp of a model's files (names, sizes, modification times; not their bytes): a local dir's, or the
    local HF cache snapshot of a hub id; None when neither is here. When it equals the recorded one, the weights are
    the ones the run hashed."""
    path = Path(str(name)).expanduser()
    if not path.exists():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(name), "config.json")
        if not isinstance(cached, str):
            return None
        path = Path(cached).parent
    files = sorted(p for p in (path.iterdir() if path.is_dir() else [path]) if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class Expected:
    """What a sweep's run would record, computed without running it and at most once per model (or per data
    source): the data and tokenizer fingerprints always, the model fingerprint from the recorded run when the
    model's stamp is unchanged, else by loading and hashing the model as the run would."""

    def __init__(self):
        self._data, self._tokenizers, self._models = {}, {}, {}

    def sources(self, parsed, recorded: dict) -> dict:
        """{data_fingerprints, tokenizer_fingerprint, model_fingerprint} of a run of `parsed` arguments."""
        from . import fingerprinting, loading, prepare
        from .tasks import get_task

        model_args, data_args, _, training_args = parsed
        task = get_task(data_args.task_name)
        data_key = repr((data_args, training_args.do_train, training_args.do_eval, training_args.do_predict))
        if data_key not in self._data:
            self._data[data_key] = prepare.load_splits(task, data_args, training_args, model_args.cache_dir)[1]
        model_key = repr(model_args)
        if model_key not in self._tokenizers:
            config = loading.load_config(model_args, task)
            tokenizer = prepare.load_tokenizer(model_args, config)
            self._tokenizers[model_key] = (config, tokenizer, fingerprinting.tokenizer_fingerprint(tokenizer))
        config, tokenizer, tokenizer_fp = self._tokenizers[model_key]
        stamp = source_stamp(model_args.model_name_or_path)
        if stamp is not None and stamp == recorded.get("model_source"):
            model_fp = recorded.get("model_fingerprint")
        else:
            if model_key not in self._models:
                model, _ = prepare.load_frozen_model(model_args, config, tokenizer, whole=True)
                self._models[model_key] = fingerprinting.model_fingerprint(model)
            model_fp = self._models[model_key]
        return {"data_fingerprints": self._data[data_key], "model_fingerprint": model_fp,
                "tokenizer_fingerprint": tokenizer_fp}
