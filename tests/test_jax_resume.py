"""Resuming an interrupted `fit()` on JAX with Keras's `BackupAndRestore`.

keras_custom's own `BackupAndRestore` (mid-epoch resumption) reaches into
TensorFlow's `fit()` and refuses another backend with a clear error. On JAX,
`keras.callbacks.BackupAndRestore` resumes at the epoch after the last
checkpoint; these tests check that it loses nothing a keras_custom model
trained: a GAN stopped after two of four epochs and run again ends with the
weights, both optimizers' slots and step counts, and the seed generator's
state of the uninterrupted run.
"""

import os

import keras
import numpy as np
import pytest

import keras_custom

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the JAX backend (CI's JAX stage); TensorFlow has its own tests",
)

EPOCHS = 4
STOP_AT = 2


class Interrupt(keras.callbacks.Callback):
    """Stops the process (an exception) when epoch `epoch` begins."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch}")


def gan() -> keras_custom.GAN:
    keras.utils.set_random_seed(7)
    generator = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(6),
        ]
    )
    discriminator = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model = keras_custom.GAN(
        generator,
        discriminator,
        latent_dim=4,
        d_optimizer=keras.optimizers.Adam(1e-2),
        g_optimizer=keras.optimizers.Adam(1e-2),
    )
    model.compile()
    return model


def state(model: keras_custom.GAN) -> list[tuple[str, np.ndarray]]:
    """Every variable of the model and of both optimizers, in order, by path.

    (The three models are built in one process, so their paths differ in
    the layers' and optimizers' unique names: they are compared in order.)
    """
    variables = [
        *model.variables,
        *model.d_optimizer.variables,
        *model.g_optimizer.variables,
    ]
    return [(v.path, np.array(v)) for v in variables]


def test_keras_backup_and_restore_resumes_every_optimizer(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    fit = {"x": x, "batch_size": 16, "epochs": EPOCHS, "shuffle": False, "verbose": 0}

    uninterrupted = gan()
    uninterrupted.fit(**fit)

    backup = os.fspath(tmp_path / "backup")
    interrupted = gan()
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(
            **fit,
            callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt(STOP_AT)],
        )
    assert int(interrupted.d_optimizer.iterations) == STOP_AT * 4

    resumed = gan()
    history = resumed.fit(**fit, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert len(history.history["d_loss"]) == EPOCHS - STOP_AT

    expected, got = state(uninterrupted), state(resumed)
    assert len(got) == len(expected)
    for (name, value), (_, resumed_value) in zip(expected, got, strict=True):
        np.testing.assert_allclose(
            resumed_value, value, rtol=1e-5, atol=1e-6, err_msg=name
        )
    assert int(resumed.d_optimizer.iterations) == EPOCHS * 4
    assert int(resumed.g_optimizer.iterations) == EPOCHS * 4


def test_keras_custom_backup_and_restore_names_the_backend(tmp_path):
    with pytest.raises(ValueError, match="needs the TensorFlow backend"):
        keras_custom.callbacks.BackupAndRestore(os.fspath(tmp_path))
