"""Grid search over batch size, dropout and learning rate through a Pipeline
=========================================================================

.. code-block:: bash

    python examples/grid_search.py [--emnist]
"""

# %%
import pandas as pd
from _data import example_args, load_example_data
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistMLP, PixelScaler

args = example_args(
    "Grid search over batch size, dropout and learning rate through a Pipeline"
)
X_train, X_test, y_train, y_test = load_example_data(args)

pipe = Pipeline(
    [
        ("scale", PixelScaler()),
        ("clf", EmnistMLP(epochs=2 if args.quick else 20, random_state=0)),
    ]
)
grid = {
    "clf__batch_size": [64, 256],
    "clf__dropout": [0.1, 0.3],
    "clf__learning_rate": [1e-3] if args.quick else [1e-3, 3e-3],
}
# is_classifier(EmnistMLP()) is True, so cv=3 means StratifiedKFold.
search = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X_train, y_train)

# %%
table = pd.DataFrame(search.cv_results_)[
    ["params", "mean_test_score", "rank_test_score"]
]
print(table.sort_values("rank_test_score").to_string(index=False))
print("best:", search.best_params_, f"test accuracy {search.score(X_test, y_test):.4f}")

# %%
# Each combination's mean accuracy over the three folds, best at the top.
import matplotlib.pyplot as plt

ranked = table.sort_values("rank_test_score", ascending=False)
labels = [
    ", ".join(f"{k.removeprefix('clf__')}={v}" for k, v in p.items())
    for p in ranked["params"]
]
fig, ax = plt.subplots(figsize=(7, 0.4 * len(labels) + 1), layout="constrained")
ax.barh(labels, ranked["mean_test_score"])
ax.set_xlabel("mean cross-validated accuracy")
