"""Small models the tests share."""

import keras
import numpy as np
import tensorflow as tf

from keras_custom import CustomModel
from keras_custom.core import serialize_scalar, validate_scalar
from keras_custom.core.input_checks import require_labels
from keras_custom.datasets import digits


def digit_data(count: int = 64, one_hot: bool = False):
    """The first `count` training digits, flattened and scaled to [0, 1]."""
    (x, y), _ = digits.load_data()
    x = (x[:count].reshape(count, 64) / 16.0).astype("float32")
    y = y[:count].astype("int32")
    if one_hot:
        y = np.eye(10, dtype="float32")[y]
    return x, y


def wrong_width(x, extra: int = 3):
    """Zeros like `x` with `extra` more features: inputs of the wrong shape."""
    return np.zeros(x.shape[:-1] + (x.shape[-1] + extra,), x.dtype)


def supervised_bad_inputs(x, y, shape_pattern: str) -> list:
    """Bad inputs of a supervised model: no labels, inputs too wide.

    Args:
        x: Inputs, `(count, features)`.
        y: Labels.
        shape_pattern: Regex of the error for inputs of the wrong shape.
    """
    return [
        ({"x": x}, r"was given no labels"),
        ({"x": wrong_width(x), "y": y}, shape_pattern),
    ]


def functional_shape_error(name: str) -> str:
    """Regex of Keras's error when a functional model (or sub-model) named
    `name` (a regex), built on `keras.Input((64,))`, gets a batch of 16
    inputs of 67 features."""
    return (
        # Keras 3.15 quotes the layer's name with ', Keras 3.12 with ".
        rf"of layer ['\"]{name}['\"] is incompatible with the layer: expected "
        r"shape=\(None, 64\), found shape=\(16, 67\)"
    )


def mlp(name: str = "mlp", units: int = 16) -> keras.Model:
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(units, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(hidden), name=name)


@keras.saving.register_keras_serializable(package="keras_custom_tests")
class EncoderHead(CustomModel):
    """Two sub-models, each with its own optimizer and its own loss.

    The encoder is trained on the head's regression error through the head,
    plus `activity_weight` times the mean squared features; the head is
    trained on the regression error of stop-gradient features.
    """

    def __init__(
        self,
        encoder,
        head,
        encoder_optimizer=None,
        head_optimizer=None,
        activity_weight=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        self.activity_weight = validate_scalar(activity_weight, "activity_weight")
        self.add_optimizer("encoder_optimizer", encoder_optimizer, encoder, "adam")
        self.add_optimizer("head_optimizer", head_optimizer, head, "adam")
        self.regression_loss = keras.losses.MeanSquaredError()
        self.add_tracker("encoder_loss")
        self.add_tracker("head_loss")
        # Built sub-models leave nothing to build (BackupAndRestore asks).
        self.built = encoder.built and head.built

    def call(self, x, training=False):
        return self.head(self.encoder(x, training=training), training=training)

    def _regression_losses(self, x, y, training):
        features = self.encoder(x, training=training)
        regression = self.regression_loss(y, self.head(features, training=training))
        activity = self.regression_loss(keras.ops.zeros_like(features), features)
        weight = self.scalar(self.activity_weight, "encoder_optimizer")
        return regression + weight * activity, features

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        require_labels(y, self, "its regression losses need targets `y`")
        encoder_loss, _ = self.minimize(
            lambda: self._regression_losses(x, y, training=True),
            optimizer="encoder_optimizer",
        )

        def head_loss():
            features = keras.ops.stop_gradient(self.encoder(x, training=True))
            return self.regression_loss(y, self.head(features, training=True))

        head_loss = self.minimize(head_loss, optimizer="head_optimizer")
        return {"encoder_loss": encoder_loss, "head_loss": head_loss}

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        require_labels(y, self, "its regression losses need targets `y`")
        encoder_loss, features = self._regression_losses(x, y, training=False)
        head_loss = self.regression_loss(y, self.head(features, training=False))
        return {"encoder_loss": encoder_loss, "head_loss": head_loss}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "head": keras.saving.serialize_keras_object(self.head),
                "activity_weight": serialize_scalar(self.activity_weight),
            }
        )
        return config


def encoder_head(units: int = 8, **kwargs) -> EncoderHead:
    encoder_in = keras.Input((64,))
    encoder = keras.Model(
        encoder_in,
        keras.layers.Dense(units, activation="tanh")(encoder_in),
        name="encoder",
    )
    head_in = keras.Input((units,))
    head = keras.Model(head_in, keras.layers.Dense(10)(head_in), name="head")
    return EncoderHead(encoder, head, **kwargs)


def tutorial_class(base):
    """The Keras guide's subclass, with `base` as its base class."""

    class TutorialClassifier(base):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(16, activation="relu")
            self.logits = keras.layers.Dense(10)
            self.optimizer = keras.optimizers.Adam(0.01)
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

        def call(self, x):
            return self.logits(self.hidden(x))

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.loss_fn(y, y_pred)
            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))  # noqa: B905
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(y, y_pred)
            return {
                "loss": self.loss_tracker.result(),
                "accuracy": self.accuracy.result(),
            }

        @property
        def metrics(self):
            return [self.loss_tracker, self.accuracy]

    return TutorialClassifier


# The guide's class on `CustomModel`, registered so that saved copies load.
TutorialClassifier = keras.saving.register_keras_serializable(
    package="keras_custom_tests"
)(tutorial_class(CustomModel))
