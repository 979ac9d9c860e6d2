"""Named optimizers, each tied to its own variables, against NumPy."""

import keras
import numpy as np
import pytest

from keras_custom.testing import assert_weights_close
from tests.models import digit_data, encoder_head


def sgd_model(activity_weight=0.3):
    keras.utils.set_random_seed(7)
    model = encoder_head(
        units=4,
        encoder_optimizer=keras.optimizers.SGD(0.5),
        head_optimizer=keras.optimizers.SGD(0.2),
        activity_weight=activity_weight,
    )
    model.compile()
    return model


def numpy_step(x, y, w1, b1, w2, b2, activity_weight=0.3):
    """One train step of `EncoderHead` with SGD(0.5) and SGD(0.2), by hand."""
    z = np.tanh(x @ w1 + b1)
    error = z @ w2 + b2 - y
    regression = np.mean(error**2)
    encoder_loss = regression + activity_weight * np.mean(z**2)
    d_z = 2 * error @ w2.T / error.size + activity_weight * 2 * z / z.size
    d_pre = d_z * (1 - z**2)
    w1, b1 = w1 - 0.5 * x.T @ d_pre, b1 - 0.5 * d_pre.sum(0)
    z = np.tanh(x @ w1 + b1)
    error = z @ w2 + b2 - y
    head_loss = np.mean(error**2)
    d_out = 2 * error / error.size
    w2, b2 = w2 - 0.2 * z.T @ d_out, b2 - 0.2 * d_out.sum(0)
    return (w1, b1, w2, b2), encoder_loss, head_loss


def test_each_optimizer_updates_its_own_sub_model():
    x, y = digit_data(32, one_hot=True)
    model = sgd_model()
    before = [w.astype("float64") for w in model.get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    expected, encoder_loss, head_loss = numpy_step(x, y, *before)
    assert_weights_close(model.get_weights(), expected, 1e-5, "weights after a step")
    np.testing.assert_allclose(logs["encoder_loss"], encoder_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["head_loss"], head_loss, rtol=1e-5)


def test_optimizers_are_tied_to_their_variables_and_built_before_training():
    model = sgd_model()
    assert model.optimizer is None  # only named optimizers are declared
    for name, owner in (
        ("encoder_optimizer", model.encoder),
        ("head_optimizer", model.head),
    ):
        assert [v.path for v in model.optimizer_variables(name)] == [
            v.path for v in owner.trainable_variables
        ]
        assert getattr(model, name).built


def test_compile_replaces_given_optimizers_and_keeps_the_others():
    model = sgd_model()
    encoder_optimizer = model.encoder_optimizer
    model.compile(head_optimizer="adam")
    assert model.encoder_optimizer is encoder_optimizer
    assert isinstance(model.head_optimizer, keras.optimizers.Adam)
    with pytest.raises(ValueError, match=r"unknown arguments \['d_optimizer'\]"):
        model.compile(d_optimizer="adam")


def test_defaults_when_no_optimizer_is_given():
    model = encoder_head()
    model.compile()
    assert isinstance(model.encoder_optimizer, keras.optimizers.Adam)
    assert isinstance(model.head_optimizer, keras.optimizers.Adam)


def test_backup_and_restore_resumes_every_optimizer(tmp_path):
    x, y = digit_data(64, one_hot=True)

    def fit(model, callbacks, epochs=3):
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    uninterrupted = sgd_model()
    uninterrupted.compile(encoder_optimizer="adam", head_optimizer="adam")
    fit(uninterrupted, [])

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = sgd_model()
    interrupted.compile(encoder_optimizer="adam", head_optimizer="adam")
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(interrupted, [backup, Interrupt()])
    resumed = sgd_model()
    resumed.compile(encoder_optimizer="adam", head_optimizer="adam")
    fit(resumed, [backup])
    assert int(resumed.encoder_optimizer.iterations) == 12
    assert int(resumed.head_optimizer.iterations) == 12
    assert_weights_close(
        resumed.get_weights(), uninterrupted.get_weights(), 1e-6, "resumed weights"
    )
