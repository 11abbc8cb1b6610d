"""Representation drift, base -> specialized: debiased linear CKA between two models' cached features of the same
validation rows, layer by layer. Reads the feature cache only (cache.py's model.json says which fingerprint is
which model; cache_layout.py reads an entry without torch). Must not run a model or write files."""

import json
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


def _shared_setting(cache_dir, task, base, derived, split):
    """(name a, name b, {layer: path} of a, {layer: path} of b) at the rows setting both models were cached with."""
    (a, fa), (b, fb) = find_model(cache_dir, base, task, split), find_model(cache_dir, derived, task, split)
    sa, sb = _by_setting(fa, task, split), _by_setting(fb, task, split)
    shared = [s for s in sa if s in sb]
    if not shared:
        raise UserError(f"the cached {task} {split} features of {a} and {b} are of different rows or inputs "
                        f"(data, max_seq_length, padding or --append_eos differ); extract both from the same data "
                        f"with the same settings")
    setting = max(shared, key=lambda s: len(sa[s]) * len(sb[s]))  # the setting with most layers cached
    return a, b, sa[setting], sb[setting], _top(fa), _top(fb)


def _top(folder):
    """A fingerprint folder's top layer (model.json), None when it predates the record."""
    try:
        return json.loads((Path(folder) / cache_layout.MODEL_FILE).read_text()).get("top_layer")
    except (OSError, ValueError):
        return None


def _features(path):
    return np.asarray(cache_layout.read_array(path), dtype=np.float32)


def layer_drift(cache_dir, task, base, derived, split="validation") -> pd.DataFrame:
    """One row per compared pair of layers: base, derived, layer, derived_layer, cka, rows. Two models of the same
    depth: each layer against the same layer. Of different depths (a distilled student, say), layers are never
    paired by index: the one row is top layer against top layer (cka_matrix gives every pair)."""
    a, b, la, lb, top_a, top_b = _shared_setting(cache_dir, task, base, derived, split)
    columns = ["base", "derived", "layer", "derived_layer", "cka", "rows"]
    if top_a != top_b:
        if top_a not in la or top_b not in lb:
            raise UserError(f"{a} and {b} have different depths ({top_a} and {top_b} layers) and their top layers "
                            f"are not both cached for {task}; rerun both with the feature cache")
        pairs = [(top_a, top_b)]
    else:
        pairs = [(layer, layer) for layer in sorted(set(la) & set(lb))]
    rows = []
    for i, j in pairs:
        x, y = _features(la[i]), _features(lb[j])
        rows.append({"base": a, "derived": b, "layer": i, "derived_layer": j, "cka": linear_cka(x, y),
                     "rows": x.shape[0]})
    return pd.DataFrame(rows, columns=columns)


def depths_differ(cache_dir, task, base, derived, split="validation") -> bool:
    a, b, la, lb, top_a, top_b = _shared_setting(cache_dir, task, base, derived, split)
    return top_a != top_b


def cka_matrix(cache_dir, task, base, derived, split="validation") -> pd.DataFrame:
    """Every base layer against every derived layer (Kornblith et al. 2019's layer x layer figures): rows are the
    base's cached layers, columns the derived model's, values the debiased linear CKA. Which student layer matches
    which teacher layer, whatever their depths."""
    a, b, la, lb, _, _ = _shared_setting(cache_dir, task, base, derived, split)
    ys = {j: _features(lb[j]) for j in sorted(lb)}
    matrix = {i: {j: linear_cka(_features(la[i]), y) for j, y in ys.items()} for i in sorted(la)}
    return pd.DataFrame(matrix).T.rename_axis(index=f"{a} layer", columns=f"{b} layer")
