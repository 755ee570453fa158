"""Use the estimators inside another project's scikit-learn code
=============================================================

A ColumnTransformer picks the 784 pixel columns out of a wider DataFrame and
a VotingClassifier combines EmnistMLP and EmnistCNN with a plain
LogisticRegression (soft voting needs predict_proba from each).

.. code-block:: bash

    python examples/in_another_pipeline.py [--emnist]
"""

# %%
import numpy as np
import pandas as pd
from _data import example_args, load_example_data
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistCNN, EmnistMLP, PixelScaler

args = example_args("Use the estimators inside another project's scikit-learn code")
X_train, X_test, y_train, y_test = load_example_data(args)
epochs = 2 if args.quick else 15


def as_frame(X):
    """A DataFrame as another project might have it: pixels plus metadata."""
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(784)])
    frame["writer_id"] = np.arange(len(frame)) % 7
    return frame


pixels = [f"p{i}" for i in range(784)]
vote = VotingClassifier(
    [
        ("mlp", EmnistMLP(epochs=epochs, random_state=0)),
        ("cnn", EmnistCNN(filters=(16, 32), epochs=epochs, random_state=0)),
        ("logreg", LogisticRegression(max_iter=200 if args.quick else 1000)),
    ],
    voting="soft",
)
model = Pipeline(
    [
        ("pixels", ColumnTransformer([("scale", PixelScaler(), pixels)])),
        ("vote", vote),
    ]
)
model.fit(as_frame(X_train), y_train)

# %%
print(f"soft-voting test accuracy: {model.score(as_frame(X_test), y_test):.4f}")
for name, est in model.named_steps["vote"].named_estimators_.items():
    Xt = model.named_steps["pixels"].transform(as_frame(X_test))
    yt = model.named_steps["vote"].le_.transform(y_test)
    print(f"  {name}: {est.score(Xt, yt):.4f}")
