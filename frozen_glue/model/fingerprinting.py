"""The model and tokenizer fingerprints a run's identity records (identity.py compares them): sha256 of what was
loaded. Must not load anything or compare identities.
"""

import contextlib
import hashlib
import json

import torch

from frozen_glue.model.placement import is_split


def model_fingerprint(model) -> str:
    """sha256 of the base weights as loaded (after any resize) and the model type: hub id, local dir or a
    copy of the same weights all give the same fingerprint, and any changed weight gives another. A model split by
    --device_map gives its plain load's fingerprint (offloaded weights are read back one module at a time)."""
    from accelerate.utils import align_module_device

    h = hashlib.sha256()
    h.update(model.config.model_type.encode())
    base = model.base_model
    for name in sorted(base.state_dict()):
        owner, _, attr = name.rpartition(".")
        module = base.get_submodule(owner)
        with align_module_device(module, "cpu") if is_split(model) else contextlib.nullcontext():
            t = module.state_dict()[attr].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of what maps text to ids: class, vocabulary, special tokens, sides, and the backend's model,
    normalizer and pre-tokenizer (not its current truncation or padding)."""
    state = {"class": type(tokenizer).__name__, "vocab": sorted(tokenizer.get_vocab().items()),
             "special": {k: str(v) for k, v in tokenizer.special_tokens_map.items()},
             "padding_side": tokenizer.padding_side, "truncation_side": tokenizer.truncation_side}
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # without the truncation and padding settings: tokenizing sets them (to --max_seq_length), and they are
        # not the tokenizer (the protocol and the cache key hold max_seq_length)
        state["backend"] = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
