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
# in frozen_glue/sweep/sweep.py (the settings: sweep_settings.py; the plan: sweep_plan.py).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || echo python3)}
# the installed package (make venv installs this checkout with pip install -e .), not this folder on PYTHONPATH;
# a python without it or its stack says so in one line (find_spec looks, imports nothing)
if ! "$PYTHON" -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("frozen_glue", "torch", "transformers", "datasets")))' 2> /dev/null
then
  echo "error: $PYTHON does not have the frozen_glue package and its requirements installed; run \`make venv\`," \
       "or set PYTHON to a python that has them" >&2
  exit 2
fi
exec "$PYTHON" -m frozen_glue.sweep.sweep "$@"
