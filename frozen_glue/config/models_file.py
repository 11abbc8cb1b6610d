"""The models file (launch/models.tsv): one model per line, its alias, path or hub id, tokenizer, extra flags,
reference name and base alias, read and checked into Model entries. Must not plan, launch or run anything."""

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from frozen_glue.config import adapters
from frozen_glue.core.errors import UserError
from frozen_glue.core.hub import is_local_path


@dataclass
class Model:
    alias: str
    path: str
    tokenizer: str | None
    flags: list
    reference: str | None = None  # its name in a --reference csv of published numbers (5th column), if any
    base: str | None = None       # the alias of the model it was specialized from (6th column), if any
    problem: str | None = None   # why this model cannot run (unset variable, missing dir), or None


def read_models(path) -> list:
    """`alias<TAB>model<TAB>tokenizer or -<TAB>extra flags<TAB>reference name or -<TAB>base alias or -` per line
    (the last three optional; an adapter's base alias is read from the adapter when left -); blank lines and #
    comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"models file {path} does not exist; set MODELS=FILE (see launch/models.tsv)")
    models = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) not in (3, 4, 5, 6) or not all(f.strip() for f in fields[:3]):
            raise UserError(f"{path}:{line_no}: expected 3 to 6 tab-separated fields (alias, model, tokenizer or -, "
                            f"extra flags, reference name or -, base alias or -), found {len(fields)}: {line!r}")
        alias, model, tokenizer = (f.strip() for f in fields[:3])
        for column, value in (("model", model), ("tokenizer", tokenizer)):
            if value.startswith("-") and value != "-":
                raise UserError(f"{path}:{line_no}: the {column} column holds {value!r}, a flag; flags go in the 4th "
                                f"column (alias, model, tokenizer or -, extra flags)")
        flags = shlex.split(os.path.expandvars(fields[3])) if len(fields) >= 4 else []
        reference, base = (fields[i].strip() if len(fields) > i and fields[i].strip() not in ("", "-") else None
                           for i in (4, 5))
        m = Model(alias, os.path.expandvars(model), None if tokenizer == "-" else os.path.expandvars(tokenizer), flags,
                  reference=reference, base=base)
        for value in (m.path, m.tokenizer or ""):
            if m.problem:  # the model's own column first: name one problem, the first
                break
            unset = re.search(r"\$\{?(\w+)", value)  # expandvars leaves unset variables in place
            if unset:
                m.problem = f"model {alias}: {unset.group(1)} is not set; export {unset.group(1)}=/path/to/the/model"
            elif is_local_path(value) and not Path(value).expanduser().exists():
                m.problem = f"model {alias}: {value} does not exist"
            elif value and not Path(value).expanduser().exists() and not hub_available(value):
                m.problem = (f"model {alias}: {value} is a hub id, HF_HUB_OFFLINE is set and it is not in the local "
                             f"HF cache; download it and put its local dir in {path}")
        models.append(m)
    if not models:
        raise UserError(f"models file {path} lists no model")
    if len({m.alias for m in models}) != len(models):
        raise UserError(f"models file {path}: aliases must be unique")
    unknown = [f"{m.alias} -> {m.base}" for m in models if m.base and m.base not in {n.alias for n in models}]
    if unknown:
        raise UserError(f"models file {path}: the base column names no model of the file ({', '.join(unknown)}); "
                        f"give the alias of another line, or -")
    for m in models:
        adapter_base(m, models, path)
    return models


def adapter_base(m: Model, models: list, path):
    """A PEFT adapter line's base column: left empty, it is the line whose model is the adapter's base
    (adapters.base_of: adapter_config.json, or the line's --adapter_base); given, it must be that line."""
    if m.problem or not adapters.is_adapter(m.path):
        return
    flags = dict(zip(m.flags[::2], m.flags[1::2]))
    own = adapters.base_of(m.path, flags.get("--adapter_base"))
    same = [n.alias for n in models if n is not m and _same_model(n.path, own)]
    if m.base is None:
        m.base = same[0] if same else None
    elif m.base not in same:
        base_path = next(n.path for n in models if n.alias == m.base)
        raise UserError(f"models file {path}: {m.alias} is an adapter of {own}, but its base column names "
                        f"{m.base} ({base_path}); leave the column empty (-) or give the line of {own}")


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.resolve() == pb.resolve() if pa.exists() and pb.exists() else a == b


def hub_available(repo_id) -> bool:
    """True unless HF_HUB_OFFLINE is set and the model's config is not in the local HF cache (online, whether the
    hub answers is found out by the run itself, lazily)."""
    from huggingface_hub import try_to_load_from_cache

    from frozen_glue.core.hub import hub_offline

    try:
        return not hub_offline() or isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # huggingface_hub's HFValidationError: not a possible hub id (spaces, '--', ...)
        raise UserError(f"{repo_id!r} is neither an existing folder nor a valid hub id (namespace/name)") from None
