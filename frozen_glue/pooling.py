"""The pooling rule: which position of the base output each model type's classification head reads, and that
position computed from stored hidden states, so the feature cache reproduces the model's own head input. Must not
load models or know about heads' weights."""

import torch

from .errors import UserError

# How each model type's *ForSequenceClassification turns the base output into the head's input. The cached
# path stores exactly that input, so the cached head computes the same function as the full model.
POOLING = {
    **dict.fromkeys(("gpt2", "gpt_neo", "gptj", "gpt_neox", "llama", "mistral", "qwen2", "opt"), "last_non_pad"),
    "bert": "pooler",
    **dict.fromkeys(("roberta", "xlm-roberta", "camembert"), "first_token"),
}


def pooled_position(rule: str, append_eos: bool) -> str:
    """The position the head reads, in words (config.json records it)."""
    return {"last_non_pad": "the appended EOS" if append_eos else "the last token of the text",
            "pooler": "the first token ([CLS]) through the pooler", "first_token": "the first token"}.get(
        rule, "the model's own choice")


def pooling_rule(config) -> str:
    rule = POOLING.get(config.model_type)
    if rule is None:
        raise UserError(f"model type {config.model_type!r} is not supported by the feature cache (supported: "
                        f"{', '.join(sorted(POOLING))}); run without --feature_cache to use the Trainer path")
    return rule


def pooled_index(input_ids, rule: str, pad_token_id):
    """The position each row's head reads: 0 for [CLS] / first-token models; for GPT-2 style models the rightmost
    token that is not the pad id (GPT2ForSequenceClassification's rule, left or right padding)."""
    if rule in ("pooler", "first_token"):
        return torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    non_pad = (input_ids != pad_token_id).to(torch.int32)
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    return (positions * non_pad).argmax(-1)


def pool(base_output, input_ids, attention_mask, rule: str, pad_token_id):
    """The head's input, exactly as the model's *ForSequenceClassification.forward computes it."""
    if rule == "pooler":
        return base_output.pooler_output
    hidden = base_output.last_hidden_state
    index = pooled_index(input_ids, rule, pad_token_id).to(hidden.device)  # a split model's last layer may be elsewhere
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def pool_layers(base_output, input_ids, rule: str, pad_token_id, layers, top) -> dict:
    """{layer: pooled state} at the position the model's own head reads. Layer 0 is the embeddings, 1..top the
    blocks; the top layer is exactly the head's input (`pool`: BERT's pooler output), the others the hidden state at
    that position (BERT: [CLS] below the top)."""
    index = pooled_index(input_ids, rule, pad_token_id)  # once for every layer below the top
    out = {}
    for layer in layers:
        if layer == top:
            out[layer] = pool(base_output, input_ids, None, rule, pad_token_id)
        else:
            hidden = base_output.hidden_states[layer]
            out[layer] = hidden[torch.arange(hidden.shape[0], device=hidden.device), index.to(hidden.device)]
    return out


def num_layers(config) -> int:
    """The top layer's index: the number of transformer blocks (hidden_states has one more entry, the embeddings)."""
    return config.num_hidden_layers
