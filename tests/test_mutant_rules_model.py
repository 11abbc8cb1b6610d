"""Rules of what a model is, stated with answers written out here (mutation testing, docs/mutants.md): the model
and tokenizer fingerprints hash exactly what their docstrings name, nothing more and nothing less."""

import hashlib
import json

import torch
from transformers import AutoModel, AutoTokenizer, GPT2Config, GPT2Model  # at the top: a mutant's fork has them

from frozen_glue.model import fingerprinting


def tiny_gpt2():
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=11, n_positions=6))
    # a weight with no elements, held by the base itself (a name with no dot): hashed as its header and no bytes
    model.register_buffer("empty", torch.zeros(0), persistent=True)
    return model


def by_hand(model) -> str:
    """The model fingerprint as its docstring defines it: sha256 of the model type, then per base weight in
    name order its name, dtype and shape and its bytes as held."""
    h = hashlib.sha256(model.config.model_type.encode())
    for name, t in sorted(model.base_model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def test_the_model_fingerprint_is_sha256_of_type_names_dtypes_shapes_and_bytes():
    model = tiny_gpt2()
    assert fingerprinting.model_fingerprint(model) == by_hand(model)
    before = fingerprinting.model_fingerprint(model)
    with torch.no_grad():
        model.h[0].mlp.c_fc.bias[3] += 1e-3  # one changed number in one weight
    assert fingerprinting.model_fingerprint(model) == by_hand(model) != before


def test_a_split_model_reads_its_offloaded_weights_back(tmp_path):
    """--device_map: weights offloaded to disk sit on the meta device until onloaded; the fingerprint reads them
    back and equals the plain load's."""
    model = tiny_gpt2()
    del model._buffers["empty"]
    model.save_pretrained(tmp_path / "m")
    plain = AutoModel.from_pretrained(tmp_path / "m")
    split = AutoModel.from_pretrained(tmp_path / "m", device_map={"wte": "cpu", "wpe": "cpu", "h": "disk",
                                                                   "ln_f": "cpu"}, offload_folder=tmp_path / "off")
    assert split.h[0].attn.c_attn.weight.device.type == "meta"  # offloaded: only a hook knows where it is
    assert fingerprinting.model_fingerprint(split) == fingerprinting.model_fingerprint(plain) == by_hand(plain)


def tokenizer_by_hand(tok) -> str:
    backend = {k: v for k, v in json.loads(tok.backend_tokenizer.to_str()).items() if k not in ("truncation", "padding")}
    state = {"class": type(tok).__name__, "vocab": sorted(tok.get_vocab().items()),
             "special": {k: str(v) for k, v in tok.special_tokens_map.items()},
             "padding_side": tok.padding_side, "truncation_side": tok.truncation_side, "backend": backend}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def test_the_tokenizer_fingerprint_hashes_class_vocabulary_specials_sides_and_backend(assets):
    tok = AutoTokenizer.from_pretrained(assets["base"])
    tok.pad_token = tok.eos_token
    tok(["a sentence long enough to be cut"], truncation=True, max_length=4, padding="max_length")  # set, not hashed
    first = fingerprinting.tokenizer_fingerprint(tok)
    assert first == tokenizer_by_hand(tok)
    seen = {first}
    for change in (lambda t: setattr(t, "padding_side", "left"), lambda t: setattr(t, "truncation_side", "left"),
                   lambda t: t.add_special_tokens({"pad_token": "<pad>"}), lambda t: t.add_tokens(["<new>"])):
        change(tok)
        fp = fingerprinting.tokenizer_fingerprint(tok)
        assert fp == tokenizer_by_hand(tok) and fp not in seen  # each part is hashed
        seen.add(fp)


def test_a_tokenizer_without_a_backend_is_hashed_without_one():
    class Slow:  # a Python tokenizer: no backend_tokenizer
        padding_side, truncation_side = "right", "left"
        special_tokens_map = {"eos_token": "</s>"}

        def get_vocab(self):
            return {"b": 1, "a": 0, "</s>": 2}

    state = {"class": "Slow", "vocab": [["</s>", 2], ["a", 0], ["b", 1]], "special": {"eos_token": "</s>"},
             "padding_side": "right", "truncation_side": "left"}
    by_hand = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    assert fingerprinting.tokenizer_fingerprint(Slow()) == by_hand
