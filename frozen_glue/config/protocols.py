"""Named study protocols, as declarative tables: the flags a protocol adds to every run, each with its source.
Must not run anything; the sweep applies a protocol (PROTOCOL=thesis) and docs/sweep.md prints the table."""

from frozen_glue.core.errors import UserError

# The thesis (GPT-2 XL vs COMET-DISTIL, 2 GPUs, DeepSpeed) ran upstream run_glue.py with the base frozen. Where it
# says nothing (learning rate, batch, epochs, length), upstream's documented GLUE example decides.
THESIS_GLOBAL_BATCH = 64  # 2 GPUs x 32 per device, upstream's example batch on the thesis' two GPUs
THESIS = (
    # (flags, value shown, source)
    (["--max_seq_length", "128"], "128", "upstream run_glue README GLUE example (thesis silent)"),
    (["--pad_to_max_length"], "pad every input to 128", "upstream run_glue.py's default of the thesis' time"),
    (["--learning_rate", "2e-5"], "2e-5", "upstream run_glue README GLUE example (thesis silent)"),
    (["--num_train_epochs", "3"], "3", "upstream run_glue README GLUE example (thesis silent)"),
    (["--base_dropout"], "dropout on in the frozen base",
     "the thesis froze parameters under the Trainer, which puts the whole model in train mode"),
    ([], f"global batch {THESIS_GLOBAL_BATCH}", "32 per device (upstream example) x the thesis' 2 GPUs; kept on any "
                                                "GPU count through per-device batch x gradient accumulation"),
    ([], "seeds 1-5, each its own run", "the thesis: 5 runs per task with different random seeds"),
    ([], "DeepSpeed launcher, ds_configs/zero2.json", "the thesis used DeepSpeed on 2 GPUs (its config is not "
                                                      "published; ours leaves optimizer and schedule to the Trainer)"),
)


def batch_split(processes: int, global_batch: int = THESIS_GLOBAL_BATCH, per_device_max: int = 32):
    """(per-device batch, gradient accumulation) that make `global_batch` on `processes` processes."""
    if processes < 1 or global_batch % processes:
        raise UserError(f"{processes} process(es) cannot make the thesis' global batch of {global_batch}; use 1, 2, "
                        f"4, 8, 16, 32 or 64 GPUs (NUM_GPUS)")
    per_process = global_batch // processes
    per_device = min(per_device_max, per_process)
    return per_device, per_process // per_device


def thesis_args(processes: int) -> list:
    """The flags PROTOCOL=thesis adds to every run on `processes` processes (GPUs, or 1 on a CPU machine)."""
    per_device, accumulation = batch_split(processes)
    flags = [f for row in THESIS for f in row[0]]
    return flags + ["--per_device_train_batch_size", str(per_device), "--gradient_accumulation_steps",
                    str(accumulation)]


PROTOCOLS = {"thesis": thesis_args}
