"""The cached path's trainable: the model's own head forward applied to stored features (CachedHead), and the
datasets that feed it (FeatureDataset; RowView: some rows of a memory-mapped entry, not copied out). Must not read
or write the feature cache, run the base, or train.
"""

import inspect

import torch
from torch import nn

from frozen_glue.model.heads import forward_features, stub_twin


class Standardize(nn.Module):
    """--standardize_features: (x - mean) / scale per feature dimension, before the head (and before its dropout),
    with the train rows' statistics as buffers, so that they are saved and loaded with the head."""

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("scale", scale.float())

    def forward(self, x):
        return (x - self.mean) / self.scale


def feature_stats(features, chunk=8192):
    """(mean, scale) of each dimension over the rows of `features` (a tensor, a memory-mapped entry or a RowView,
    read a chunk of rows at a time): the population std, as scikit-learn's StandardScaler, and 1 where a dimension
    is constant (BERT's layer-0 [CLS] vector: it then reads 0, and the head keeps its bias)."""
    n = len(features)

    def chunks():
        for start in range(0, n, chunk):
            yield features[torch.arange(start, min(start + chunk, n))].double()

    mean = sum(rows.sum(0) for rows in chunks()) / n
    std = (sum(((rows - mean) ** 2).sum(0) for rows in chunks()) / n).sqrt()  # two passes: a constant gives 0
    return mean.float(), torch.where(std > 0, std, torch.ones_like(std)).float()


class CachedHead(nn.Module):
    """The model's own head on cached features: its own *ForSequenceClassification forward (pooling, head modules,
    loss) run through heads.stub_twin, the stored features standing in for the base output, so any architecture
    whose head pooling.own_rule could run on stored features trains here exactly as on the Trainer path.
    Parameter names are the model's under a `heads.` prefix, which model_state_dict drops (`score.weight`)."""

    def __init__(self, modules: dict, source_model):
        super().__init__()
        self.heads = nn.ModuleDict(modules)
        # not a registered submodule: its head modules are these, its base a stub without parameters
        object.__setattr__(self, "twin", stub_twin(source_model, {k: m for k, m in modules.items()
                                                                 if k != "standardize"}))
        # the Trainer reads config (label smoothing checks problem_type) and scales the loss under gradient
        # accumulation by whether the model takes loss kwargs: answer as the full model would
        self.config = source_model.config
        self.num_labels, self.problem_type = self.config.num_labels, self.config.problem_type
        parameters = inspect.signature(source_model.forward).parameters.values()
        self.accepts_loss_kwargs = getattr(source_model, "accepts_loss_kwargs",
                                           any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters))

    def train(self, mode: bool = True):
        self.twin.training = mode  # the model's own forward may read its own flag; its modules are ours
        return super().train(mode)

    def floating_point_ops(self, inputs) -> int:
        """What Trainer counts as total_flos: forward + backward of the head (6 x rows x parameters)."""
        return 6 * inputs["features"].shape[0] * sum(p.numel() for p in self.parameters())

    def forward(self, features, labels=None, **loss_kwargs):
        # loss_kwargs (num_items_in_batch) are ignored, as *ForSequenceClassification's own losses ignore them
        if "standardize" in self.heads:
            features = self.heads["standardize"](features)
        out = forward_features(self.twin, features, labels)
        return {"loss": out.loss, "logits": out.logits} if labels is not None else {"logits": out.logits}

    def model_state_dict(self):
        return {k.removeprefix("heads."): v.detach().cpu().contiguous() for k, v in self.state_dict().items()}


class RowView:
    """Some rows of a feature tensor, indexed without copying them out: a hold-out cut of a memory-mapped cache
    entry at every probed layer would otherwise sit in RAM whole (GPT-2 XL x 49 layers x MNLI: ~100 GB)."""

    def __init__(self, base, rows):
        self.base, self.rows = base, torch.as_tensor(rows, dtype=torch.long, device=base.device)

    def __getitem__(self, index):
        return self.base[self.rows[index]]

    def __len__(self):
        return len(self.rows)

    @property
    def device(self):
        return self.base.device

    def to(self, device):
        return RowView(self.base.to(device), self.rows.to(device))

    def float(self):
        """All its rows, as one float tensor (evaluation, the logistic probe)."""
        return self.base[self.rows].float()


class FeatureDataset(torch.utils.data.Dataset):
    """Cached features (+ labels, absent for test splits) in the shape the Trainer feeds to CachedHead."""

    def __init__(self, features, labels, regression):
        self.features = features  # may be a memory-mapped cache entry, float16: rows are read and cast per batch
        self.labels = None if labels is None else torch.tensor(labels,
                                                              dtype=torch.float32 if regression else torch.long)

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):  # one indexing op per batch instead of one per row
        index = torch.as_tensor(indices)
        rows = self.features[index].float()
        if self.labels is None:
            return [{"features": f} for f in rows]
        return [{"features": f, "labels": y} for f, y in zip(rows, self.labels[index])]
