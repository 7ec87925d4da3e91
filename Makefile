# Set-up and everyday commands. Every target creates the environment first if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: env quickstart train test test-fast lint mutate bench bench-load clean

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

## The quick sweep (offline: every optimizer on 5,000 real MNIST digits), then its best trial.
quickstart: env
	$(BIN)/sweeps launch sweep=quick
	$(BIN)/sweeps best quick

## One training run on the offline default (5,000 real MNIST digits), Adam -> SGD, cosine.
train: env
	$(BIN)/python -m trainer optimizer=adam_to_sgd schedule=cosine dataset=mnist_5k

## The whole test suite, slow end-to-end tests included (what CI runs).
test: env
	$(BIN)/python -m pytest

## Without the slow end-to-end tests.
test-fast: env
	$(BIN)/python -m pytest -m "not slow"

lint: env
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## Mutation testing of the core modules ([tool.mutmut] in pyproject.toml), then the score per
## module and every survivor not listed as equivalent in tests/mutation_equivalent.txt.
## Crashed mutants (two test processes at once can hit the CPU limit) are run again alone.
MUTMUT = env OMP_NUM_THREADS=1 SWEEPS_HYPOTHESIS_PROFILE=mutate $(BIN)/mutmut
mutate: env
	$(MUTMUT) run --max-children $(or $(JOBS),2) || true
	$(BIN)/python tests/mutation_scores.py --crashed | xargs -r $(MUTMUT) run --max-children 1 > /dev/null || true
	$(BIN)/python tests/mutation_scores.py

bench: env
	$(BIN)/python benchmarks/trainer_vs_dataloader.py
	$(BIN)/python benchmarks/trainer_step.py
	$(BIN)/python benchmarks/user_data.py
	$(BIN)/python benchmarks/sweep_overhead.py
	$(BIN)/python benchmarks/sweep_overhead.py --threads 1
	$(BIN)/python benchmarks/sweep_overhead.py --epochs 20 --trials 5 --repeats 5
	$(BIN)/python benchmarks/sweep_scaling.py --model mlp --n-trials 96 --writers auto,thread
	$(BIN)/python benchmarks/sweep_scaling.py --model cnn
	$(BIN)/python benchmarks/pruning.py
	$(BIN)/python benchmarks/confirm_speed.py
	$(BIN)/python benchmarks/report_speed.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/latency.py --cold --repeats 1
	$(BIN)/pip install -q -e '.[peers]' || echo "peers not installed: benchmarks/peers.py skips them"
	$(BIN)/python benchmarks/peers.py

## Growth of status/best/report and per-trial costs to 10,000 trials, then load at cluster
## scale (8-64 workers on PostgreSQL + an MLflow server), about 35 minutes on 2 cores.
bench-load: env
	$(BIN)/python benchmarks/growth.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/load.py --workers 32 --lengths 1 --backends postgresql,sqlite

clean:
	rm -rf $(VENV) outputs multirun reports .pytest_cache .ruff_cache *.egg-info
