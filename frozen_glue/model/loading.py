"""Loading a model: its config, its tokenizer (and the pad/EOS rule), its weights from a hub id, a local dir or a
COMET-style LM checkpoint with a separate tokenizer dir; the base's dtype and big-model placement (--device_map).
Must not freeze, train or fingerprint the model, read data, write run folders, or decide where a head reads
(pooling.py; trained_pooling only reads a sentence-transformers model's own pooling files for it).
"""

import json
import math
from pathlib import Path

import torch

from frozen_glue.config import adapters
from frozen_glue.core import compat
from frozen_glue.core.errors import UserError
from frozen_glue.core.hub import hub_offline, is_local_path
from frozen_glue.model.heads import head_modules, head_state_dict
from frozen_glue.model.placement import is_split
from frozen_glue.model.pooling import sentence_transformers_rule


def check_model_location(name: str, what: str = "--model_name_or_path"):
    """Fail early, in one line, on a path that cannot hold a model."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{what} {name} has no config.json; point it at a saved Hugging Face model dir")
        return
    if is_local_path(name):
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

    model_args = adapters.resolve(model_args)[0]  # an adapter dir: its base's config
    check_model_location(model_args.config_name or model_args.model_name_or_path)
    kwargs = dict(num_labels=task.num_labels, finetuning_task=task.name,
                  problem_type="regression" if task.is_regression else "single_label_classification")
    if not task.is_regression:
        kwargs.update(id2label=dict(enumerate(task.label_names)),
                      label2id={n: i for i, n in enumerate(task.label_names)})
    return _from_pretrained(AutoConfig.from_pretrained, model_args.config_name or model_args.model_name_or_path,
                            "the model config", **kwargs, **_hub_kwargs(model_args))


def trained_pooling(model_args) -> tuple:
    """(rule or None, why) of the pooling a sentence-transformers model was trained to be read by: its modules.json
    names a Pooling module whose config.json gives the mode (local dir or hub snapshot, through transformers'
    cached_file, so an offline hub reads the local cache). (None, why) for any other model, or a mode the cache
    cannot read: --pooling auto then reads the model's own head."""
    from transformers.utils import cached_file

    name = adapters.resolve(model_args)[0].model_name_or_path

    def read(filename):
        try:
            path = cached_file(name, filename, cache_dir=model_args.cache_dir, revision=model_args.model_revision,
                               token=model_args.token, _raise_exceptions_for_missing_entries=False,
                               _raise_exceptions_for_connection_errors=False)
            return json.loads(Path(path).read_text()) if path else None
        except (OSError, ValueError):
            return None

    modules = read("modules.json")
    pooling = next((m for m in modules or [] if str(m.get("type", "")).endswith("models.Pooling")), None)
    if pooling is None:
        return None, "the model's own head"
    config = read(f"{pooling.get('path', '1_Pooling')}/config.json") or {}
    rule, mode = sentence_transformers_rule(config)
    if rule is None:
        return None, (f"its sentence-transformers pooling ({mode}) is not one the cache reads, so the model's own "
                      f"head")
    return rule, f"a sentence-transformers model trained for {mode} pooling ({pooling.get('path')}/config.json)"


def load_tokenizer(model_args, config):
    """AutoTokenizer; for a tokenizer dir whose tokenizer_config.json names no class (COMET-DISTIL ships so),
    the model's config tells AutoTokenizer which class to build. --model_revision applies to the tokenizer only
    when it comes from the model's own repo (a separate tokenizer repo has revisions of its own)."""
    from transformers import AutoTokenizer

    model_args = adapters.resolve(model_args)[0]  # an adapter dir: its own tokenizer files, else its base's
    name = model_args.tokenizer_name or model_args.model_name_or_path
    path = Path(name).expanduser()
    if model_args.tokenizer_name and is_local_path(name) and not path.is_dir():
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

    model_args, adapter = adapters.resolve(model_args)
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
    if adapter:
        model = attach_adapter(model, adapter)
    return _fit_embeddings(_held_as(model, model_args.base_dtype), tokenizer), not (head_names & fresh)


def attach_adapter(model, adapter_dir):
    """The base with a PEFT adapter merged into its weights (peft's merge_and_unload): the frozen forward costs what
    the base's costs. model.adapter_info records what the adapter is (kind, rank, targets, parameter counts)."""
    from peft import PeftConfig, PeftModel
    from safetensors import safe_open

    config = PeftConfig.from_pretrained(adapter_dir)
    config.task_type = None  # loaded into a *ForSequenceClassification, whatever task it was trained for
    base_parameters = sum(p.numel() for p in model.base_model.parameters())
    try:
        merged = PeftModel.from_pretrained(model, adapter_dir, config=config).merge_and_unload()
    except (ValueError, AttributeError, NotImplementedError) as e:
        raise UserError(f"the adapter {adapter_dir} ({config.peft_type}) cannot be merged into its base ({e}); "
                        f"merge it yourself (merge_and_unload, save_pretrained) and pass that model dir") from None
    for parameter in merged.parameters():  # as a plain load leaves them (peft froze all; freezing.py decides)
        parameter.requires_grad_(True)
    files = sorted(Path(adapter_dir).glob("adapter_model*.safetensors"))
    count = 0
    for path in files:
        with safe_open(path, "pt") as f:
            count += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    merged.adapter_info = {"dir": str(adapter_dir), "peft_type": str(config.peft_type).rsplit(".", 1)[-1],
                           "r": getattr(config, "r", None), "target_modules": sorted(config.target_modules)
                           if isinstance(config.target_modules, (set, list)) else config.target_modules,
                           "base": config.base_model_name_or_path, "adapter_parameters": count,
                           "base_parameters": base_parameters}
    return merged


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


def max_positions(config):
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
