"""The pooling rule: which position of the base output a model's own classification head reads (own_rule finds it
by running the model's own *ForSequenceClassification, no table of model types), and that position computed from
stored hidden states, so the feature cache reproduces the model's own head input. Must not load models or train."""

import copy

import torch

from frozen_glue.config.contract import POOLING_RULES
from frozen_glue.core.errors import UserError
from frozen_glue.model import heads, placement


def pooled_position(rule: str, append_eos: bool) -> str:
    """The position the head reads, in words (config.json records it)."""
    return {"last_non_pad": "the appended EOS" if append_eos else "the last token of the text",
            "pooler": "the first token ([CLS]) through the pooler", "first_token": "the first token",
            "mean": "the mean over the text's tokens"}.get(rule, "the model's own choice")


# sentence-transformers' Pooling module (its config.json, e.g. 1_Pooling/config.json): the mode a sentence encoder
# was trained to be read by, and our rule for it. Modes we cannot read (max, mean_sqrt_len_tokens, weightedmean, or
# several at once) leave --pooling auto on the model's own head, with one line saying so.
SENTENCE_TRANSFORMERS_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "first_token",
                               "pooling_mode_lasttoken": "last_non_pad"}


def sentence_transformers_rule(pooling_config: dict):
    """(rule or None, the mode in words) of a sentence-transformers Pooling config."""
    modes = [k for k, v in pooling_config.items() if k.startswith("pooling_mode_") and v is True]
    if len(modes) == 1 and modes[0] in SENTENCE_TRANSFORMERS_MODES:
        return SENTENCE_TRANSFORMERS_MODES[modes[0]], modes[0].removeprefix("pooling_mode_")
    return None, "+".join(m.removeprefix("pooling_mode_") for m in modes) or "no mode"


def pooling_rule(config, own: tuple, choice: str = "auto", trained_for: str | None = None) -> str:
    """The rule of --pooling `choice` on the cached path: auto is the pooling the model was trained to be read by
    (`trained_for`: a sentence-transformers model's, loading.trained_pooling), else its own head's (`own`:
    own_rule's (rule, why)); pooler exists where the model's own head reads one. A model whose own head cannot be
    run on stored features is refused, saying why."""
    rule, why = own
    if rule is None:
        raise UserError(f"{why}: the feature cache cannot serve it; run without --feature_cache (the Trainer path "
                        f"runs the whole model)")
    if choice == "auto":
        return trained_for or rule
    if choice == "pooler" and rule != "pooler":
        raise UserError(f"--pooling pooler: a {config.model_type} model has no pooler; use auto, last, first or mean")
    return POOLING_RULES[choice]


def pooled_index(input_ids, rule: str, pad_token_id):
    """The position each row's head reads: 0 for [CLS] / first-token models; for GPT-2 style models the rightmost
    token that is not the pad id (GPT2ForSequenceClassification's rule, left or right padding)."""
    if rule in ("pooler", "first_token"):
        return torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    non_pad = (input_ids != pad_token_id).to(torch.int32)
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    return (positions * non_pad).argmax(-1)


def _at(hidden, rule, index, attention_mask):
    """One layer's hidden states read by the rule: the mean over the real tokens, or the state at `index`."""
    if rule == "mean":
        mask = attention_mask.to(hidden.device, hidden.dtype)[..., None]
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index.to(hidden.device)]


def pool(base_output, input_ids, attention_mask, rule: str, pad_token_id):
    """The head's input at the top layer, exactly as the model's *ForSequenceClassification.forward computes it
    for its own rule (or the --pooling one)."""
    if rule == "pooler":
        return base_output.pooler_output
    index = None if rule == "mean" else pooled_index(input_ids, rule, pad_token_id)
    return _at(base_output.last_hidden_state, rule, index, attention_mask)


def pool_layers(base_output, input_ids, rule: str, pad_token_id, layers, top, attention_mask=None) -> dict:
    """{layer: pooled state} read by the rule. Layer 0 is the embeddings, 1..top the blocks; the top layer is
    exactly the head's input (`pool`: BERT's pooler output), the others the hidden state at that position (BERT:
    [CLS] below the top), or their mean over the real tokens (`mean`: needs the attention mask)."""
    index = None if rule == "mean" else pooled_index(input_ids, rule, pad_token_id)  # once for every layer
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    out = {}
    for layer in layers:
        if layer == top:
            out[layer] = pool(base_output, input_ids, attention_mask, rule, pad_token_id)
        else:
            out[layer] = _at(base_output.hidden_states[layer], rule, index, attention_mask)
    return out


def num_layers(config) -> int:
    """The top layer's index: the number of transformer blocks (hidden_states has one more entry, the embeddings)."""
    return config.num_hidden_layers


def probed_layers(spec, config, name) -> list:
    """The layers of --probe_layers `spec` (all | last | L ...), ascending, always with the top one (the run's own
    results); a layer the model does not have is refused."""
    top = num_layers(config)
    spec = spec or ["last"]
    layers = list(range(top + 1)) if spec == ["all"] else [top] if spec == ["last"] else [int(s) for s in spec]
    wrong = [layer for layer in layers if not 0 <= layer <= top]
    if wrong:
        raise UserError(f"--probe_layers {' '.join(map(str, wrong))}: {name} has layers 0 (embeddings) to {top}")
    return sorted(set(layers) | {top})


# How a base output can become the one vector per row that the cache stores; own_rule finds which of these the
# model's own *ForSequenceClassification reads, by running it.
CANDIDATES = ("pooler", "first_token", "last_non_pad", "mean")


def own_rule(model) -> tuple:
    """(rule or None, why): which candidate the model's own *ForSequenceClassification reads, found by running it:
    its logits on a padded probe batch (rows of different lengths) equal, for exactly one candidate, its own head
    applied through a BaseStub to that candidate's vector (heads.forward_features). A random head of the model's own
    classes (a private seed, whatever head the model holds) is used for both. None when no candidate or more than one
    reproduces the logits (the head reads several positions, or the base cannot run here): such a model cannot be
    cached, and `why` says so."""
    name = f"a {model.config.model_type} model ({type(model).__name__})"
    try:
        modules = copy.deepcopy(heads.head_modules(model))
        heads.init_head(modules.values(), model.config, seed=12345)
        dtype = next(model.base_model.parameters()).dtype  # a bfloat16 base (--base_dtype): the probe head too
        modules = {name: module.to(dtype) for name, module in modules.items()}
        full, stubbed = heads.twin(model, modules), heads.stub_twin(model, modules)
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        low = 3 if pad < 3 else 0
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(low, min(low + 50, model.config.vocab_size), (3, 7), generator=gen)
        ids[ids == pad] = low + 1
        ids[0, 5:], ids[1, 2:] = pad, pad
        mask = (torch.arange(7)[None] < torch.tensor([5, 2, 7])[:, None]).long()
        device = placement.input_device(model) if placement.is_split(model) else next(model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        was = model.training
        full.eval(), stubbed.eval()
        with torch.no_grad():
            want = full(input_ids=ids, attention_mask=mask).logits.float()
            base = model.base_model(input_ids=ids, attention_mask=mask)
            found = []
            for rule in CANDIDATES:
                if rule == "pooler" and getattr(base, "pooler_output", None) is None:
                    continue
                vector = pool(base, ids, mask, rule, pad)
                got = heads.forward_features(stubbed, vector).logits.float()
                if got.shape == want.shape and torch.allclose(got, want, rtol=1e-3, atol=1e-3 * (1 + float(want.abs().max()))):
                    found.append(rule)
        model.train(was)
    except Exception as e:  # a base that cannot run a probe batch here (ZeRO-3 partitions, an exotic forward)
        return None, f"{name}: its head could not be run on stored features ({type(e).__name__}: {e})"
    if len(found) != 1:
        return None, (f"{name}: its *ForSequenceClassification reads its base output "
                      + ("in a way no single stored vector reproduces (not the pooler, the first, the last non-pad "
                         "token or the mean)" if not found else f"ambiguously ({', '.join(found)})"))
    return found[0], f"the model's own head reads {pooled_position(found[0], False)} (found by running it)"
