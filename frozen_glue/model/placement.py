"""Where a loaded model runs: whole on one device, or split over devices by accelerate (--device_map, loading.py's
big_model_kwargs). Asked by loading (a split model cannot be resized), fingerprinting (offloaded weights are read
back to hash them) and the cached path's extraction (inputs go to the first layer's device). Must not load or move
a model."""

import torch

from frozen_glue.core import compat


def is_split(model) -> bool:
    """Whether accelerate placed the model over devices (--device_map): it must not be moved as a whole."""
    return bool(getattr(model, "hf_device_map", None))


def input_device(model) -> torch.device:
    """Where a split model's first layer runs (its inputs go there)."""
    hook = compat.hf_hook(model.get_input_embeddings())
    device = getattr(hook, "execution_device", None)
    return torch.device(device if device is not None else "cpu")
