"""Models: loading (hub id, local dir, COMET-style LM checkpoint + separate tokenizer dir), the pad/EOS rule,
freezing the base, the head, and the cached head with its feature dataset. Must not read data, write run folders,
or decide where a head reads (pooling.py).

"Base" is `model.base_model` (the module named by `base_model_prefix`: `transformer` for GPT-2, `bert` for
BERT); the "head" is every other child of the model (`score`; `dropout` + `classifier`). BERT's pooler lives
in the base, so it is frozen with it.
"""

import contextlib
import hashlib
import inspect
import json
import logging
from pathlib import Path

import torch
from torch import nn

from . import compat
from .errors import UserError
from .hub import hub_offline

logger = logging.getLogger(__name__)

def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def check_model_location(name: str, what: str = "--model_name_or_path"):
    """Fail early, in one line, on a path that cannot hold a model."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{what} {name} has no config.json; point it at a saved Hugging Face model dir")
        return
    if _looks_local(name) or name.count("/") > 1:
        raise UserError(f"{what} {name} does not exist; give a local model dir or a hub id such as gpt2-xl")


def _hub_kwargs(model_args):
    return dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
                trust_remote_code=model_args.trust_remote_code)


def _from_pretrained(loader, name, what, **kwargs):
    try:
        return loader(name, **kwargs)
    except (OSError, ValueError) as e:
        hint = ("" if Path(name).expanduser().exists() else
                " (HF_HUB_OFFLINE is set and it is not in the local HF cache: download the model and pass its "
                "local dir)" if hub_offline() else
                " (if the hub cannot be reached, download the model and pass its local dir)")
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load {what} from {name}: {first}{hint}") from None


def load_config(model_args, task):
    from transformers import AutoConfig

    check_model_location(model_args.config_name or model_args.model_name_or_path)
    kwargs = dict(num_labels=task.num_labels, finetuning_task=task.name,
                  problem_type="regression" if task.is_regression else "single_label_classification")
    if not task.is_regression:
        kwargs.update(id2label=dict(enumerate(task.label_names)),
                      label2id={n: i for i, n in enumerate(task.label_names)})
    return _from_pretrained(AutoConfig.from_pretrained, model_args.config_name or model_args.model_name_or_path,
                            "the model config", **kwargs, **_hub_kwargs(model_args))


def load_tokenizer(model_args, config):
    """AutoTokenizer; for a tokenizer dir whose tokenizer_config.json names no class (COMET-DISTIL ships so),
    the model's config tells AutoTokenizer which class to build. --model_revision applies to the tokenizer only
    when it comes from the model's own repo (a separate tokenizer repo has revisions of its own)."""
    from transformers import AutoTokenizer

    name = model_args.tokenizer_name or model_args.model_name_or_path
    path = Path(name).expanduser()
    if model_args.tokenizer_name and (_looks_local(name) or name.count("/") > 1) and not path.is_dir():
        raise UserError(f"--tokenizer_name {name} does not exist; give the tokenizer dir (vocab.json + merges.txt, "
                        f"or tokenizer.json, or vocab.txt)")
    kwargs = dict(use_fast=model_args.use_fast_tokenizer, **_hub_kwargs(model_args))
    if name != model_args.model_name_or_path:
        kwargs.pop("revision")
    hint = "A tokenizer dir needs tokenizer.json, or vocab.json + merges.txt (GPT-2), or vocab.txt (BERT)"
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except Exception as first_error:  # noqa: BLE001 - AutoTokenizer raises many types here
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, config=config, **kwargs)
        except Exception:  # noqa: BLE001
            first = (str(first_error).strip().splitlines() or [type(first_error).__name__])[0]
            raise UserError(f"cannot read a tokenizer from {name}: {first}. {hint}") from None
    # transformers 5 builds an empty tokenizer from a dir without vocabulary files instead of failing
    if len(tokenizer.get_vocab()) <= len(tokenizer.all_special_tokens):
        raise UserError(f"the tokenizer read from {name} has no vocabulary (no tokenizer files there); {hint}, "
                        f"or pass --tokenizer_name")
    return tokenizer


RANDOM_INIT_SEED = 1234  # --random_init draws the base's weights from this torch seed (any fixed one)
DISTINCT_PAD = "<|pad|>"  # added when the EOS must be pooled and the pad would otherwise be the EOS


def ensure_pad_token(tokenizer, pad_token=None, append_eos=False) -> bool:
    """Give the tokenizer the pad that makes the head read the position of the pooling rule. Returns True when
    the vocabulary grew.

    Without --append_eos the head reads the last token of the text, whatever the pad: a tokenizer without one
    gets pad = EOS (an EOS is added first if there is none). With --append_eos the head must read the appended
    EOS, and a GPT-2-style head reads the rightmost token that is *not* the pad: with pad = EOS it would read the
    token before the EOS. So then a tokenizer whose pad is missing or equals the EOS gets a distinct pad
    (`pad_token`, else DISTINCT_PAD). Both models of a comparison (GPT-2 XL without a pad, COMET-DISTIL with its
    own) then read the same position of the same text."""
    before = len(tokenizer)
    if tokenizer.eos_token is None and (append_eos or (tokenizer.pad_token is None and not pad_token)):
        tokenizer.add_special_tokens({"eos_token": "<|endoftext|>"})
    if append_eos and (tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id):
        tokenizer.add_special_tokens({"pad_token": pad_token or DISTINCT_PAD})
    elif tokenizer.pad_token is None:
        if pad_token:
            tokenizer.add_special_tokens({"pad_token": pad_token})
        else:
            tokenizer.pad_token = tokenizer.eos_token
    return len(tokenizer) > before


def load_model(model_args, config, tokenizer):
    """(model, head_loaded): a *ForSequenceClassification; head_loaded is True when every head tensor came from
    the checkpoint (a saved classifier), False when the head is new (a causal-LM checkpoint such as
    COMET-DISTIL, or a base model)."""
    from transformers import AutoModelForSequenceClassification

    if model_args.random_init:
        # the control: this architecture and tokenizer with random weights, drawn from a fixed seed so that every
        # seed's head probes the same random base (and the feature cache serves them all)
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_INIT_SEED)
            model = AutoModelForSequenceClassification.from_config(config)
        return _fit_embeddings(_held_as(model, model_args.base_dtype), tokenizer), False
    model, info = _from_pretrained(
        AutoModelForSequenceClassification.from_pretrained, model_args.model_name_or_path, "the model",
        config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, output_loading_info=True,
        **_hub_kwargs(model_args), **big_model_kwargs(model_args), **base_dtype_kwargs(model_args))
    fresh = set(info.get("missing_keys", ())) | {k[0] if isinstance(k, tuple) else k
                                                 for k in info.get("mismatched_keys", ())}
    if model_args.device_map:
        _head_on_cpu(model)
    head_names = set(head_state_dict(model))
    return _fit_embeddings(_held_as(model, model_args.base_dtype), tokenizer), not (head_names & fresh)


def base_dtype_kwargs(model_args) -> dict:
    """--base_dtype bfloat16: the weights are cast tensor by tensor as they load (never a float32 copy of the whole
    base in memory); float32 loads as before (the checkpoint's own dtype)."""
    return {"dtype": torch.bfloat16} if model_args.base_dtype == "bfloat16" else {}


def _held_as(model, base_dtype):
    """The base in `base_dtype` (bfloat16: the random-init control is drawn in float32, then rounded), the head in
    float32 whatever the base: it trains, and the cached path feeds it float32 features."""
    if base_dtype == "bfloat16":
        if not is_split(model):
            model.base_model.to(torch.bfloat16)
        for module in head_modules(model).values():
            module.float()
    return model


def big_model_kwargs(model_args) -> dict:
    """--device_map / --max_memory / --offload_folder: accelerate's big-model loading, the base split over the GPUs,
    the CPU and (past --max_memory) the disk, for the cached path's frozen forward."""
    if not model_args.device_map:
        return {}
    memory = {}
    for item in model_args.max_memory or []:
        device, _, amount = item.partition("=")
        memory[int(device) if device.isdigit() else device] = amount
    return {"device_map": model_args.device_map, "max_memory": memory or None,
            "offload_folder": model_args.offload_folder}


def _head_on_cpu(model):
    """A split model's head as a plain CPU module (its weights onloaded, accelerate's hooks removed): the cached
    path copies it per seed and trains the copies; only the base runs split."""
    from accelerate.utils import align_module_device

    for module in head_modules(model).values():
        try:
            with align_module_device(module, "cpu"):
                state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        except KeyError:  # a head the checkpoint lacks has no offloaded weights: it is new, initialised below
            state = None
        compat.drop_hooks(module)  # without onloading (a new head has nothing to onload)
        module.to_empty(device="cpu")
        if state is None:
            compat.init_weights(model, module)
        else:
            module.load_state_dict(state)


def is_split(model) -> bool:
    """Whether accelerate placed the model over devices (--device_map): it must not be moved as a whole."""
    return bool(getattr(model, "hf_device_map", None))


def input_device(model) -> torch.device:
    """Where a split model's first layer runs (its inputs go there)."""
    hook = compat.hf_hook(model.get_input_embeddings())
    device = getattr(hook, "execution_device", None)
    return torch.device(device if device is not None else "cpu")


def _fit_embeddings(model, tokenizer):
    """The model with an embedding row for every tokenizer id and the tokenizer's pad id."""
    # resize only when the tokenizer has ids the embedding matrix lacks (a resize changes the fingerprint); the new
    # rows (a pad, an EOS we added) start at zero, not random: the same model loads with the same fingerprint
    # whatever the seed, and a pad row is never read at the pooled position anyway
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows and is_split(model):
        raise UserError(f"the tokenizer has {len(tokenizer) - rows} token(s) the model's embeddings lack, and a model "
                        f"split by --device_map cannot be resized; save the resized model once without --device_map "
                        f"(load, resize_token_embeddings, save_pretrained) and pass that")
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight[rows:] = 0
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_head(heads: dict, state: dict, where: str):
    """Put a saved head (tensors under the model's own names) into the head modules; refuse another shape."""
    own = head_state_dict(heads)
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise UserError(f"{where} holds a head of another shape ({', '.join(f'{k} {tuple(v.shape)}' for k, v in state.items())}"
                        f"; this model and task need {', '.join(f'{k} {tuple(v.shape)}' for k, v in own.items())})")
    with torch.no_grad(), gathered((p for m in heads.values() for p in m.parameters()), modify=True):
        for name, module in heads.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


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


class CachedHead(nn.Module):
    """The model's own head modules applied to cached pooled features, with the model's own loss.
    Parameter names are the model's (`heads.score.weight` <-> `score.weight`)."""

    def __init__(self, modules: dict, rule: str, source_model):
        super().__init__()
        self.heads = nn.ModuleDict(modules)
        self.rule = rule
        # the Trainer reads config (label smoothing checks problem_type) and scales the loss under gradient
        # accumulation by whether the model takes loss kwargs: answer as the full model would
        self.config = source_model.config
        self.num_labels, self.problem_type = self.config.num_labels, self.config.problem_type
        self.accepts_loss_kwargs = getattr(source_model, "accepts_loss_kwargs", any(
            p.kind == inspect.Parameter.VAR_KEYWORD for p in inspect.signature(source_model.forward).parameters.values()))

    def floating_point_ops(self, inputs) -> int:
        """What Trainer counts as total_flos: forward + backward of the head (6 x rows x parameters)."""
        return 6 * inputs["features"].shape[0] * sum(p.numel() for p in self.parameters())

    def forward(self, features, labels=None, **loss_kwargs):
        # loss_kwargs (num_items_in_batch) are ignored, as *ForSequenceClassification's own losses ignore them
        if self.rule == "pooler":          # BertForSequenceClassification: dropout, classifier
            logits = self.heads["classifier"](self.heads["dropout"](features))
        elif self.rule == "first_token":   # RobertaClassificationHead reads position 0 of a sequence
            logits = self.heads["classifier"](features[:, None, :])
        else:
            logits = self.heads["score"](features)
        loss = None
        if labels is not None:
            if self.problem_type == "regression":
                loss = nn.functional.mse_loss(logits.squeeze(), labels.squeeze())
            else:
                loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return {"loss": loss, "logits": logits} if loss is not None else {"logits": logits}

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
        self.labels = None if labels is None else torch.tensor(labels, dtype=torch.float32 if regression else torch.long)

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
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def max_positions(config):
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
