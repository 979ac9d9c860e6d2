"""Keras `Loss` objects, raw `ops.mean` or both: one loss, on any device count.

`minimize`'s loss function and `compute_loss` run with every loss a mean
over the replica's batch, and the core divides the total by the replica
count once. So the three ways of writing the same loss (Keras `Loss`
objects only, `ops.mean` only, both in one total) train to the same
weights and log the same values, on one device and on two replicas, in
either form of a model: `minimize` in `train_step` with a `test_step`, or
the `compute_loss` hook. Each of the six models passes the conformance
harness, whose strategy check compares the logs too; a direct test
compares them with NumPy.
"""

import contextlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_custom import CustomModel
from keras_custom.core.input_checks import require_labels
from keras_custom.testing import (
    ConformanceTests,
    assert_weights_close,
    logical_cpus,
    mirrored_strategy,
)
from tests.models import wrong_width

register = keras.saving.register_keras_serializable(package="replica_arithmetic")

#: The weight of the mean absolute error in the total loss.
MAE_WEIGHT = 0.5
LEARNING_RATE = 0.05
BATCH_SIZE = 16


def regression_data():
    """48 rows of 4 features (3 batches of 16) and two linear targets."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = x @ rng.normal(size=(4, 2)) + np.array([0.5, -1.0])
    return x, y.astype("float32")


class Regression(CustomModel):
    """A linear regression that logs its total loss and its two terms.

    The loss is `mse + mae_weight * mae`; a subclass writes it (`terms`)
    and chooses how it is minimized.
    """

    def __init__(self, units: int = 2, mae_weight: float = MAE_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.mae_weight = mae_weight
        self.dense = keras.layers.Dense(units)
        self.mean_squared_error = keras.losses.MeanSquaredError()
        self.mean_absolute_error = keras.losses.MeanAbsoluteError()
        for name in ("loss", "mse", "mae"):
            self.add_tracker(name)

    def call(self, x, training=False):
        return self.dense(x)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "mae_weight": self.mae_weight,
        }


# The three ways of writing the loss.


class KerasLossTerms:
    def terms(self, y, prediction):
        require_labels(y, self)
        mse = self.mean_squared_error(y, prediction)
        mae = self.mean_absolute_error(y, prediction)
        return {"loss": mse + self.mae_weight * mae, "mse": mse, "mae": mae}


class RawMeanTerms:
    def terms(self, y, prediction):
        require_labels(y, self)
        error = prediction - ops.cast(y, prediction.dtype)
        mse = ops.mean(ops.square(error))
        mae = ops.mean(ops.abs(error))
        return {"loss": mse + self.mae_weight * mae, "mse": mse, "mae": mae}


class MixedTerms:
    def terms(self, y, prediction):
        require_labels(y, self)
        mse = self.mean_squared_error(y, prediction)
        # A Keras `Loss` computes in float32, the layers in float16 under
        # `mixed_float16`: the raw term is cast to be added to it.
        error = ops.cast(prediction, "float32") - ops.cast(y, "float32")
        mae = ops.mean(ops.abs(error))
        return {"loss": mse + self.mae_weight * mae, "mse": mse, "mae": mae}


# The two forms of a model.


class WithMinimize(Regression):
    """`minimize` in `train_step`, and a `test_step` of the same terms."""

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.minimize(lambda: self.terms(y, self(x, training=True)))

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.terms(y, self(x, training=False))


class WithComputeLoss(Regression):
    """Keras's `compute_loss` hook; the core derives both steps from it."""

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return self.terms(y, y_pred)


@register
class KerasLossesWithMinimize(KerasLossTerms, WithMinimize):
    pass


@register
class RawMeansWithMinimize(RawMeanTerms, WithMinimize):
    pass


@register
class MixedWithMinimize(MixedTerms, WithMinimize):
    pass


@register
class KerasLossesWithComputeLoss(KerasLossTerms, WithComputeLoss):
    pass


@register
class RawMeansWithComputeLoss(RawMeanTerms, WithComputeLoss):
    pass


@register
class MixedWithComputeLoss(MixedTerms, WithComputeLoss):
    pass


MODELS = [
    KerasLossesWithMinimize,
    RawMeansWithMinimize,
    MixedWithMinimize,
    KerasLossesWithComputeLoss,
    RawMeansWithComputeLoss,
    MixedWithComputeLoss,
]


# ----------------------------------------------------------------------
# The conformance harness on each
# ----------------------------------------------------------------------


class RegressionChecks(ConformanceTests):
    """The matrix on `model_class` (not collected: no `Test` prefix)."""

    model_class = KerasLossesWithMinimize
    log_keys = {"loss", "mse", "mae"}

    def build_model(self):
        model = self.model_class(optimizer=keras.optimizers.SGD(LEARNING_RATE))
        model(np.zeros((1, 4), "float32"))
        return model

    def data(self):
        return regression_data()

    def bad_inputs(self):
        x, y = self.data()
        return [
            *super().bad_inputs(),
            ({"x": x}, r"was given no labels"),
            (
                {"x": wrong_width(x), "y": y},
                r"expected axis -1 of input shape to have value 4, but received "
                r"input with shape \(16, 7\)",
            ),
        ]


class TestKerasLossesWithMinimize(RegressionChecks):
    model_class = KerasLossesWithMinimize


class TestRawMeansWithMinimize(RegressionChecks):
    model_class = RawMeansWithMinimize


class TestMixedWithMinimize(RegressionChecks):
    model_class = MixedWithMinimize


# The three ways through the hook are checked on one device, two replicas
# and NumPy below; the harness runs the mixed one (it holds both others).
class TestMixedWithComputeLoss(RegressionChecks):
    model_class = MixedWithComputeLoss


# ----------------------------------------------------------------------
# One device, two replicas and NumPy
# ----------------------------------------------------------------------


def initial_weights():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(4, 2)).astype("float32"), np.zeros(2, "float32")]


def numpy_terms(x, y, kernel, bias):
    """`(loss, mse, mae)` and the gradients of the loss for `kernel`, `bias`."""
    error = x @ kernel + bias - y
    mse, mae = np.mean(error**2), np.mean(np.abs(error))
    d_error = (2 * error + MAE_WEIGHT * np.sign(error)) / error.size
    return (mse + MAE_WEIGHT * mae, mse, mae), (x.T @ d_error, d_error.sum(0))


def numpy_run():
    """One epoch of SGD in NumPy: the epoch's logs, the weights, and the
    evaluation of the trained weights."""
    x, y = (a.astype("float64") for a in regression_data())
    kernel, bias = (w.astype("float64") for w in initial_weights())
    batches = []
    for start in range(0, len(x), BATCH_SIZE):
        rows = slice(start, start + BATCH_SIZE)
        values, (d_kernel, d_bias) = numpy_terms(x[rows], y[rows], kernel, bias)
        batches.append(values)
        kernel = kernel - LEARNING_RATE * d_kernel
        bias = bias - LEARNING_RATE * d_bias
    evaluation = np.mean(
        [
            numpy_terms(x[i : i + BATCH_SIZE], y[i : i + BATCH_SIZE], kernel, bias)[0]
            for i in range(0, len(x), BATCH_SIZE)
        ],
        axis=0,
    )
    keys = ("loss", "mse", "mae")
    return (
        dict(zip(keys, np.mean(batches, axis=0), strict=True)),
        [kernel, bias],
        dict(zip(keys, evaluation, strict=True)),
    )


def keras_run(model_class, strategy=None):
    """The same epoch with `fit()`, on one device or under `strategy`."""
    with contextlib.nullcontext() if strategy is None else strategy.scope():
        model = model_class()
        model(np.zeros((1, 4), "float32"))
        model.set_weights(initial_weights())
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
    x, y = regression_data()
    history = model.fit(x, y, batch_size=BATCH_SIZE, shuffle=False, verbose=0)
    logs = {key: values[0] for key, values in history.history.items()}
    evaluation = model.evaluate(
        x, y, batch_size=BATCH_SIZE, verbose=0, return_dict=True
    )
    return logs, model.get_weights(), evaluation


@pytest.mark.parametrize("model_class", MODELS, ids=lambda cls: cls.__name__)
def test_one_device_and_two_replicas_equal_numpy(model_class):
    devices = logical_cpus()
    # tests/conftest.py splits the CPU in two: a missing device is a failure.
    assert len(devices) >= 2, "needs two logical CPUs: split_cpu(2) in conftest.py"
    expected_logs, expected_weights, expected_evaluation = numpy_run()
    runs = {
        "one device": keras_run(model_class),
        "two replicas": keras_run(model_class, mirrored_strategy(tuple(devices[:2]))),
    }
    for where, (logs, weights, evaluation) in runs.items():
        assert set(logs) == set(evaluation) == set(expected_logs), where
        for key, expected in expected_logs.items():
            np.testing.assert_allclose(
                logs[key], expected, rtol=1e-5, err_msg=f"{where}: fit '{key}'"
            )
            np.testing.assert_allclose(
                evaluation[key],
                expected_evaluation[key],
                rtol=1e-5,
                err_msg=f"{where}: evaluate '{key}'",
            )
        assert_weights_close(weights, expected_weights, 1e-5, f"{where}: weights")
