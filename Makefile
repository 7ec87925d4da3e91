# Set-up and everyday commands. Every target creates the environment first if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: env bytecode quickstart train test test-fast lint docs docs-serve screenshots mutate bench bench-load clean

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

## The project's modules compiled before the tests: where PYTHONDONTWRITEBYTECODE is set, each of
## the suite's hundreds of processes would compile them again (~0.2 s of CPU each).
bytecode: env
	$(BIN)/python -m compileall -q sweeps trainer > /dev/null

## The whole test suite, slow end-to-end tests included (what CI runs).
test: bytecode
	$(BIN)/python -m pytest

## Without the slow end-to-end tests.
test-fast: bytecode
	$(BIN)/python -m pytest -m "not slow"

lint: env
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy  # the public API strictly too ([[tool.mypy.overrides]] in pyproject.toml)

## The documentation site (mkdocs-material), built offline into site/ with every link checked;
## docs-serve serves it at http://127.0.0.1:8000 and rebuilds on every change.
# (the plugins' banners about a future MkDocs 2 are silenced: the site pins mkdocs<2)
MKDOCS = env NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs
docs: env
	$(MKDOCS) build --strict

docs-serve: env
	$(MKDOCS) serve

## The screenshots in docs/assets/screenshots/, made again by the browser tests (needs chromium).
screenshots: env
	SWEEPS_SCREENSHOTS=docs/assets/screenshots $(BIN)/python -m pytest tests/browser -n 0

## Mutation testing of the core modules ([tool.mutmut] in pyproject.toml), then the score per
## module and every survivor not listed as equivalent in tests/mutation_equivalent.txt.
## Crashed mutants (two test processes at once can hit the CPU limit) are run again alone.
MUTMUT = env OMP_NUM_THREADS=1 SWEEPS_HYPOTHESIS_PROFILE=mutate $(BIN)/mutmut
mutate: env
	$(MUTMUT) run --max-children $(or $(JOBS),2) || true
	$(BIN)/python tests/mutation_scores.py --crashed | xargs -r $(MUTMUT) run --max-children 1 > /dev/null || true
	$(BIN)/python tests/mutation_scores.py

## Every benchmark; each writes its result file into benchmarks/results/, which the docs'
## performance page shows (command, machine, date, commit).
bench: env
	$(BIN)/python benchmarks/trainer_vs_dataloader.py --repeats 3
	$(BIN)/python benchmarks/trainer_step.py --repeats 3
	$(BIN)/python benchmarks/user_data.py
	$(BIN)/python benchmarks/quick_sweep.py
	$(BIN)/python benchmarks/sweep_overhead.py
	$(BIN)/python benchmarks/sweep_scaling.py --model mlp --n-trials 96 --writers auto,thread
	$(BIN)/python benchmarks/sweep_scaling.py --model cnn
	$(BIN)/python benchmarks/pruning.py
	$(BIN)/python benchmarks/confirm_speed.py
	$(BIN)/python benchmarks/report_speed.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/pip install -q -e '.[peers]' || echo "peers not installed: benchmarks/peers.py skips them"
	$(BIN)/python benchmarks/peers.py --settings mlp --tools sweeps,optuna,bare --repeats 3
	$(BIN)/python benchmarks/peers.py --settings cnn

## Growth of status/best/report and per-trial costs to 10,000 trials (journal and PostgreSQL),
## reads of trials, then load at cluster scale beside the Optuna peer, about an hour on 2 cores.
bench-load: env
	$(BIN)/python benchmarks/growth.py
	$(BIN)/python benchmarks/growth.py --storage postgresql://postgres@127.0.0.1:5432/test
	$(BIN)/python benchmarks/trial_reads.py
	$(BIN)/pip install -q 'optuna-integration[mlflow]>=4'  # the Optuna peer of load.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) outputs multirun reports site .pytest_cache .ruff_cache *.egg-info
