"""`TerminateOnNaN` watches every logged loss and leaves the last checkpoint
intact."""

import keras
import numpy as np
import pytest

from keras_custom.callbacks import TerminateOnNaN
from tests import test_generative_conformance as generative


class PoisonAt(keras.callbacks.Callback):
    """Sets every trainable weight to NaN before batch `batch` of `epoch`, and
    records the weights at the end of each epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch, self.epoch_end_weights = (epoch, batch), 0, []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_weights.append(self.model.get_weights())

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            for weight in self.model.trainable_weights:
                weight.assign(np.full(weight.shape, np.nan, "float32"))


def gan_and_images():
    case = generative.TestGAN()
    model = case._seeded_model()
    return model, case.data()[0]


def test_keras_terminate_on_nan_misses_a_gan_whose_losses_are_nan():
    model, x = gan_and_images()
    history = model.fit(
        x,
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[PoisonAt(1, 1), keras.callbacks.TerminateOnNaN()],
    )
    assert len(history.history["d_loss"]) == 3  # never stopped
    assert np.isnan(history.history["d_loss"][-1])


def test_raises_naming_the_loss_and_keeps_the_checkpoint(tmp_path):
    model, x = gan_and_images()
    poison = PoisonAt(1, 2)
    backup = keras.callbacks.BackupAndRestore(tmp_path, save_freq="epoch")
    with pytest.raises(RuntimeError, match=r"'d_loss' is nan at epoch 1, batch 2"):
        model.fit(
            x,
            batch_size=16,
            epochs=3,
            verbose=0,
            callbacks=[backup, poison, TerminateOnNaN()],
        )
    # The checkpoint of epoch 0 was neither overwritten nor deleted.
    restored, _ = gan_and_images()
    restored.load_weights(tmp_path / "latest.weights.h5")
    for saved, expected in zip(
        restored.get_weights(), poison.epoch_end_weights[0], strict=True
    ):
        assert np.all(np.isfinite(saved))
        np.testing.assert_array_equal(saved, expected)


def test_graceful_stop_and_monitor():
    model, x = gan_and_images()
    history = model.fit(
        x,
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[
            PoisonAt(1, 0),
            TerminateOnNaN(monitor=["g_loss"], raise_error=False),
        ],
    )
    assert len(history.history["g_loss"]) == 2  # stopped in the second epoch
    assert model.stop_training


def test_finite_losses_train_on():
    model, x = gan_and_images()
    history = model.fit(
        x, batch_size=16, epochs=2, verbose=0, callbacks=[TerminateOnNaN()]
    )
    assert len(history.history["d_loss"]) == 2
