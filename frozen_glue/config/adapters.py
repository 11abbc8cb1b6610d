"""A PEFT adapter dir as a model (`--model_name_or_path` or a models-file line naming a dir with
adapter_config.json and no config.json): its base comes from adapter_config.json's base_model_name_or_path, or from
--adapter_base when that names a hub id the user has a local copy of; its tokenizer is the adapter dir's when it
holds one, else the base's. resolve() turns the arguments into the base's (what every loader reads) plus the
adapter dir; loading.attach_adapter merges the adapter into the loaded base, so a run costs what the base costs.
Must not load models (reads JSON only)."""

import dataclasses
import json
from pathlib import Path

from frozen_glue.core.errors import UserError
from frozen_glue.core.hub import is_local_path

CONFIG = "adapter_config.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")
KINDS = {"LORA": "LoRA", "ADALORA": "AdaLoRA", "IA3": "IA³", "LOHA": "LoHa", "LOKR": "LoKr", "OFT": "OFT"}


def is_adapter(name) -> bool:
    """Whether `name` is a local PEFT adapter dir: adapter_config.json and no config.json of a whole model."""
    path = Path(str(name)).expanduser()
    return path.is_dir() and (path / CONFIG).is_file() and not (path / "config.json").is_file()


def read(adapter_dir) -> dict:
    try:
        return json.loads((Path(adapter_dir) / CONFIG).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{adapter_dir}/{CONFIG} cannot be read ({e}); point --model_name_or_path at a PEFT adapter "
                        f"dir saved with save_pretrained") from None


def base_of(adapter_dir, adapter_base=None) -> str:
    """The adapter's base model: --adapter_base when given (a local copy), else adapter_config.json's
    base_model_name_or_path; refused in one line when neither names one, or the named local dir is missing."""
    named = read(adapter_dir).get("base_model_name_or_path")
    base = adapter_base or named
    if not base:
        raise UserError(f"the adapter {adapter_dir} names no base model (base_model_name_or_path in {CONFIG}); pass "
                        f"--adapter_base DIR")
    path = Path(str(base)).expanduser()
    if is_local_path(str(base)) and not (path / "config.json").is_file():
        raise UserError(f"the adapter {adapter_dir}'s base {base} " + ("does not exist" if not path.exists() else
                        "has no config.json") + "; give a local copy of it with --adapter_base DIR")
    return str(base)


def resolve(model_args) -> tuple:
    """(the base's model arguments, the adapter dir or None): what every loader reads. The adapter's own tokenizer
    (a dir holding tokenizer files) is used unless --tokenizer_name names another."""
    if not is_adapter(model_args.model_name_or_path):
        if getattr(model_args, "adapter_base", None):
            raise UserError(f"--adapter_base: {model_args.model_name_or_path} is not a PEFT adapter dir (no {CONFIG} "
                            f"without a config.json); drop --adapter_base")
        return model_args, None
    adapter = model_args.model_name_or_path
    tokenizer = model_args.tokenizer_name
    if tokenizer is None and any((Path(adapter) / f).is_file() for f in TOKENIZER_FILES):
        tokenizer = adapter
    base = dataclasses.replace(model_args, model_name_or_path=base_of(adapter, model_args.adapter_base),
                               tokenizer_name=tokenizer, adapter_base=None)
    return base, adapter


def source_names(model_args) -> list:
    """The local dirs whose files make the model: the adapter's and its base's, or the model's alone."""
    base, adapter = resolve(model_args)
    return [adapter, base.model_name_or_path] if adapter else [model_args.model_name_or_path]


def describe(info: dict | None, base_name: str) -> str:
    """'A + LoRA (r 8, q_proj v_proj, 0.4 % of A's parameters)' of an adapter run's recorded `adapter` block."""
    if not info:
        return ""
    kind = KINDS.get(str(info.get("peft_type")).upper(), str(info.get("peft_type")))
    targets = info.get("target_modules") or []
    parts = [f"r {info['r']}" if info.get("r") else "", targets if isinstance(targets, str) else " ".join(sorted(targets))]
    share = 100 * info["adapter_parameters"] / info["base_parameters"] if info.get("base_parameters") else None
    if share is not None:
        parts.append(f"{share:.2g} % of {base_name}'s parameters")
    return f"{base_name} + {kind} ({', '.join(p for p in parts if p)})"
