#!/usr/bin/env bash
# The same sweep as a Slurm job array: one model x task (all its seeds) per array element, with the same
# skip-complete logic (an element whose runs are complete exits at once). Submit with one element per pair:
#
#   n=$(( $(grep -cv '^\s*\(#\|$\)' launch/models.tsv) * 9 ))      # models x tasks (9 GLUE tasks)
#   sbatch --array=0-$((n - 1)) launch/slurm_array.sh
#
#   FEATURE_CACHE=/shared/fs/features sbatch --array=0-$((n - 1)) launch/slurm_array.sh   # many nodes, one cache
#
# The settings of launch/all_tasks.sh apply (MODELS, TASKS, SEEDS, RUNS, GLUE_DIR, DS_CONFIG, FEATURE_CACHE, ...).
# RUNS and FEATURE_CACHE on a shared filesystem serve every node:
# - each element takes its group's lock (RUNS/<alias>/<task>/.lock): an element resubmitted while the first still
#   runs leaves the group to it;
# - cache entries are written under temp names that carry host and pid and renamed into place, and a reader trusts
#   an entry only when its JSON's size and sha256 match, so two writers of the same entry leave one valid entry
#   (tests/test_feature_cache.py runs two); a job that needs features another job is extracting waits on
#   <cache>/<fingerprint>/<task>/.lock and then reads them;
# - a lock whose job died on another node is taken over after 15 minutes without its heartbeat.
#SBATCH --job-name=frozen-glue
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
MODELS=${MODELS:-launch/models.tsv}
read -r -a tasks <<< "${TASKS:-cola sst2 mrpc stsb qqp mnli qnli rte wnli}"
mapfile -t lines < <(grep -v '^\s*\(#\|$\)' "$MODELS")
i=${SLURM_ARRAY_TASK_ID:?run this under sbatch --array (see the top of this file)}
m=$(( i / ${#tasks[@]} )); t=$(( i % ${#tasks[@]} ))
if (( m >= ${#lines[@]} )); then echo "array index $i is past the last model x task pair; nothing to do"; exit 0; fi
one=$(mktemp); trap 'rm -f "$one"' EXIT
printf '%s\n' "${lines[$m]}" > "$one"
MODELS=$one TASKS=${tasks[$t]} MASTER_PORT=$((29500 + i % 1000)) exec bash launch/all_tasks.sh "$@"
