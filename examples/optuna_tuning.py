"""Tune an EmnistCNN with optuna: pruning, a persistent study, resuming
====================================================================

.. code-block:: bash

    python examples/optuna_tuning.py [--emnist]

The study lives in SQLite (``emnist-example-study.db`` in the temporary
folder, kept on purpose), so running the script again continues it; point
``storage`` at a PostgreSQL URL to let several machines share it.
"""

# %%
import tempfile
from pathlib import Path

import optuna
from _data import example_args, load_example_data

from emnist_estimators import EmnistCNN
from emnist_estimators.tuning import EmnistSearchCV

args = example_args(
    "Tune an EmnistCNN with optuna: pruning, a persistent study, resuming"
)
X_train, X_test, y_train, y_test = load_example_data(args)
storage = f"sqlite:///{Path(tempfile.gettempdir()) / 'emnist-example-study.db'}"

# Lists are categorical choices. optuna stores them in the study's database,
# so each choice must be None, a bool, int, float or str: a tuple such as
# dense_units=(128, 64) would warn on every trial and come back as a list.
space = {
    "batch_size": [32, 64, 128],
    "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
    "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    "convs_per_block": [1, 2],  # users can add what they like
}
search = EmnistSearchCV(
    EmnistCNN(filters=(16, 32), epochs=2 if args.quick else 10),
    param_distributions=space,
    n_trials=3 if args.quick else 20,
    pruner="median",
    storage=storage,
    study_name="example-cnn",
    load_if_exists=True,  # resume the study across runs
    random_state=0,
).fit(X_train, y_train)

# %%
print(search.trials_dataframe()[["number", "value", "state"]].tail(10).to_string())
print("best params:", search.best_params_)
print(
    f"best hold-out accuracy {search.best_score_:.4f}; "
    f"test accuracy {search.score(X_test, y_test):.4f}"
)
