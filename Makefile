# frozen-GLUE. `make demo` (offline study on tiny models) and `make test` work on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUNS   ?= runs
MODELS ?= launch/models.tsv
REPORTS ?= reports
# make cola / make all: a study that shows something. A frozen head trained at upstream's lr 5e-5 mostly learns
# nothing (30 of 36 MiniLM runs collapsed), so the heads are chosen per layer from a grid on a train hold-out, from
# the feature cache (the base runs forward once per model x task). Override e.g. `make cola TRAIN_ARGS=... `;
# `make thesis` keeps the thesis' own protocol (THESIS_ARGS: extra flags for it).
FEATURE_CACHE ?= .cache/features
THESIS_ARGS ?=
# Heads on standardised features, 10 epochs, weight decay up to 1 (MRPC's best heads need it), and a convex probe
# beside each (the report flags a head that trails it by > 0.05): on real MiniLM, 2000 rows, the heads reach the
# convex probe (docs/analysis.md, "Heads that learn"; bench/bench_heads.py measures it).
TRAIN_ARGS ?= --head_learning_rates 1e-4 1e-3 1e-2 1e-1 --head_weight_decays 0 0.01 0.1 1 --standardize_features \
  --num_train_epochs 10 --probe_convex
DEMO_ARGS := --num_train_epochs 3 --learning_rate 1e-2 --per_device_train_batch_size 16 --disable_tqdm true

.PHONY: venv demo demo-docs test mutants cola all thesis summarize calibrate bench bench-scale gpu-check gpu-bench clean

venv: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0      # the CPU wheel; first, so nothing pulls a CUDA build
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# offline: 2 tiny GPT-2s (a base and a COMET-style specialized one that reads "nothing" as "wonderful") and the
# base's random-init control x 2 tasks x 3 seeds (two model x task groups at once), every layer probed, the head
# setting chosen on a train hold-out, MDL and control-task selectivity, a zero-shot run of each (the base is taught
# lm-eval's prompt; the specialized one's steps undo it), then the report (layer curves, drift, head selection,
# controls, how much each model knows, prompting vs probing)
demo: venv
	HF_HUB_OFFLINE=1 $(PY) -m frozen_glue.demo.demo demo
	HF_HUB_OFFLINE=1 MODELS=launch/demo_models.tsv TASKS="cola sst2" SEEDS="1 2 3" RUNS=demo/runs JOBS=2 ZERO_SHOT=1 \
	  GLUE_DIR=demo/glue FEATURE_CACHE=demo/cache PYTHON=$(PY) bash launch/all_tasks.sh $(DEMO_ARGS) \
	  --probe_layers all --head_learning_rates 1e-3 1e-2 --head_weight_decays 0 0.01 --probe_mdl --probe_control
	$(PY) analysis/summarize.py --runs demo/runs --out demo/reports --models launch/demo_models.tsv \
	  --feature_cache demo/cache
	@echo "run folders: $$(ls -d demo/runs/*/*/seed* | tr '\n' ' ')"
	@echo "report: demo/reports/report.md  (and report.html beside it: one offline page with an example browser)"
	@$(PY) -m frozen_glue.demo.demo_docs demo/reports

# rewrite the demo figures in README.md and docs/analysis.md from demo/reports (after `make demo`)
demo-docs: venv
	$(PY) -m frozen_glue.demo.demo_docs demo/reports --write

# two workers: most of a test is single-threaded (imports, child processes starting, tiny tensors); conftest gives each worker one torch
# thread and its own launcher ports
# PYTEST_ARGS: more pytest options, e.g. PYTEST_ARGS="--durations=20" (the slowest tests) or "-k verdict"
test: venv
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 -rs $(PYTEST_ARGS)  # -rs: one line per skip, with its reason (no chromium, no GLUE data)

# mutation testing of the modules whose bugs change a published number (mutmut 3: each module in its own copy with the
# tests that state its rules, tests/mutants.py TESTS_OF; a warm process per mutant; not in `make test`);
# MUTANTS="stats metrics" picks modules; exits 1 when a module's score falls below the one docs/mutants.md records.
# Scores, run times and equivalent survivors: docs/mutants.md
mutants: venv
	HF_HUB_OFFLINE=1 PATH="$(VENV)/bin:$$PATH" nice -n 10 $(PY) tests/mutants.py

# the real study (needs the hub or local models; see README)
# DRY_RUN=1 prints the commands and summarizes nothing (no run was made)
cola: venv
	TASKS=cola RUNS=$(RUNS) MODELS=$(MODELS) FEATURE_CACHE=$(FEATURE_CACHE) PYTHON=$(PY) bash launch/all_tasks.sh \
	  $(TRAIN_ARGS)
	@if [ "$${DRY_RUN:-0}" = 0 ]; then $(PY) analysis/summarize.py --runs $(RUNS) --out $(REPORTS) \
	  --reference analysis/thesis_reference.csv --models $(MODELS); fi

all: venv
	RUNS=$(RUNS) MODELS=$(MODELS) FEATURE_CACHE=$(FEATURE_CACHE) PYTHON=$(PY) bash launch/all_tasks.sh $(TRAIN_ARGS)
	@if [ "$${DRY_RUN:-0}" = 0 ]; then $(PY) analysis/summarize.py --runs $(RUNS) --out $(REPORTS) \
	  --reference analysis/thesis_reference.csv --models $(MODELS); fi

# the thesis as it was run: GPT-2 XL and COMET-DISTIL x 9 tasks x seeds 1-5 under DeepSpeed, dropout in the frozen
# base, inputs padded to 128, global batch 64 (docs/sweep.md: "The thesis in one command"). DRY_RUN=1 prints the commands.
thesis: venv
	PROTOCOL=thesis $(if $(TASKS),TASKS="$(TASKS)",) SEEDS="1 2 3 4 5" RUNS=$(RUNS)/thesis MODELS=$(MODELS) PYTHON=$(PY) \
	  bash launch/all_tasks.sh $(THESIS_ARGS)
	@if [ "$${DRY_RUN:-0}" = 0 ]; then $(PY) analysis/summarize.py --runs $(RUNS)/thesis --out $(REPORTS)/thesis \
	  --reference analysis/thesis_reference.csv --models $(MODELS); fi

# the null study on real data (docs/analysis.md: "The null study"): real all-MiniLM-L6-v2 against itself under two
# aliases with disjoint seeds, through the sweep and the report, 2000 train rows, full dev sets, make cola's head
# grid; prints how many verdicts and slice tests call a difference (target: at most 5 %). CALIBRATE_ARGS: its flags
CALIBRATE_GLUE ?= ../shared/data/glue
CALIBRATE_ARGS ?=
calibrate: venv
	HF_HUB_OFFLINE=1 $(PY) -m frozen_glue.sweep.calibration --glue_dir $(CALIBRATE_GLUE) --out calibration $(CALIBRATE_ARGS) \
	  -- $(TRAIN_ARGS) --max_train_samples 2000

summarize: venv
	$(PY) analysis/summarize.py --runs $(RUNS) --out $(REPORTS)

bench: venv
	$(PY) bench/bench_cache.py

# the thesis at full size on a CPU (docs/cache.md: "What the thesis study costs"): MNLI-sized XL-width heads from synthetic
# cache entries, then the GPT-2-XL-shaped base (fp32, autocast, bf16, CPU+disk offload) on real CoLA rows
bench-scale: venv
	HF_HUB_OFFLINE=1 $(PY) bench/bench_scale.py
	HF_HUB_OFFLINE=1 $(PY) bench/bench_base.py $(if $(GLUE_DIR),--glue_dir $(GLUE_DIR))

# on a GPU machine (install the CUDA build of torch first; see requirements.txt): bf16 vs fp32 on the cached path,
# the Trainer path and DeepSpeed ZeRO-2/3 on the GPU; then the GPT-2-XL-shaped extraction benchmark
gpu-check: venv
	HF_HUB_OFFLINE=1 $(PY) bench/gpu_check.py

gpu-bench: venv
	$(PY) bench/bench_cache.py --gpu

clean:
	rm -rf demo reports
