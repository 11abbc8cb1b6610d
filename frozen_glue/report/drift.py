"""Representation drift, base -> specialized: debiased linear CKA between two models' cached features of the same
validation rows, layer by layer. Reads the feature cache only (cache.py's model.json says which fingerprint is
which model; cache_layout.py reads an entry without torch). Must not run a model or write files."""

from pathlib import Path

import numpy as np
import pandas as pd

from frozen_glue.core.errors import UserError
from frozen_glue.features import cache_layout
from frozen_glue.measures.stats import linear_cka

# the parts of a cache key that must agree for two models' features to describe the same rows the same way
SAME_ROWS = ("data", "max_seq_length", "pad_to_max_length", "append_eos")


def find_model(cache_dir, model, task, split="validation"):
    """(name, fingerprint folder) of a model in the cache: `model` is a models-file entry (models_file.Model), a model
    name or path as given to --model_name_or_path, or a fingerprint folder."""
    if isinstance(model, (str, Path)) and (Path(cache_dir) / str(model) / cache_layout.MODEL_FILE).is_file():
        return str(model), Path(cache_dir) / str(model)
    path, tokenizer, random_init, name = (model.path, model.tokenizer, "--random_init" in model.flags, model.alias) \
        if not isinstance(model, (str, Path)) else (str(model), None, False, str(model))
    cached = cache_layout.models_in(cache_dir)
    found = [m for m in cached
             if m.get("model_name_or_path") == path and bool(m.get("random_init")) == random_init
             and (tokenizer is None or m.get("tokenizer_name") == tokenizer)
             and cache_layout.layer_entries(m["folder"], task, split)]
    found = list({m["folder"]: m for m in found}.values())  # two names of the same weights: one folder
    if not found and isinstance(model, (str, Path)) and not any(m.get("model_name_or_path") == path for m in cached):
        # not a features problem: the name is neither a model of the cache nor an alias of the models file read
        names = sorted({str(m.get("model_name_or_path")) for m in cached}) or ["nothing"]
        raise UserError(f"{name} is neither an alias of the models file read (--models_file) nor a model cached in "
                        f"{cache_dir} (it holds: {', '.join(names)}); pass the models file your sweep used, or one "
                        f"of those names")
    if not found:
        raise UserError(f"no cached {task} {split} features of {name} in {cache_dir}; make them with: python "
                        f"run_glue_frozen.py --model_name_or_path {path} --task_name {task} --do_train --do_eval "
                        f"--output_dir runs/{name}/{task} --feature_cache {cache_dir} --probe_layers all")
    if len(found) > 1:
        raise UserError(f"{cache_dir} holds {len(found)} cached variants of {name} for {task} (fingerprint folders "
                        f"{', '.join(m['folder'].name for m in found)}: other tokenizer or pad settings); pass the "
                        f"folder name of the one to compare instead of {name}")
    return name, found[0]["folder"]


def _by_setting(folder, task, split):
    """{rows setting: {layer: data path}} of one model's entries."""
    out = {}
    for meta, path in cache_layout.layer_entries(folder, task, split):
        if meta.get("layer") is None:
            continue  # an entry written before layers were recorded: its layer is unknown
        setting = tuple(str(meta["parts"].get(k)) for k in SAME_ROWS)
        out.setdefault(setting, {})[int(meta["layer"])] = path
    return out


def layer_drift(cache_dir, task, base, derived, split="validation") -> pd.DataFrame:
    """One row per layer both models have: base, derived, layer, cka, rows."""
    (a, fa), (b, fb) = find_model(cache_dir, base, task, split), find_model(cache_dir, derived, task, split)
    sa, sb = _by_setting(fa, task, split), _by_setting(fb, task, split)
    shared = [s for s in sa if s in sb]
    if not shared:
        raise UserError(f"the cached {task} {split} features of {a} and {b} are of different rows or inputs "
                        f"(data, max_seq_length, padding or --append_eos differ); extract both from the same data "
                        f"with the same settings")
    setting = max(shared, key=lambda s: len(set(sa[s]) & set(sb[s])))  # the setting with most layers in common
    rows = []
    for layer in sorted(set(sa[setting]) & set(sb[setting])):
        x, y = (np.asarray(cache_layout.read_array(paths[layer]), dtype=np.float32) for paths in (sa[setting], sb[setting]))
        rows.append({"base": a, "derived": b, "layer": layer, "cka": linear_cka(x, y),
                     "rows": x.shape[0]})
    return pd.DataFrame(rows, columns=["base", "derived", "layer", "cka", "rows"])
