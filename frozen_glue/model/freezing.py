"""Freezing the base (heads.py says what is base and what is head): its parameters out of training, optionally its
top K blocks left trainable, and the frozen part kept in eval mode. Must not load, initialise or train anything.
"""

import logging

from torch import nn

from frozen_glue.core.errors import UserError

logger = logging.getLogger(__name__)


def transformer_blocks(base) -> nn.ModuleList:
    """The list of transformer blocks: the ModuleList whose length is the model's layer count."""
    depth = getattr(base.config, "num_hidden_layers", None)
    lists = [m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) == depth]
    if not lists:
        raise UserError(f"cannot find the transformer blocks of model type {base.config.model_type}; "
                        f"--unfreeze_top_layers supports GPT-2, BERT and RoBERTa-like models")
    return lists[0]


def freeze(model, freeze_base=True, unfreeze_top_layers=0, base_dropout=False):
    """Freeze the base (all of `model.base_model`), optionally leaving its top K blocks trainable, and keep the
    frozen part in eval mode (no dropout) unless base_dropout. Returns (trainable, total) parameter counts."""
    base = model.base_model
    if unfreeze_top_layers and not freeze_base:
        raise UserError("--unfreeze_top_layers needs --freeze_base true (with --freeze_base false all layers train)")
    if freeze_base:
        base.requires_grad_(False)
        if unfreeze_top_layers:
            blocks = transformer_blocks(base)
            if unfreeze_top_layers > len(blocks):
                raise UserError(f"--unfreeze_top_layers {unfreeze_top_layers} is larger than the model's depth "
                                f"({len(blocks)} blocks); use 0..{len(blocks)}")
            for block in blocks[len(blocks) - unfreeze_top_layers:]:
                block.requires_grad_(True)
        if not base_dropout:
            _keep_frozen_modules_in_eval(model, base)
    # under ZeRO-3 parameters arrive partitioned (numel() == 0); ds_numel is their full size
    trainable = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters() if p.requires_grad)
    total = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())
    logger.info(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.4f}%)")
    return trainable, total


def _frozen_submodules(module):
    """Largest submodules with no trainable parameter (parameter-free ones like dropout count as frozen when
    their parent mixes frozen and trainable parts)."""
    params = list(module.parameters())
    if not any(p.requires_grad for p in params):
        return [module]
    if all(p.requires_grad for p in params):
        return []
    return [m for child in module.children() for m in _frozen_submodules(child)]


def _keep_frozen_modules_in_eval(model, base):
    """The Trainer calls model.train() every step; re-apply eval() to the frozen part after it."""
    frozen = _frozen_submodules(base)
    original_train = model.train

    def train(mode: bool = True):
        original_train(mode)
        for m in frozen:
            m.eval()
        return model

    model.train = train
    model.train(model.training)
