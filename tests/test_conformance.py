"""`CustomModel` in each of its forms passes the conformance harness."""

import keras
import numpy as np
import pytest

from keras_custom import CustomModel
from keras_custom.testing import ConformanceTests, logical_cpus, mirrored_strategy
from tests.models import (
    EncoderHead,
    TutorialClassifier,
    digit_data,
    encoder_head,
    functional_shape_error,
    mlp,
    supervised_bad_inputs,
    wrong_width,
)

#: Keras's error when a `Dense(units)` on 64 features gets 16 rows of 67.
DENSE_SHAPE_ERROR = (
    r"expected axis -1 of input shape to have value 64, but received input "
    r"with shape \(16, 67\)"
)


def functional_classifier(**kwargs) -> CustomModel:
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    return CustomModel(inputs, keras.layers.Dense(10)(hidden), **kwargs)


class TestFunctionalCompileForm(ConformanceTests):
    """`CustomModel(inputs, outputs)` compiled like a `keras.Model`."""

    log_keys = {"loss", "accuracy"}

    def build_model(self):
        return functional_classifier()

    def compile_kwargs(self):
        return {
            "optimizer": "adam",
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": ["accuracy"],
        }

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return [
            *super().bad_inputs(),
            *supervised_bad_inputs(x, y, functional_shape_error(r"custom_model\w*")),
            # One-hot rows where the sparse loss takes class ids.
            (
                {"x": x, "y": np.eye(10, dtype="float32")[y]},
                r"target\.shape=\(16, 10\), output\.shape=\(16, 10\)",
            ),
            ({"x": x.astype(str), "y": y}, r"Invalid dtype: str"),
        ]


class TestConstructorForm(ConformanceTests):
    """Optimizer and loss given to the constructor, `compile()` empty."""

    def build_model(self):
        return functional_classifier(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return super().bad_inputs() + supervised_bad_inputs(
            x, y, functional_shape_error(r"custom_model\w*")
        )


@keras.saving.register_keras_serializable(package="keras_custom_tests")
class SubclassedClassifier(CustomModel):
    """Subclass style: layers in `__init__`, `call` written by hand."""

    def __init__(self, units=16, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.logits = keras.layers.Dense(10)

    def call(self, x):
        return self.logits(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class TestSubclassForm(ConformanceTests):
    def build_model(self):
        model = SubclassedClassifier(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model(np.zeros((1, 64), "float32"))
        return model

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return super().bad_inputs() + supervised_bad_inputs(x, y, DENSE_SHAPE_ERROR)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the Keras guide's TensorFlow step takes a tf.GradientTape",
)
class TestTutorialSubclass(ConformanceTests):
    """The Keras guide's subclass, unchanged but for its base class."""

    log_keys = {"loss", "accuracy"}
    # Its step takes its own tape and logs the Keras `Loss` value it
    # differentiates, which Keras divides by the replica count: `keras.Model`
    # logs the same (the weights are those of one device).
    replica_divided_train_logs = {"loss"}

    def build_model(self):
        model = TutorialClassifier()
        model(np.zeros((1, 64), "float32"))
        return model

    def data(self):
        return digit_data()

    def bad_inputs(self):
        # Its own `train_step` unpacks `x, y = data`, as the guide writes
        # it, so `fit(x)` without labels fails there (not a ValueError);
        # the core checks the batch's structure before its step runs.
        x, y = self.data()
        return [
            *super().bad_inputs(),
            ({"x": wrong_width(x), "y": y}, DENSE_SHAPE_ERROR),
        ]

    def test_evaluate_is_mean_over_batches(self):
        # Its own tracker is unweighted, as the guide writes it, so the
        # reference is the plain mean of per-batch losses.
        model = self._seeded_model()
        self._fit(model)
        x, y = self.data()
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        batches = [
            float(loss_fn(y[i : i + 16], model(x[i : i + 16])))
            for i in range(0, len(x), 16)
        ]
        result = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        np.testing.assert_allclose(result["loss"], np.mean(batches), rtol=1e-5)


class TestTwoOptimizerModel(ConformanceTests):
    """Two sub-models, each with its own optimizer and loss."""

    log_keys = {"encoder_loss", "head_loss"}

    def build_model(self):
        return encoder_head(
            encoder_optimizer=keras.optimizers.Adam(0.01),
            head_optimizer=keras.optimizers.SGD(0.1),
            activity_weight=keras.optimizers.schedules.PolynomialDecay(0.0, 10, 0.5),
        )

    def data(self):
        return digit_data(one_hot=True)

    def bad_inputs(self):
        x, y = self.data()
        return super().bad_inputs() + supervised_bad_inputs(
            x, y, functional_shape_error("encoder")
        )

    def test_is_encoder_head_with_two_optimizers(self):
        # The exact class (not a functional variant of it), and its two
        # named optimizers only: no implicit third one from `compile()`.
        model = self._seeded_model()
        assert type(model) is EncoderHead
        assert sorted(model.optimizers) == ["encoder_optimizer", "head_optimizer"]


class TestFrozenLayer(ConformanceTests):
    """A frozen layer stays as it was; the rest trains."""

    def build_model(self):
        base = mlp("frozen_base")
        base.layers[1].trainable = False
        inputs = keras.Input((64,))
        return CustomModel(
            inputs,
            base(inputs),
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def frozen_variables(self, model):
        return model.layers[1].layers[1].weights

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return super().bad_inputs() + supervised_bad_inputs(
            x, y, functional_shape_error(r"custom_model\w*")
        )


class TestDropoutModel(ConformanceTests):
    """Random masks: their generator state is saved and resumed too."""

    def build_model(self):
        inputs = keras.Input((64,))
        hidden = keras.layers.Dropout(0.3, seed=5)(
            keras.layers.Dense(16, activation="relu")(inputs)
        )
        return CustomModel(
            inputs,
            keras.layers.Dense(10)(hidden),
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return super().bad_inputs() + supervised_bad_inputs(
            x, y, functional_shape_error(r"custom_model\w*")
        )

    def test_mirrored_strategy_equals_one_device(self):
        # Each replica masks its half of the batch with its own draws, so
        # the weights differ from one device by design; training must work.
        strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
        with strategy.scope():
            model = self._seeded_model()
        history = self._fit(model, epochs=2)
        self._assert_finite(history.history, "MirroredStrategy fit")
        assert history.history["loss"][1] < history.history["loss"][0]

    def test_jit_compile(self):
        # XLA draws its random numbers with another algorithm than TensorFlow
        # does, so the masks, and thus the weights, differ by design.
        model = self._seeded_model(jit_compile=True)
        history = self._fit(model, epochs=2)
        self._assert_finite(history.history, "jit_compile fit")
        assert history.history["loss"][1] < history.history["loss"][0]
