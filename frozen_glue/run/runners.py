"""The two ways a prepared run trains and evaluates its seeds: the Trainer path (the whole model under Trainer, as
upstream) and the cached path (the frozen base runs forward once into the feature cache; every seed's head trains
from the stored features). Must not load data or models (prepare.py) nor write files itself (writer.py)."""

import copy
import dataclasses
import logging

import numpy as np
import torch

from frozen_glue.config import contract
from frozen_glue.core import ranks
from frozen_glue.features import cache as feature_cache
from frozen_glue.features.cache_key import cache_parts
from frozen_glue.model import heads, placement, pooling, sharding
from frozen_glue.model.pooling import num_layers
from frozen_glue.run import writer
from frozen_glue.science import information_probes
from frozen_glue.training import cached_head, evaluation, head_training, logistic, selection
from frozen_glue.training.trainers import head_trainers, make_trainer, predict_split

logger = logging.getLogger(__name__)


def cache_reason(prep):
    """Why the feature cache cannot serve this run, or None."""
    if not prep.study_args.feature_cache:
        return "no --feature_cache"
    if not contract.base_fixed(prep.model_args):
        return "parts of the base train or run with dropout, so features change during training"
    changing = [f"--{k} ({why})" for k, why in contract.CHANGES_FEATURES.items() if getattr(prep.args, k, None)]
    if changing:
        return ", ".join(changing)
    prep.pooling_rule  # unsupported model types fail here, in one line
    return None


# -------------------------------------------------------------------------------------------------- Trainer path


def run_trainer_path(prep):
    """Each seed in turn: the model under Trainer (upstream's loop), then its run folder."""
    for seed, folder in prep.folders.items():
        args = prep.seed_args(seed, folder)
        reuse = prep.model_args.freeze_base and not prep.model_args.unfreeze_top_layers and not args.deepspeed
        model = prep.model if reuse or seed == prep.seeds[0] else prep.new_model()
        prep.init_heads(heads.head_modules(model), seed)
        trainer = make_trainer(prep, model, args, prep.tokenized.__getitem__, processing_class=prep.tokenizer,
                               data_collator=prep.collator)
        metrics = trainer.train().metrics if prep.args.do_train else None
        evaluated = evaluation.evaluate(prep, trainer, prep.tokenized.__getitem__)
        writer.finish(prep, seed, trainer, metrics, evaluated,
                      lambda: heads.head_state_dict(model), lambda path: trainer.save_model(path))


# --------------------------------------------------------------------------------------------------- cached path


def probed_layers(prep) -> list:
    """The layers whose heads train, ascending; always the top one (the run's own results)."""
    return pooling.probed_layers(prep.study_args.probe_layers, prep.config, prep.model_args.model_name_or_path)


def extract_features(prep, layers):
    """{split: {layer: pooled features of the frozen base}}, from the cache or by one forward pass over each
    split for all the layers missing from it. Under a multi-process launcher every rank extracts its share
    (sharding.py) and only rank 0 gets the features; the others get None."""
    if prep.args.deepspeed:
        logger.info("cached path: --deepspeed is not used (the base runs forward once and the head trains in one "
                    "process)")
    rank, size = ranks.world()
    placed = placement.is_split(prep.model)  # --device_map: accelerate placed it; inputs go to its first layer
    device = placement.input_device(prep.model) if placed else sharding.extraction_device(prep.args.use_cpu)
    if size > 1:
        sharding.join(device)
        logger.info(f"feature cache: extraction sharded over {size} ranks; the heads train on rank 0")
    if placed:
        logger.info(f"feature cache: the base is split by --device_map {prep.model_args.device_map} over "
                    f"{', '.join(sorted(set(map(str, prep.model.hf_device_map.values()))))}")
    else:
        prep.model.to(device)
    before = feature_cache.stats["base_forward_batches"]
    features = {}
    for split, ds in prep.tokenized.items():
        features[split] = feature_cache.cached_features(
            prep.study_args.feature_cache, prep.model, prep.model_fp, prep.task.name, split, ds, prep.collator,
            cache_parts(prep, split), layers=layers, top=num_layers(prep.config),
            rule=prep.pooling_rule,
            batch_size=prep.study_args.extraction_batch_size, device=device, autocast_dtype=prep.precision,
            tokens_per_batch=prep.study_args.extraction_tokens_per_batch, shard=(rank, size),
            store_dtype=getattr(torch, prep.study_args.feature_dtype), rebuild=prep.data_args.overwrite_cache,
            verify=prep.study_args.verify_cache,
            describe={"model_name_or_path": prep.model_args.model_name_or_path,
                      "tokenizer_name": prep.model_args.tokenizer_name, "random_init": prep.model_args.random_init})
    done = feature_cache.stats["base_forward_batches"] - before
    logger.info(f"feature cache: {done} base forward batches this run" + (" (all splits from cache)" if not done
                                                                          else ""))
    if not placed:
        prep.model.to("cpu")
    return features if rank == 0 else None


def layer_results(prep, trainer, data):
    """One probed layer's validation metrics for one seed (upstream's eval_ keys)."""
    out = {}
    for split in [s for s in prep.task.validation_splits if s in prep.raw]:
        output = predict_split(trainer, data(split))
        metrics, _ = evaluation.eval_outputs(prep.task, split, prep.raw[split], output)
        out.update({k: v for k, v in metrics.items() if not k.startswith("eval_samples")})
    return out


def choose_head_settings(prep, data, layers) -> dict:
    """--head_learning_rates / --head_weight_decays: every layer x setting x seed trained on the train split minus
    the hold-out cut (the same rows at every layer), scored on it; selection.py chooses per layer, so a lower layer
    is not judged with the setting that suits the top one. Returns what selection.json records: the top layer's
    choice as `chosen` / `grid`, every layer's under `layers`."""
    task, top = prep.task, num_layers(prep.config)
    labels = data[top]["train"].labels
    fit, hold = selection.holdout_split(labels.numpy(), prep.study_args.selection_fraction, task.is_regression)
    parts = {layer: {name: cached_head.FeatureDataset(cached_head.RowView(data[layer]["train"].features, rows),
                                                      labels[rows].tolist(), task.is_regression)
                     for name, rows in (("train", fit), ("hold", hold))} for layer in layers}
    # every layer x setting x seed in one stacked loop (each setting its own optimizer group, each seed its batches)
    runs = [((layer, lr, wd, seed), seed, dataclasses.replace(prep.seed_args(seed, folder), learning_rate=lr,
                                                              weight_decay=wd, eval_strategy="no"), layer)
            for layer in layers for lr, wd in selection.grid(prep.study_args, prep.args)
            for seed, folder in prep.folders.items()]
    trainers = head_trainers(prep, lambda key: parts[key[0]].__getitem__, runs)
    head_training.train_heads(list(trainers.values()), prep.fast_loop_fallback)
    predictions = {}
    for layer in layers:
        # the layer's hold-out rows copied out of the memory map once for all its settings x seeds, not once a head
        rows = parts[layer]["hold"]
        part = cached_head.FeatureDataset(rows.features.float(), rows.labels.tolist(), task.is_regression)
        for (at, lr, wd, seed), trainer in trainers.items():
            if at == layer:
                logits = np.asarray(predict_split(trainer, part).predictions)
                predictions.setdefault(layer, {}).setdefault((lr, wd), {})[seed] = \
                    logits.reshape(-1) if task.is_regression else logits.argmax(-1)
    hold_labels = labels[hold].numpy()
    chosen = {layer: selection.select(task, predictions[layer], hold_labels) for layer in layers}
    logger.info(f"head selection on {len(hold)} held-out train rows: at the top layer learning rate "
                f"{chosen[top]['chosen']['learning_rate']}, weight decay {chosen[top]['chosen']['weight_decay']}"
                + (f"; per layer {', '.join(str(c['chosen']['learning_rate']) for c in chosen.values())}"
                   if len(layers) > 1 else ""))
    return {**chosen[top], "selection_fraction": prep.study_args.selection_fraction, "fit_rows": len(fit),
            "holdout_rows": len(hold), "layers": {str(layer): c for layer, c in chosen.items()}}


def train_stacked(prep, layers, data, settings=None):
    """({(layer, seed): Trainer}, {(layer, seed): train metrics}): every layer x seed head trained together, each
    layer with its own chosen head setting (`settings`: {layer: {learning_rate, weight_decay}}) if any."""
    def args(layer, seed, folder):
        return dataclasses.replace(prep.seed_args(seed, folder), **(settings or {}).get(layer, {}))

    trainers = head_trainers(prep, lambda key: data[key[0]].__getitem__,
                             [((layer, seed), seed, args(layer, seed, folder), layer) for layer in layers
                              for seed, folder in prep.folders.items()])
    if not prep.args.do_train:
        return trainers, {}
    return trainers, dict(zip(trainers, head_training.train_heads(list(trainers.values()), prep.fast_loop_fallback)))


def fit_logistic(prep, layers, data):
    """The same for --probe logistic: one probe per layer, fitted once (it is deterministic: every seed's probe is
    the first one's)."""
    probes, metrics = {}, {}
    for layer in layers:
        probe = logistic.LogisticProbe(prep.task.is_regression)
        fitted = probe.fit(data[layer]["train"])
        for seed in prep.folders:
            probes[layer, seed], metrics[layer, seed] = probe, fitted
    return probes, metrics


def run_cached_path(prep):
    """Every seed's head (and every probed layer's) from the cached features, trained together
    (head_training.train_heads) — after choosing the head setting on a train hold-out when a grid is given, or
    as scikit-learn probes with --probe logistic; then each seed evaluated and written like a Trainer-path run,
    with layer_results.json / selection.json beside it."""
    layers, top = probed_layers(prep), num_layers(prep.config)
    features = extract_features(prep, layers)
    if ranks.world()[1] > 1:  # sharded extraction done: rank 0 goes on as one process, the others stop here
        args = sharding.leave(prep.args)
        if args is None:
            return
        prep = dataclasses.replace(prep, args=args)
    data = {layer: {s: cached_head.FeatureDataset(features[s][layer], None if s.startswith("test") else
                                                  list(prep.raw[s]["label"]), prep.task.is_regression)
                    for s in features} for layer in layers}
    chosen, settings, extra = None, {}, {}
    if prep.study_args.head_learning_rates or prep.study_args.head_weight_decays:
        chosen = choose_head_settings(prep, data, layers)
        settings = {int(layer): c["chosen"] for layer, c in chosen["layers"].items()}
        prep = dataclasses.replace(prep, args=dataclasses.replace(prep.args, **settings[top]))
        extra = {f"selected_{k}": v for k, v in settings[top].items()}
    if prep.study_args.probe == "logistic":
        trainers, metrics = fit_logistic(prep, layers, data)
    else:
        trainers, metrics = train_stacked(prep, layers, data, settings)
    information = information_probes.measure(prep, layers, data, trainers, settings)  # --probe_mdl, --probe_control
    for seed, folder in prep.folders.items():
        information_probes.write(folder, information[seed])
        if prep.study_args.probe_layers and prep.args.do_eval:
            writer.write_layer_results(folder, {layer: {
                **layer_results(prep, trainers[layer, seed], data[layer].__getitem__),
                **{f"selected_{k}": v for k, v in settings.get(layer, {}).items()}} for layer in layers})
        if prep.study_args.probe_layers and prep.study_args.probe != "logistic":
            writer.write_layer_heads(folder, {layer: trainers[layer, seed].model.model_state_dict()
                                              for layer in layers})
        if chosen:
            writer.write_selection(folder, chosen)
        trainer = trainers[top, seed]
        head_state = trainer.state_dict if prep.study_args.probe == "logistic" else trainer.model.model_state_dict
        evaluated = evaluation.evaluate(prep, trainer, data[top].__getitem__)
        writer.finish(prep, seed, trainer, metrics.get((top, seed)), evaluated, head_state,
                      lambda path, t=trainer: save_full_model(prep, t.model, path), extra)


def save_full_model(prep, head, path):
    """--save_full_model on the cached path: the frozen base with this seed's trained head, as one model."""
    model = copy.deepcopy(prep.model)
    heads.load_head(heads.head_modules(model), head.model_state_dict(), "the trained head")
    model.save_pretrained(path)
    prep.tokenizer.save_pretrained(path)
