#!/usr/bin/env python
"""Frozen-base GLUE: train only the classification head of a (possibly specialized) language model.

Takes upstream transformers `run_glue.py`'s flags and adds base freezing, COMET-style checkpoint + tokenizer
loading, per-example prediction dumps, several seeds per invocation, and a feature cache (the frozen base runs
forward once; every seed's head trains from the stored features). Writes the run folders of docs/DESIGN.md.

    python run_glue_frozen.py --model_name_or_path gpt2-xl --task_name cola --do_train --do_eval \\
        --output_dir runs/gpt2-xl/cola/seed1 --seed 1
    python run_glue_frozen.py ... --seeds 1 2 3 4 5 --feature_cache .cache/features --output_dir runs/gpt2-xl/cola

The code lives in the frozen_glue package (frozen_glue/run/run.py); this file keeps the documented command working.
"""

import sys

from frozen_glue.config.arguments import parse_args  # noqa: F401 - re-exported for scripts that import this file
from frozen_glue.run.prepare import prepare  # noqa: F401 - tests and bench/ prepare a run without running it
from frozen_glue.run.run import execute, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
