"""The head's modules on the full model: which they are, initialising them from a seed, reading and writing their
tensors (whole under ZeRO-3), and the model's own head forward run on stored features (BaseStub, stub_twin,
forward_features: how the cached path trains any architecture's own head). Must not load, freeze or train a model.

"Base" is `model.base_model` (the module named by `base_model_prefix`: `transformer` for GPT-2, `bert` for
BERT); the "head" is every other child of the model (`score`; `dropout` + `classifier`). BERT's pooler lives
in the base, so it is frozen with it.
"""

import contextlib
import copy

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions

from frozen_glue.core import compat
from frozen_glue.core.errors import UserError


def load_head(heads: dict, state: dict, where: str):
    """Put a saved head (tensors under the model's own names) into the head modules; refuse another shape."""
    own = head_state_dict(heads)
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise UserError(f"{where} holds a head of another shape ({_shapes(state)}; this model and task need "
                        f"{_shapes(own)})")
    with torch.no_grad(), gathered((p for m in heads.values() for p in m.parameters()), modify=True):
        for name, module in heads.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def _shapes(tensors: dict) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())


def head_modules(model) -> dict:
    """The model's children outside the base, by attribute name: {'score': Linear} or {'dropout', 'classifier'}."""
    return {name: m for name, m in model.named_children() if name != model.base_model_prefix}


def gathered(params, modify=False):
    """Context in which ZeRO-3-partitioned parameters have their full shape (a no-op without ZeRO-3);
    with modify=True, changes made inside are written back to the partitions."""
    params = list(params)
    if not any(hasattr(p, "ds_id") for p in params):
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=0 if modify else None)


def head_state_dict(model_or_heads) -> dict:
    """The head's tensors under the model's own names (from a model, or from its head modules by name)."""
    heads = model_or_heads if isinstance(model_or_heads, dict) else head_modules(model_or_heads)
    with gathered(p for m in heads.values() for p in m.parameters()):
        return {f"{name}.{k}": v.detach().cpu().clone() for name, m in heads.items() for k, v in m.state_dict().items()}


def init_head(modules, config, seed: int):
    """Initialise the head from the seed alone (normal(0, initializer_range), zero bias), with a private
    generator, so that the Trainer path and the cached path start from the same head for the same seed."""
    gen = torch.Generator().manual_seed(seed)
    std = getattr(config, "initializer_range", 0.02)
    linears = [mod for top in modules for mod in top.modules() if isinstance(mod, nn.Linear)]
    with torch.no_grad(), gathered((p for m in linears for p in m.parameters()), modify=True):
        for m in linears:
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
            if m.bias is not None:
                m.bias.zero_()


class BaseStub(nn.Module):
    """Stands in for the frozen base inside the model's own *ForSequenceClassification forward: it returns the
    stored features as a one-token sequence and as the pooler output, so that the model's own pooling and head
    compute from them exactly what they compute from the full base output (pooling.own_rule checks that they do,
    per model, before anything is cached)."""

    def __init__(self):
        super().__init__()
        self.features = None

    def forward(self, *args, **kwargs):
        x = self.features
        return BaseModelOutputWithPoolingAndCrossAttentions(last_hidden_state=x[:, None, :], pooler_output=x)


def twin(model, modules: dict):
    """A shallow twin of `model` for its own forward: the same class, config and forward code, its base `base`
    (the model's own, or a BaseStub) and its head `modules` (a seed's copy). Shares no trainable tensor with `model`
    beyond the base it is given; hooks that accelerate bound to `model` (--device_map) are not carried over."""
    out = copy.copy(model)
    compat.drop_hook_attributes(out)  # accelerate's wrappers (--device_map) would call the original model
    for name in ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
                 "_forward_hooks_always_called"):
        if name in out.__dict__:
            out.__dict__[name] = type(out.__dict__[name])()
    out._modules = {**model._modules, **modules}
    return out


def stub_twin(model, modules: dict):
    """twin() with a BaseStub for a base: the model's own head forward on stored features (forward_features)."""
    return twin(model, {model.base_model_prefix: BaseStub(), **modules})


def forward_features(stubbed, features, labels=None):
    """The model's own forward (pooling, head, loss) of a stub_twin on stored features: one token per row, a token
    that is not the pad (a GPT-2-style head finds the row's last non-pad token: this one)."""
    stubbed.base_model.features = features
    token = 1 if stubbed.config.pad_token_id == 0 else 0
    ids = torch.full((features.shape[0], 1), token, dtype=torch.long, device=features.device)
    return stubbed(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, return_dict=True)
