"""The conformance harness checks itself: each check fails on a model built
to break what it checks.

`Regressor` is a small linear regression written as a `CustomModel`;
`TestHealthyRegressor` runs the whole matrix on it, so each failure below
comes from the one thing its variant breaks, not from the baseline.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_custom import CustomModel
from keras_custom.core.input_checks import require_labels
from keras_custom.testing import ConformanceTests

#: What a failing check raises: a failed assertion, or `pytest.fail`
#: (`pytest.raises` that saw no error, an empty `bad_inputs()`).
FAILS = (AssertionError, pytest.fail.Exception)

register = keras.saving.register_keras_serializable(package="harness_self_check")


def regression_data(scale: float = 1.0):
    """48 rows of 4 features (3 batches of 16) and a linear target."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = x @ rng.normal(size=(4, 1)) + 0.5
    return x, (scale * y).astype("float32")


@register
class Regressor(CustomModel):
    """The healthy baseline: mean squared error through `minimize`."""

    def __init__(self, units: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)
        self.loss_fn = keras.losses.MeanSquaredError()
        self.add_tracker("loss")

    def call(self, x, training=False):
        return self.dense(x)

    def loss_value(self, x, y, training):
        """The batch's loss: a Keras `Loss`, the mean over the batch."""
        return self.loss_fn(y, self(x, training=training))

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        require_labels(y, self)
        return x, y

    def train_step(self, data):
        x, y = self._unpack(data)
        return {"loss": self.minimize(lambda: self.loss_value(x, y, True))}

    def test_step(self, data):
        x, y = self._unpack(data)
        return {"loss": self.loss_value(x, y, False)}

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class RegressorChecks(ConformanceTests):
    """The matrix on `model_class` (not collected: no `Test` prefix)."""

    model_class = Regressor
    learning_rate = 0.05

    def build_model(self):
        model = self.model_class(optimizer=keras.optimizers.SGD(self.learning_rate))
        model(np.zeros((1, 4), "float32"))
        return model

    def data(self):
        return regression_data()

    def bad_inputs(self):
        x, _ = self.data()
        return [*super().bad_inputs(), ({"x": x}, r"was given no labels")]


class TestHealthyRegressor(RegressorChecks):
    """The baseline passes every check."""


def checks(model_class, **attributes) -> ConformanceTests:
    """The checks of `model_class`, with class attributes overridden."""
    name = f"{model_class.__name__}Checks"
    return type(name, (RegressorChecks,), {"model_class": model_class, **attributes})()


# ----------------------------------------------------------------------
# fit logs: documented keys, finite values, trackers reset every epoch
# ----------------------------------------------------------------------


class LogsUndocumentedKey(Regressor):
    """Logs a key its test class does not list in `log_keys`."""

    def train_step(self, data):
        logs = super().train_step(data)
        norm = ops.sqrt(ops.sum(ops.square(self.dense.kernel)))
        return {**logs, "kernel_norm": norm}


class LogsInfinity(Regressor):
    """Logs the log of a zero."""

    def train_step(self, data):
        loss = super().train_step(data)["loss"]
        return {"loss": ops.log(loss - loss)}


class NeverResetsMetrics(Regressor):
    """Keeps its trackers' sums from one epoch to the next."""

    def reset_metrics(self):
        pass


def test_fit_logs_fails_on_an_undocumented_key():
    with pytest.raises(FAILS, match=r"logged .*kernel_norm.*, documented"):
        checks(LogsUndocumentedKey).test_fit_logs()


def test_fit_logs_fails_on_a_value_that_is_not_finite():
    with pytest.raises(FAILS, match=r"'loss' is not finite"):
        checks(LogsInfinity).test_fit_logs()


def test_fit_logs_fails_when_trackers_are_not_reset():
    with pytest.raises(FAILS, match=r"metric 'loss' was not reset between epochs"):
        checks(NeverResetsMetrics).test_fit_logs()


# ----------------------------------------------------------------------
# fit on NumPy equals fit on tf.data
# ----------------------------------------------------------------------


class DividesByStaticBatchSize(Regressor):
    """Divides by the static batch size, known for NumPy batches but `None`
    for a `tf.data` batch, where it falls back to 32."""

    def loss_value(self, x, y, training):
        errors = ops.square(self(x, training=training) - y)
        return ops.sum(errors) / (x.shape[0] or 32)


def test_fit_numpy_equals_tf_data_fails_on_a_static_batch_size():
    with pytest.raises(FAILS, match=r"after fit\(tf.data\) vs fit\(numpy\)"):
        checks(DividesByStaticBatchSize).test_fit_numpy_equals_tf_data()


# ----------------------------------------------------------------------
# evaluate() is the mean over all batches
# ----------------------------------------------------------------------


class SumsItsLoss(Regressor):
    """Accumulates its loss in a `Sum` metric of its own: `evaluate()`
    reports the total over the batches, not their mean."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_sum = keras.metrics.Sum(name="loss")

    def test_step(self, data):
        x, y = self._unpack(data)
        self.loss_sum.update_state(self.loss_value(x, y, False))
        return {"loss": self.loss_sum.result()}


def test_evaluate_is_mean_over_batches_fails_on_a_sum():
    with pytest.raises(FAILS, match=r"evaluate\(\)\['loss'\] = .*, mean over batches"):
        checks(SumsItsLoss).test_evaluate_is_mean_over_batches()


# ----------------------------------------------------------------------
# compile() builds every optimizer
# ----------------------------------------------------------------------


class HeadBuiltInTheStep(Regressor):
    """A second optimizer for a layer that only its `train_step` calls, so
    the layer (and the optimizer) is not built when `compile()` runs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.head = keras.layers.Dense(1)
        self.add_optimizer("head_optimizer", "sgd", self.head)

    def train_step(self, data):
        x, y = self._unpack(data)
        loss = self.minimize(lambda: self.loss_value(x, y, True))
        self.minimize(
            lambda: self.loss_fn(y, self.head(x, training=True)),
            optimizer="head_optimizer",
        )
        return {"loss": loss}


def test_optimizers_built_by_compile_fails_on_an_unbuilt_layer():
    with pytest.raises(FAILS, match=r"'head_optimizer' is not built by compile"):
        checks(HeadBuiltInTheStep).test_optimizers_built_by_compile()


# ----------------------------------------------------------------------
# configuration, saving, resuming
# ----------------------------------------------------------------------


@register
class ForgetsAnArgument(Regressor):
    """Scales its output by `scale`, which `get_config` leaves out."""

    def __init__(self, scale: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x, training=False):
        return self.dense(x) * self.scale


class ForgetsAnArgumentChecks(RegressorChecks):
    def build_model(self):
        model = ForgetsAnArgument(scale=0.5, optimizer="sgd")
        model(np.zeros((1, 4), "float32"))
        return model


def test_config_round_trip_fails_on_a_missing_argument():
    with pytest.raises(FAILS, match=r"Not equal to tolerance"):
        ForgetsAnArgumentChecks().test_config_round_trip()


@register
class UnsavedState(Regressor):
    """Shifts its output by a raw `tf.Variable` that training moves: Keras
    neither tracks nor saves it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = tf.Variable(0.0, trainable=False)

    def call(self, x, training=False):
        return self.dense(x) + self.offset

    def train_step(self, data):
        logs = super().train_step(data)
        self.offset.assign_add(0.25)
        return logs


def test_save_and_load_fails_on_unsaved_state():
    with pytest.raises(FAILS, match=r"Not equal to tolerance"):
        checks(UnsavedState).test_save_and_load()


@register
class UndeclaredOptimizer(Regressor):
    """Trains with an optimizer hidden in a list instead of one declared with
    `add_optimizer` or held as an attribute (both of which the core builds
    and restores): it is built inside the first step, and a loaded model
    restores no state into it (Keras skips the saved state of an optimizer
    that is not built)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.adams = [keras.optimizers.Adam(0.05)]

    def train_step(self, data):
        x, y = self._unpack(data)
        loss = self.minimize(
            lambda: self.loss_value(x, y, True),
            self.dense.trainable_variables,
            self.adams[0],
        )
        return {"loss": loss}


def test_resume_equals_uninterrupted_fails_on_an_undeclared_optimizer():
    with pytest.raises(FAILS, match=r"1 epoch \+ save \+ load \+ 1 epoch vs 2"):
        checks(UndeclaredOptimizer).test_resume_equals_uninterrupted()


# ----------------------------------------------------------------------
# execution modes
# ----------------------------------------------------------------------


class UnseededNoise(Regressor):
    """Scales its loss by a number from an unseeded NumPy generator, which
    `keras.utils.set_random_seed` does not reach."""

    def loss_value(self, x, y, training):
        jitter = np.random.default_rng().normal()
        return super().loss_value(x, y, training) * (1.0 + 0.1 * jitter)


def test_runs_are_bit_identical_fails_on_unseeded_randomness():
    with pytest.raises(FAILS, match=r"weights\[\d+\] differ"):
        checks(UnseededNoise).test_runs_are_bit_identical()


class _HalveLearningRate(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        rate = self.model.optimizer.learning_rate
        rate.assign(rate * 0.5)


class DecaysInABatchCallback(Regressor):
    """Halves its learning rate in a batch callback it adds to every
    `fit()`: Keras calls batch callbacks once per execution, so with
    `steps_per_execution=3` the rate decays less often."""

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = [*(callbacks or []), _HalveLearningRate()]
        return super().fit(*args, callbacks=callbacks, **kwargs)


def test_steps_per_execution_fails_on_a_batch_callback():
    with pytest.raises(FAILS, match=r"weights with \{'steps_per_execution': 3\}"):
        checks(DecaysInABatchCallback).test_steps_per_execution()


class NoisyInputs(Regressor):
    """Adds seeded noise to its inputs in training, while its test class
    keeps `draws_random_numbers = False`: XLA draws other numbers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(7)

    def loss_value(self, x, y, training):
        if training:
            noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)
            x = x + 0.5 * noise
        return super().loss_value(x, y, training)


def test_jit_compile_fails_on_undeclared_random_numbers():
    with pytest.raises(FAILS, match=r"weights with \{'jit_compile': True\}"):
        checks(NoisyInputs).test_jit_compile()


class SumsInFloat16(Regressor):
    """Sums squared errors in the compute dtype: float16 overflows (its
    largest value is 65504) under `mixed_float16`."""

    def loss_value(self, x, y, training):
        prediction = self(x, training=training)
        errors = ops.square(prediction - ops.cast(y, prediction.dtype))
        count = ops.cast(ops.shape(x)[0], errors.dtype)
        return ops.sum(errors) / count


def test_mixed_float16_fails_on_a_float16_overflow():
    # Targets of a few hundred: squared errors of about 1e5 each.
    broken = checks(
        SumsInFloat16, learning_rate=1e-6, data=lambda self: regression_data(300.0)
    )
    with pytest.raises(FAILS, match=r"mixed_float16 fit: 'loss' is not finite"):
        broken.test_mixed_float16()


class ReplacesItsOptimizer(Regressor):
    """Sets a new optimizer after `compile()`, past the core, which wraps
    every optimizer for loss scaling."""

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        self._set_untracked("optimizer", keras.optimizers.SGD(0.05))


def test_mixed_float16_fails_on_an_optimizer_without_loss_scaling():
    with pytest.raises(FAILS, match=r"'optimizer' is not loss-scaled"):
        checks(ReplacesItsOptimizer).test_mixed_float16()


class OwnTape(Regressor):
    """Takes its gradients under a `tf.GradientTape` of its own, past
    `minimize`: under `MirroredStrategy` the optimizer sums the gradients of
    the replicas, each of its own batch's mean, twice one device's."""

    def train_step(self, data):
        x, y = self._unpack(data)
        variables = self.dense.trainable_variables
        with tf.GradientTape() as tape:
            loss = ops.mean(ops.square(self(x, training=True) - y))
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return {"loss": loss}


def test_mirrored_strategy_fails_on_gradients_taken_past_minimize():
    with pytest.raises(FAILS, match=r"weights under MirroredStrategy vs one device"):
        checks(OwnTape).test_mirrored_strategy_equals_one_device()


def off_by_the_replicas(where: str, factor: str) -> str:
    """The strategy check's error for a value `where` logged, `factor` (`"1/2
    of"`, `"2 times"`) one device's: the key, the ratio and what to change."""
    return (
        rf"{where} logged 'loss' = \S+ on 2 replicas of MirroredStrategy, "
        rf"{factor} the \S+ of one device: .* Compute it inside `minimize`'s "
        r"loss function or `compute_loss`; a Keras `Loss` called elsewhere in "
        r"`train_step` is divided by the replica count"
    )


class LogsALossOutsideMinimize(Regressor):
    """Minimizes its loss, then logs it computed again with its Keras `Loss`
    outside `minimize`, where Keras divides it by the replica count: the
    weights are right, the logged `loss` is half of one device's."""

    def train_step(self, data):
        x, y = self._unpack(data)
        self.minimize(lambda: self.loss_value(x, y, True))
        return {"loss": self.loss_value(x, y, True)}


class MultipliesByTheReplicas(Regressor):
    """Multiplies its evaluated loss by the replica count, as code written
    for Keras's division once had to."""

    def test_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return {"loss": super().test_step(data)["loss"] * replicas}


def test_mirrored_strategy_fails_on_a_keras_loss_logged_outside_minimize():
    with pytest.raises(FAILS, match=off_by_the_replicas(r"fit\(\)", "1/2 of")):
        checks(LogsALossOutsideMinimize).test_mirrored_strategy_equals_one_device()


def test_mirrored_strategy_fails_on_an_evaluated_loss_times_the_replicas():
    pattern = off_by_the_replicas(r"evaluate\(\)", "2 times")
    with pytest.raises(FAILS, match=pattern):
        checks(MultipliesByTheReplicas).test_mirrored_strategy_equals_one_device()


# ----------------------------------------------------------------------
# frozen parts
# ----------------------------------------------------------------------


class TrainsItsTeacher(Regressor):
    """Adds a teacher meant to stay frozen, but left trainable: `minimize`
    updates it with the rest."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.teacher = keras.layers.Dense(1)

    def call(self, x, training=False):
        return self.dense(x) + self.teacher(x)


def test_frozen_variables_unchanged_fails_on_a_trained_teacher():
    broken = checks(
        TrainsItsTeacher, frozen_variables=lambda self, model: model.teacher.weights
    )
    with pytest.raises(FAILS, match=r"frozen variables\[\d\] differ"):
        broken.test_frozen_variables_unchanged()


def test_frozen_variables_unchanged_fails_when_nothing_trains():
    with pytest.raises(FAILS, match=r"training changed no weight at all"):
        checks(Regressor, learning_rate=0.0).test_frozen_variables_unchanged()


# ----------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------


class AcceptsMissingLabels(Regressor):
    """Trains towards zeros when it is given no labels."""

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, ops.zeros((ops.shape(x)[0], 1)) if y is None else y


class UncheckedLabels(Regressor):
    """Does not check for labels: the loss fails on `None` targets."""

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, y


class RawMatmul(Regressor):
    """Multiplies by its kernel itself, past `Dense`'s input check."""

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x, training=False):
        return ops.matmul(x, self.dense.kernel) + self.dense.bias


def test_bad_input_fails_when_bad_input_is_accepted():
    with pytest.raises(FAILS, match=r"DID NOT RAISE"):
        checks(AcceptsMissingLabels).test_bad_input_raises_clear_error()


def test_bad_input_fails_when_no_bad_input_is_given():
    broken = checks(Regressor, bad_inputs=lambda self: [])
    with pytest.raises(FAILS, match=r"bad_inputs\(\) is empty.*override"):
        broken.test_bad_input_raises_clear_error()


def test_bad_input_fails_on_an_unclear_error():
    with pytest.raises(FAILS, match=r"does not match 'was given no labels'"):
        checks(UncheckedLabels).test_bad_input_raises_clear_error()


def test_bad_input_fails_on_an_error_from_a_graph_operation():
    x, y = regression_data()
    wide = np.zeros((48, 7), "float32")
    broken = checks(
        RawMatmul,
        bad_inputs=lambda self: [({"x": wide, "y": y}, r"(?i)dimensions")],
    )
    with pytest.raises(FAILS, match=r"failed inside a graph operation"):
        broken.test_bad_input_raises_clear_error()


def test_bad_input_matches_the_message_not_the_traceback():
    # "_unpack" is in the traceback of the traced step, not in the message.
    x, _ = regression_data()
    broken = checks(Regressor, bad_inputs=lambda self: [({"x": x}, r"_unpack")])
    with pytest.raises(FAILS, match=r"does not match '_unpack'"):
        broken.test_bad_input_raises_clear_error()
