"""Every check of run_glue_frozen.py's parsed arguments that needs no data or model (validate), and those that need
the task (check_against_task): each bad combination is one UserError saying how to fix it. Must not load data or
models, parse command lines (arguments.py) or decide which flags the cached path covers (contract.py)."""

from pathlib import Path

from frozen_glue.config import adapters
from frozen_glue.config.contract import POOLING_RULES
from frozen_glue.core.errors import UserError
from frozen_glue.core.layout import check_writable


def validate(model_args, data_args, study_args, args):
    """Every check that needs only the arguments: done before any data or model is loaded."""
    if not data_args.task_name:
        raise UserError("--task_name is required: one of cola sst2 mrpc stsb qqp mnli qnli rte wnli")
    if not args.output_dir:
        raise UserError("--output_dir is required (e.g. runs/<model>/<task>/seed<N>)")
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise UserError(f"--output_dir {args.output_dir} is a file; give a folder (it is created if missing)")
    check_writable(args.output_dir, "--output_dir")  # before config.json: a run that cannot write leaves nothing
    if study_args.feature_cache:
        check_writable(study_args.feature_cache, "--feature_cache")
    adapters.resolve(model_args)  # an adapter whose base is missing: refused here, before anything is written
    if not (args.do_train or args.do_eval or args.do_predict):
        raise UserError("nothing to do: pass --do_train, --do_eval and/or --do_predict")
    for name in ("max_train_samples", "max_eval_samples", "max_predict_samples", "max_seq_length"):
        value = getattr(data_args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} {value}: give a positive number")
    if study_args.zero_shot:
        validate_zero_shot(data_args, args)
    elif study_args.zero_shot_chat_template:
        raise UserError("--zero_shot_chat_template applies to --zero_shot runs; add --zero_shot, or drop it")
    if not zero_shot_only(model_args, study_args, args):  # a zero-shot-only run trains no probe: its flags idle
        validate_study(model_args, study_args, args)
    if data_args.glue_dir and (data_args.train_file or data_args.validation_file or data_args.test_file):
        raise UserError("--glue_dir and --train_file/--validation_file/--test_file name two data sources; "
                        "pass one of them")
    if data_args.dataset_name and (data_args.glue_dir or data_args.train_file or data_args.validation_file):
        raise UserError("--dataset_name and --glue_dir/--train_file name two data sources; pass one of them")
    wanted = [r for r in args.report_to if r != "none"]
    if wanted:
        from transformers.integrations import get_available_reporting_integrations

        missing = [r for r in wanted if r not in get_available_reporting_integrations()]
        if missing:
            raise UserError(f"--report_to {' '.join(missing)}: not installed here (pip install {missing[0]}), or "
                            f"drop it; W&B is installed with the requirements")
    if model_args.head_from and args.do_train:
        raise UserError("--head_from evaluates a trained head; with --do_train the head is trained anew. "
                        "Drop one of them")


def zero_shot_only(model_args, study_args, args) -> bool:
    """--zero_shot without a probe to train (--do_train) or evaluate (--head_from): only the zero-shot run."""
    return study_args.zero_shot and not args.do_train and not model_args.head_from


def validate_zero_shot(data_args, args):
    """--zero_shot's checks that need only the arguments (the model's causal-LM head: zeroshot.check_model)."""
    import importlib.util

    if data_args.task_name.lower() == "stsb":
        raise UserError("--zero_shot: lm-eval has no zero-shot STS-B task (a similarity score is not a choice "
                        "between answers); drop --zero_shot for stsb")
    if not args.do_eval:
        raise UserError("--zero_shot scores the validation rows: add --do_eval")
    if importlib.util.find_spec("lm_eval") is None:
        raise UserError("--zero_shot needs lm-eval, which is not installed here: pip install lm-eval==0.4.13 "
                        "(pinned in requirements.txt)")


def validate_study(model_args, study_args, args):
    """The checks of our own study flags: the feature cache, probed layers, head grids and probes."""
    validate_device_map(model_args, study_args)
    if study_args.feature_dtype not in ("float32", "float16"):
        raise UserError(f"--feature_dtype {study_args.feature_dtype}: use float32 or float16")
    if study_args.verify_cache not in ("stamp", "full"):
        raise UserError(f"--verify_cache {study_args.verify_cache}: use stamp or full")
    validate_base_dtype(model_args, study_args)
    if study_args.probe_layers:
        if not study_args.feature_cache:
            raise UserError("--probe_layers needs --feature_cache DIR (layers are probed from cached features)")
        spec = study_args.probe_layers
        if not (spec in (["all"], ["last"]) or all(s.lstrip("-").isdigit() for s in spec)):
            raise UserError(f"--probe_layers {' '.join(spec)}: give 'all', 'last' or layer indices such as 0 6 12")
    grid = (study_args.head_learning_rates or []) + (study_args.head_weight_decays or [])
    if grid or study_args.probe != "head":
        what = "--probe logistic" if study_args.probe != "head" else "--head_learning_rates/--head_weight_decays"
        if not study_args.feature_cache:
            raise UserError(f"{what} needs --feature_cache DIR (it trains many heads on cached features)")
        if not args.do_train:
            raise UserError(f"{what} trains heads: add --do_train")
    if study_args.pooling not in POOLING_CHOICES:
        raise UserError(f"--pooling {study_args.pooling}: use one of {', '.join(POOLING_CHOICES)}")
    if study_args.pooling != "auto" and not study_args.feature_cache:
        raise UserError(f"--pooling {study_args.pooling} reads other positions than the model's own head, which only "
                        f"the cached path can: add --feature_cache DIR (or use --pooling auto)")
    validate_head_inputs(model_args, study_args, args)
    for flag in ("probe_mdl", "probe_control"):
        cached_heads = study_args.feature_cache and args.do_train and study_args.probe == "head"
        if getattr(study_args, flag) and not cached_heads:
            raise UserError(f"--{flag} trains the run's heads on cached features: it needs --feature_cache DIR, "
                            f"--do_train and --probe head")
    if study_args.probe not in ("head", "logistic"):
        raise UserError(f"--probe {study_args.probe}: use head or logistic")
    if any(v <= 0 for v in study_args.head_learning_rates or []) or \
            any(v < 0 for v in study_args.head_weight_decays or []):
        raise UserError("--head_learning_rates takes positive numbers and --head_weight_decays numbers >= 0, "
                        "e.g. --head_learning_rates 1e-4 1e-3 1e-2 --head_weight_decays 0 0.01")
    if study_args.probe != "head" and model_args.save_full_model:
        raise UserError("--save_full_model saves a transformers model with its own head; --probe logistic has no "
                        "such head (its coefficients are in head.safetensors): drop one of them")
    if grid and study_args.probe != "head":
        raise UserError("--probe logistic chooses its own regularisation; drop --head_learning_rates/"
                        "--head_weight_decays")
    if not 0 < study_args.selection_fraction <= 0.5:
        raise UserError(f"--selection_fraction {study_args.selection_fraction}: give a share of train rows in (0, 0.5]")
    if study_args.extraction_tokens_per_batch is not None and study_args.extraction_tokens_per_batch < 1:
        raise UserError(f"--extraction_tokens_per_batch {study_args.extraction_tokens_per_batch}: give a positive "
                        f"number of tokens")
    if study_args.extraction_batch_size < 1:
        raise UserError(f"--extraction_batch_size {study_args.extraction_batch_size}: give a positive number")


def validate_head_inputs(model_args, study_args, args):
    """--standardize_features and --probe_convex: cached-path head flags."""
    if study_args.standardize_features:
        if not study_args.feature_cache:
            raise UserError("--standardize_features standardises cached features: add --feature_cache DIR (the "
                            "Trainer path feeds the head the base's raw output)")
        if study_args.probe != "head":
            raise UserError("--probe logistic standardises its features itself; drop --standardize_features")
        if model_args.save_full_model:
            raise UserError("--save_full_model saves a transformers model with its own head, which cannot hold "
                            "the standardisation; drop one of them (head.safetensors holds the head and its "
                            "standardize.mean / standardize.scale)")
    if study_args.probe_convex and not (study_args.feature_cache and args.do_train and args.do_eval
                                        and study_args.probe == "head"):
        raise UserError("--probe_convex scores a trained head beside a convex probe on the same cached features: "
                        "it needs --feature_cache DIR, --do_train, --do_eval and --probe head")


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
POOLING_CHOICES = ("auto", *POOLING_RULES)  # auto: the model's own head; pooling.py maps the others to rules


def validate_device_map(model_args, study_args):
    """--device_map splits the frozen base for the cached path's forward; nothing else may need the whole model
    (under a multi-process launcher it is refused by parse_args, before the process group starts)."""
    if not model_args.device_map:
        if model_args.max_memory or model_args.offload_folder:
            raise UserError("--max_memory/--offload_folder place a split model: add --device_map auto")
        return
    if model_args.device_map not in DEVICE_MAPS:
        raise UserError(f"--device_map {model_args.device_map}: use {', '.join(DEVICE_MAPS)}")
    if not study_args.feature_cache:
        raise UserError("--device_map splits the frozen base for the cached path's forward; add --feature_cache DIR "
                        "(the Trainer path trains the model as one piece: drop --device_map there)")
    if model_args.random_init or model_args.save_full_model:
        flag = "--random_init" if model_args.random_init else "--save_full_model"
        raise UserError(f"{flag} needs the whole model in one place; drop --device_map for it")
    for item in model_args.max_memory or []:
        device, sep, amount = item.partition("=")
        if not sep or not amount or not (device.isdigit() or device in ("cpu", "mps")):
            raise UserError(f"--max_memory {item}: give DEVICE=AMOUNT pairs such as 0=70GiB cpu=200GiB")


def validate_base_dtype(model_args, study_args):
    """--base_dtype bfloat16 holds the frozen base for the cached path's forward only: a Trainer-path model would feed
    bfloat16 hidden states to a float32 head (refused here when no cache is given, in run.execute when the cache
    cannot serve the run)."""
    if model_args.base_dtype not in ("float32", "bfloat16"):
        raise UserError(f"--base_dtype {model_args.base_dtype}: use float32 or bfloat16")
    if model_args.base_dtype == "bfloat16" and not study_args.feature_cache:
        raise UserError("--base_dtype bfloat16 holds the frozen base for the cached path's forward; add "
                        "--feature_cache DIR (on the Trainer path use --bf16 autocast instead)")


def check_against_task(args, task, study_args=None):
    """Checks that need the task (regression or not)."""
    if study_args is not None and study_args.probe_mdl and task.is_regression:
        raise UserError(f"--probe_mdl: {task.name} is a regression task (the online code sends class labels); drop "
                        f"--probe_mdl for {task.name}")
    if args.label_smoothing_factor and task.is_regression:
        raise UserError(f"--label_smoothing_factor: {task.name} is a regression task (no classes to smooth); "
                        f"drop the flag for {task.name}")
