"""A checkpointed fit run as its own process by tests/test_lifecycle.py.

``python checkpoint_child.py KIND CHECKPOINT_DIR OUT [KILL_EPOCH]``: fit the
KIND estimator (see ``make``) on bar images with ``checkpoint_dir``; with
KILL_EPOCH, touch ``OUT.killme`` in the middle of that epoch (after a few
batches, i.e. after the previous epoch's checkpoint) and wait there for the
parent's SIGKILL. Without it, finish and write the weights and history to
``OUT`` (.npz).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from helpers import bar_images  # noqa: E402


def make(kind: str, checkpoint_dir: str):
    from emnist_estimators import EmnistCNN, EmnistMLP

    common = {"random_state": 0, "batch_size": 32, "checkpoint_dir": checkpoint_dir}
    if kind == "mlp":
        # dropout: the resumed fit must restore its random generator's state
        return EmnistMLP(hidden_layer_sizes=(32,), dropout=0.3, epochs=5, **common)
    # augmentation's generators, batch norm's statistics, early stopping's
    # counters and best weights (patience 1 on a constant-rate run)
    return EmnistCNN(
        filters=(4, 8),
        dense_units=(16,),
        augment=True,
        batch_norm=True,
        early_stopping=True,
        patience=2,
        lr_schedule="constant",
        learning_rate=3e-3,
        epochs=6,
        **common,
    )


def main() -> None:
    import keras

    kind, folder, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    kill_epoch = int(sys.argv[4]) if len(sys.argv) > 4 else None
    X, y = bar_images(480, rng=1)

    class WaitForKill(keras.callbacks.Callback):
        epoch = -1

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == kill_epoch and batch == 3:
                Path(f"{out}.killme").touch()
                time.sleep(600)

    est = make(kind, folder)
    extra = [WaitForKill()] if kill_epoch is not None else []
    est.fit(X, y, callbacks=extra)
    weights = {f"w{i}": w for i, w in enumerate(est.model_.get_weights())}
    np.savez(out, proba=est.predict_proba(X), **weights)
    Path(f"{out}.json").write_text(json.dumps(est.history_))


if __name__ == "__main__":
    main()
