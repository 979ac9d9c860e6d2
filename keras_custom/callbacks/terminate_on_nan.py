"""`TerminateOnNaN`: stop when any logged loss stops being finite."""

import math
from collections.abc import Iterable

import keras


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Stops training when any logged loss becomes NaN or infinite.

    Keras's `TerminateOnNaN` watches `logs["loss"]` alone, which a GAN
    (`d_loss`, `g_loss`) or a VAE's separate terms never trip. This one
    watches every logged value whose name ends in `loss` (or the names in
    `monitor`) after each batch.

    By default it raises a `RuntimeError` naming the loss, the epoch and the
    batch, unlike Keras's default graceful stop: a graceful stop still runs
    every callback's `on_epoch_end` and `on_train_end`, so
    `BackupAndRestore` would save the non-finite weights over its last good
    checkpoint and then delete it, and `ModelCheckpoint` would save them
    too. Raising leaves the last checkpoint as it was, to resume from.

    Args:
        monitor: Names of the logged values to watch; `None` watches every
            name ending in `loss`.
        raise_error: Whether to raise (default) or to stop gracefully by
            `model.stop_training = True`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import CustomModel
    from keras_custom.callbacks import TerminateOnNaN

    inputs = keras.Input((2,))
    model = CustomModel(inputs, keras.layers.Dense(1)(inputs), loss="mse")
    model.compile(optimizer=keras.optimizers.SGD(1e30))
    x = np.full((64, 2), 1e10, "float32")
    try:
        model.fit(x, x[:, :1], callbacks=[TerminateOnNaN()], verbose=0)
    except RuntimeError as error:
        print(error)  # 'loss' is nan at epoch 0, batch ...
    ```
    """

    def __init__(self, monitor: Iterable[str] | None = None, raise_error: bool = True):
        super().__init__(raise_error=raise_error)
        if isinstance(monitor, str):
            monitor = [monitor]
        self.monitor = None if monitor is None else list(monitor)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _watched(self, logs) -> list[str]:
        if self.monitor is not None:
            return [name for name in self.monitor if name in logs]
        return [name for name in logs if name.endswith("loss")]

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        for name in self._watched(logs):
            value = float(logs[name])
            if math.isfinite(value):
                continue
            message = (
                f"'{name}' is {value} at epoch {self._epoch}, batch {batch}: "
                "training stopped."
            )
            if self.raise_error:
                raise RuntimeError(message + " The last checkpoint is intact.")
            print(message)
            self.model.stop_training = True
            return
