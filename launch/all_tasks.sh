#!/usr/bin/env bash
# The study: every model in launch/models.tsv x every GLUE task x seeds 1-5, one run folder each
# (runs/<alias>/<task>/seed<N>/), through the deepspeed launcher. Resumable: complete runs made with the same
# settings are skipped; complete runs made with other settings stop the sweep (REDO_CHANGED=1 redoes them).
#
#   bash launch/all_tasks.sh                              # everything
#   TASKS="cola rte" SEEDS="1 2 3" bash launch/all_tasks.sh --num_train_epochs 3
#   FEATURE_CACHE=.cache/features bash launch/all_tasks.sh  # base forward once per model x task
#   GPUS="0 1 2 3" FEATURE_CACHE=.cache/features bash launch/all_tasks.sh  # 4 groups at once, one per GPU
#   DRY_RUN=1 bash launch/all_tasks.sh                    # print the commands, run nothing
#
# Settings (environment): MODELS (models file), TASKS, SEEDS, RUNS (runs root), GLUE_DIR (original GLUE .tsv
# folder), NUM_GPUS (default: all), GPUS (one group per listed GPU, in parallel), JOBS (N groups at once, no
# pinning), DS_CONFIG (default ds_configs/zero2.json; "none" = plain python),
# LAUNCHER (auto|deepspeed|python), FEATURE_CACHE (dir), EXTRA_ARGS, DRY_RUN, REDO_CHANGED. Relative paths are
# relative to the directory you run this from. Arguments after the script name go to every run. The logic lives
# in frozen_glue/sweep.py.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || echo python3)}
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m frozen_glue.sweep "$@"
