"""The cached path under a multi-process launcher (torchrun, the deepspeed launcher): every rank runs the frozen
base forward on its own share of the extraction batches, rank 0 assembles the cache entries, then the process
group is left and rank 0 alone trains the heads and writes the run folders, as a single process would.
Must not decide what is extracted (cache.py) nor train anything.

Why one rank trains: the heads of every seed and layer train in one stacked loop in seconds; splitting them over
ranks would buy nothing, and the Trainer's distributed state (sharded dataloaders) would change their batches.
"""

import dataclasses
import logging
import os

import torch
import torch.distributed as dist

from frozen_glue.core import compat
from frozen_glue.core.ranks import LAUNCH_VARIABLES, rank, world

logger = logging.getLogger(__name__)

def extraction_device(use_cpu: bool) -> torch.device:
    """This rank's device for the base forward: its own GPU (LOCAL_RANK), or the CPU."""
    if use_cpu or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", rank(local=True))


def join(device: torch.device):
    """The process group of this launch (usually started already while parsing: TrainingArguments starts it)."""
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def barrier():
    if dist.is_initialized():
        dist.barrier()


def from_rank0(obj):
    """`obj` as rank 0 has it, on every rank (which cache entries are missing: rank 0 reads the cache)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def leave(args):
    """After extraction: every rank leaves the process group; the other ranks are done (None), rank 0 goes on as a
    single process (the launch variables removed, accelerate's state reset) with TrainingArguments rebuilt for one
    process: no DeepSpeed (the cached path never uses it), no local rank."""
    rank, _ = world()
    barrier()
    if dist.is_initialized():
        dist.destroy_process_group()
    if rank != 0:
        return None
    for name in LAUNCH_VARIABLES:
        os.environ.pop(name, None)
    compat.reset_accelerate_state()
    return dataclasses.replace(args, local_rank=-1, deepspeed=None)
