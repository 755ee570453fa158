"""Quickstart: a Pipeline of PixelScaler and EmnistCNN
===================================================

Train, score, look at probabilities, save and load again.

.. code-block:: bash

    python examples/quickstart_pipeline.py            # offline digits demo
    python examples/quickstart_pipeline.py --emnist   # EMNIST balanced
"""

# %%
import tempfile
from pathlib import Path

from _data import example_args, load_example_data
from sklearn.pipeline import Pipeline

from emnist_estimators import EmnistCNN, PixelScaler, load_model

args = example_args("Quickstart: a Pipeline of PixelScaler and EmnistCNN")
X_train, X_test, y_train, y_test = load_example_data(args)

# %%
# Pixels stay uint8 until PixelScaler turns them into float32 in [0, 1].
pipe = Pipeline(
    [
        ("scale", PixelScaler()),
        (
            "clf",
            EmnistCNN(epochs=2 if args.quick else 12, batch_size=64, random_state=0),
        ),
    ]
)
pipe.fit(X_train, y_train)
print(f"test accuracy: {pipe.score(X_test, y_test):.4f}")
print("first predictions:", pipe.predict(X_test[:8]), "truth:", y_test[:8])
print("probabilities of the first image:", pipe.predict_proba(X_test[:1]).round(3))

# %%
# The first test images with the class predicted for each and its
# probability; a wrong prediction is red and names the true class too.
from emnist_estimators.reporting import plot_sample_predictions

proba = pipe.predict_proba(X_test[:20]).max(axis=1)
fig = plot_sample_predictions(X_test, y_test, pipe.predict(X_test), n=20, proba=proba)

# %%
# The estimator alone saves in Keras' native format (loaded in safe mode).
clf = pipe.named_steps["clf"]
with tempfile.TemporaryDirectory() as folder:  # removed, whatever happens
    path = Path(folder) / "cnn.keras"
    clf.save(path)
    again = load_model(path)
    scaled = pipe.named_steps["scale"].transform(X_test)
    assert (again.predict(scaled) == clf.predict(scaled)).all()
    print(f"saved and reloaded {path.name}: identical predictions")
