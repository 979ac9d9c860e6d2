"""`CustomModel` in each of its forms passes the conformance harness."""

import keras
import numpy as np

from keras_custom import CustomModel
from keras_custom.testing import ConformanceTests, logical_cpus, mirrored_strategy
from tests.models import (
    EncoderHead,
    TutorialClassifier,
    digit_data,
    encoder_head,
    mlp,
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


class TestConstructorForm(ConformanceTests):
    """Optimizer and loss given to the constructor, `compile()` empty."""

    def build_model(self):
        return functional_classifier(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def data(self):
        return digit_data()


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


class TestTutorialSubclass(ConformanceTests):
    """The Keras guide's subclass, unchanged but for its base class."""

    log_keys = {"loss", "accuracy"}

    def build_model(self):
        model = TutorialClassifier()
        model(np.zeros((1, 64), "float32"))
        return model

    def data(self):
        return digit_data()

    def bad_inputs(self):
        return []  # its own train_step unpacks `data` as it pleases

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
        return []

    def test_is_encoder_head(self):
        assert isinstance(self.build_model(), EncoderHead)


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
