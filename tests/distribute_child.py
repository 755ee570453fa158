"""One process of tests/test_distribute.py (TensorFlow's devices and
TF_CONFIG must be set before TensorFlow starts, so each case is a process).

Usage: ``python distribute_child.py mirrored EMNIST_DIR OUT.json``,
``python distribute_child.py multi_worker INDEX PORT,PORT OUT.npz`` or
``python distribute_child.py one_worker PORT OUT.json``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys


def mirrored(emnist_dir: str, out: str) -> None:
    """Single-device and two-replica fits on real EMNIST; write their scores."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import numpy as np
    from sklearn.base import clone

    from emnist_estimators import EmnistMLP, load_emnist, load_model

    X, y = load_emnist(
        "bymerge", "test", data_home=emnist_dir, download=False, return_X_y=True
    )
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(y))[:40_000]
    train, test = rows[:30_000], rows[30_000:]
    # the same global batch: 512 rows on one device, 256 on each of two
    import keras

    class Replicas(keras.callbacks.Callback):
        seen = []

        def on_train_begin(self, logs=None):
            self.seen.append(tf.distribute.get_strategy().num_replicas_in_sync)

    base = EmnistMLP(hidden_layer_sizes=(256,), epochs=5, random_state=0)
    single = clone(base).set_params(batch_size=512).fit(X[train], y[train])
    spread = clone(base).set_params(batch_size=256, distribution="mirrored")
    spread.fit(X[train], y[train], callbacks=[Replicas()])
    again = pickle.loads(pickle.dumps(spread))
    spread.save(out + ".keras")
    loaded = load_model(out + ".keras")
    result = {
        "devices": len(tf.config.list_logical_devices("CPU")),
        "replicas": Replicas.seen,
        "steps": [int(e.model_.optimizer.iterations) for e in (single, spread)],
        "single": single.score(X[test], y[test]),
        "mirrored": spread.score(X[test], y[test]),
        "pickled_equal": bool(
            np.array_equal(again.predict_proba(X[test]), spread.predict_proba(X[test]))
        ),
        "loaded_equal": bool(
            np.array_equal(loaded.predict(X[test]), spread.predict(X[test]))
        ),
        "params": clone(spread).get_params()["distribution"],
        "epochs": len(spread.history_["val_accuracy"]),
    }
    with open(out, "w") as f:
        json.dump(result, f)


def multi_worker(index: int, ports: str, out: str) -> None:
    """One worker: fit an MLP (early stopping) and a CNN (batch norm)."""
    addresses = [f"127.0.0.1:{p}" for p in ports.split(",")]
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )
    import numpy as np
    from sklearn.base import clone

    from emnist_estimators import EmnistCNN, EmnistMLP

    X, y, w = _learnable()
    mlp = EmnistMLP(
        hidden_layer_sizes=(32,),
        dropout=0.0,
        precision="float32",
        epochs=4,
        batch_size=64,
        early_stopping=True,
        patience=5,
        distribution="multi_worker",
        random_state=0,
    ).fit(X, y, sample_weight=w)
    cnn = EmnistCNN(
        filters=(4, 8),
        dense_units=(16,),
        batch_norm=True,
        epochs=2,
        batch_size=64,
        distribution="multi_worker",
        random_state=0,
    ).fit(X, y)
    arrays = {}
    for name, est in (("mlp", mlp), ("cnn", cnn)):
        # batch norm's moving statistics are each worker's own (documented);
        # everything trained is shared
        for i, weights in enumerate(est.model_.trainable_weights):
            arrays[f"{name}_{i}"] = np.asarray(weights)
        arrays[f"{name}_history"] = np.array(
            [est.history_[k] for k in sorted(est.history_)]
        )
    arrays["mlp_proba"] = mlp.predict_proba(X[:200])
    # The same fit on one device with the global batch (2 x 64): the same
    # steps, so the same weights up to the rounding of summed gradients.
    # Last: a process makes its multi-worker strategy before other TF work.
    one = clone(mlp).set_params(batch_size=128, distribution=None)
    one.fit(X, y, sample_weight=w)
    arrays["mlp_vs_one_device"] = np.array(
        [
            np.abs(a - b).max()
            for a, b in zip(
                mlp.model_.get_weights(), one.model_.get_weights(), strict=True
            )
        ]
    )
    np.savez(out, **arrays)


def _learnable():
    """Random pixels whose class (of 3) a linear model can read off."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (1500, 784), dtype=np.uint8)
    y = rng.integers(0, 3, len(X))
    X[:, :60] = (y * 120)[:, None]  # a band whose brightness is the class
    return X, y, rng.uniform(0.5, 1.5, len(y))


def one_worker(port: str, out: str) -> None:
    """A one-worker cluster trains exactly as one device does: the same
    history (loss, Keras' unweighted accuracy) and weights."""
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}"]},
            "task": {"type": "worker", "index": 0},
        }
    )
    import numpy as np
    from sklearn.base import clone

    from emnist_estimators import EmnistMLP

    X, y, w = _learnable()
    spread = EmnistMLP(
        hidden_layer_sizes=(16,),
        epochs=3,
        batch_size=100,
        class_weight="balanced",
        label_smoothing=0.1,  # the step must take the compiled loss's smoothing
        distribution="multi_worker",
        random_state=0,
    ).fit(X, y, sample_weight=w)
    one = clone(spread).set_params(distribution=None).fit(X, y, sample_weight=w)
    result = {
        "history": spread.history_,
        "one_device_history": one.history_,
        "max_weight_diff": max(
            float(np.abs(a - b).max())
            for a, b in zip(
                spread.model_.get_weights(), one.model_.get_weights(), strict=True
            )
        ),
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "one_worker":
        one_worker(sys.argv[2], sys.argv[3])
    else:
        multi_worker(int(sys.argv[2]), sys.argv[3], sys.argv[4])
