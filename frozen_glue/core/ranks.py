"""Which process of a multi-process launch (torchrun, the deepspeed launcher, accelerate) this is, read from the
variables the launcher sets. The one reader of those variables; the arguments read it before any process group
exists, so it must not import torch. Must not start or join anything (sharding.py does)."""

import os

# what torchrun / the deepspeed launcher / accelerate set to make a process one rank of several
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "ROLE_WORLD_SIZE", "CROSS_RANK", "CROSS_SIZE", "LOCAL_SIZE")


def rank(local: bool = False) -> int:
    """This process's rank among the launch's processes (LOCAL_RANK: among this node's); 0 when it is not launched
    as one of several. The one reader of the launcher's rank variables."""
    return int(os.environ.get("LOCAL_RANK" if local else "RANK", "0"))


def world() -> tuple:
    """(rank, number of ranks) of this process; (0, 1) when it is not launched as one of several."""
    return rank(), int(os.environ.get("WORLD_SIZE", "1"))
