"""A training run that can be killed and resumed: the program of the
kill-and-resume tests.

`python -m tests.resumable_training module:TestClass BACKUP_DIR OUTPUT.npz
[KILL_EPOCH KILL_BATCH]` trains the model of a `ConformanceTests` subclass
for `EPOCHS` epochs with `keras.callbacks.BackupAndRestore` (a checkpoint at
each epoch's end) and op determinism on. Given `KILL_EPOCH KILL_BATCH`, the
process sends itself SIGKILL after that batch. Otherwise it writes to
`OUTPUT.npz` every variable of the model (the target network and random
generator states among them), every optimizer's variables, and the epochs
this run trained.
"""

import os
import signal
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_custom.testing.multi_worker import load_test_class

EPOCHS = 4


class KillAt(keras.callbacks.Callback):
    """Kills its own process with SIGKILL after batch `batch` of `epoch`."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.kill_epoch, self.kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)


class EpochsRun(keras.callbacks.Callback):
    """Records the epochs this process trained."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def main(argv: list[str]) -> None:
    path, backup_dir, output = argv[:3]
    kill = [int(a) for a in argv[3:5]]
    tf.config.experimental.enable_op_determinism()
    case = load_test_class(path)()
    model = case._seeded_model()
    epochs_run = EpochsRun()
    callbacks = [
        keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch"),
        epochs_run,
    ]
    if kill:
        callbacks.append(KillAt(*kill))
    fit_args = case._fit_args()
    keras.utils.set_random_seed(99)
    model.fit(
        fit_args["x"],
        fit_args["y"],
        batch_size=case.batch_size,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    arrays = {f"variable_{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    for name, optimizer in model.optimizers.items():
        for i, variable in enumerate(optimizer.variables):
            arrays[f"{name}_{i}"] = np.asarray(variable)
    arrays["epochs_run"] = np.asarray(epochs_run.epochs)
    np.savez(output, **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
