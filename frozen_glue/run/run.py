"""run_glue_frozen.py's command: parse (arguments.py), take the run folders' locks (locks.py), prepare the data
and model once (prepare.py), then run every seed on the cached or the Trainer path (runners.py), which write their
folders through writer.py. Must not decide flag policy, load data itself, or name files."""

import contextlib
import logging
import sys

import datasets
import transformers
from transformers import set_seed

from frozen_glue.config import arguments, validation
from frozen_glue.core import compat, layout, lifetime, ranks
from frozen_glue.core.errors import UserError, run_cli, setup_logging
from frozen_glue.core.locks import RunLock
from frozen_glue.model import pooling
from frozen_glue.run import runners, writer
from frozen_glue.run.prepare import prepare
from frozen_glue.science import zeroshot

logger = logging.getLogger(__name__)


def configure_logging(training_args):
    """Upstream's verbosity flags: --log_level (main process) / --log_level_replica (other ranks) set transformers',
    datasets' and our own level. Left 'passive', our progress shows on the main process only and the libraries
    keep their defaults."""
    main = ranks.rank() == 0
    chosen = training_args.log_level if main else training_args.log_level_replica
    if chosen == "passive":
        setup_logging(logging.INFO if main else logging.WARNING)
        return
    level = training_args.get_process_log_level()
    transformers.utils.logging.set_verbosity(level)
    datasets.utils.logging.set_verbosity(level)
    setup_logging(level)


def quiet_loading():
    """No progress bars for loading and tokenizing (a second on any model; they would bury a user error's one line
    on stderr). Training's progress bar stays (--disable_tqdm). The head's load status is logged by
    prepare.resolve_heads, so transformers' load report is not needed either."""
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
    # under torchrun every rank loads the whole frozen base (the cached path shards rows, not weights): transformers'
    # note that the model's tensor-parallel plan was not applied is about a mode this tool does not use
    logging.getLogger("transformers.distributed.tensor_parallel").setLevel(logging.ERROR)


def start_cpu_deepspeed(argv):
    """DeepSpeed on CPU over several processes (gloo): with --use_cpu the Trainer builds a plain CPU state and never
    starts DeepSpeed's communication, so DeepSpeed would count one process where the Trainer counts all of them
    (and refuse the batch sizes). Start DeepSpeed's process group first; on GPUs the Trainer does it itself."""
    if ranks.world()[1] > 1 and arguments.flag_set(argv, "deepspeed") and \
            arguments.flag_set(argv, "use_cpu"):
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo")


def execute(prep):
    """Every seed of a prepared run: config.json first (before extraction or training), then the path's runner."""
    reason = runners.cache_reason(prep)
    cached = reason is None
    for flag in ("probe_layers", "device_map", "pooling", "probe_mdl", "probe_control", "standardize_features",
                 "probe_convex"):
        value = getattr(prep.study_args, flag, None) or getattr(prep.model_args, flag, None)
        if not cached and value and not (flag == "pooling" and value == "auto"):  # --pooling auto: the model's own
            raise UserError(f"--{flag} needs the cached path, and the feature cache cannot serve this run: {reason}")
    if not cached and prep.model_args.base_dtype != "float32":
        raise UserError(f"--base_dtype {prep.model_args.base_dtype} needs the cached path, and the feature cache "
                        f"cannot serve this run: {reason}")
    if cached:
        runners.probed_layers(prep)  # a layer the model does not have is refused before any folder is written
    if prep.study_args.feature_cache and not cached:
        logger.info(f"feature cache not used: {reason}; running the Trainer path")
    trained_for, why = prep.trained_pooling
    if cached:
        logger.info(f"pooling: the head reads {pooling.pooled_position(prep.pooling_rule, prep.model_args.append_eos)} "
                    f"({prep.pooling_reason('cached')})")
    elif trained_for:
        logger.info(f"pooling: the Trainer path feeds the model's own head; {why}: add --feature_cache DIR to read "
                    f"{pooling.pooled_position(trained_for, prep.model_args.append_eos)}")
    if ranks.rank() == 0:  # one writer under a multi-process launcher
        for seed, folder in prep.folders.items():
            writer.start(prep, seed, folder, "cached" if cached else "trainer")
    (runners.run_cached_path if cached else runners.run_trainer_path)(prep)


def run_command(argv) -> int:
    """run_glue_frozen.py ARGV: parse, take the run folders' locks, run every seed."""
    lifetime.exit_on_signals()  # SIGTERM (the sweep ending, a scheduler) unwinds: the run's locks are removed
    quiet_loading()
    compat.check_versions()
    start_cpu_deepspeed(argv)
    model_args, data_args, study_args, training_args = arguments.parse_args(argv)
    configure_logging(training_args)
    set_seed(training_args.seed)
    only = validation.zero_shot_only(model_args, study_args, training_args)
    main = ranks.rank() == 0
    with contextlib.ExitStack() as locks:
        if main:  # one owner per folder, also under a multi-process launcher
            folders = [] if only else list(layout.seed_folders(training_args.output_dir, study_args.seeds,
                                                               training_args.seed).values())
            if study_args.zero_shot:
                folders.append(zeroshot.folder_for(training_args.output_dir, study_args.seeds))
            for folder in folders:
                locks.enter_context(RunLock(folder))
        if study_args.zero_shot and main:  # refused before the probe trains, not after
            zeroshot.check_ready(model_args, study_args, training_args)
        if not only:
            execute(prepare(model_args, data_args, study_args, training_args))
        if study_args.zero_shot and main:  # after the probe: its tokenizer and RNG draws are its own
            zeroshot.run(model_args, data_args, study_args, training_args)
    return 0


def main(argv=None) -> int:
    """The command line of run_glue_frozen.py; returns the exit code (2: a user error, in one line)."""
    return run_cli(run_command, sys.argv[1:] if argv is None else list(argv))
