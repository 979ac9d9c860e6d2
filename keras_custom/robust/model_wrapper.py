"""What the robust models share: a wrapped Keras model and its compiled loss."""

from typing import Any

import keras

from keras_custom.core import CustomModel
from keras_custom.core.named_optimizers import OptimizerLike


class ModelWrapper(CustomModel):
    """Base of `SharpnessAwareModel` and `AdversarialModel`.

    Wraps a Keras model that `fit()` trains on the loss given to `compile()`
    (or to the constructor); `model(x)`, `predict(x)` and `export()` are the
    wrapped model's.

    Args:
        model: The model to train, a built Keras model.
        optimizer: Optimizer of the model (default as in `CustomModel`).
        loss: Loss, as in `compile(loss=...)`.
        **kwargs: Forwarded to `CustomModel`.
    """

    #: The network whose inputs `export()` serves.
    serving_network = "model"

    def __init__(
        self,
        model: keras.Model,
        optimizer: OptimizerLike = None,
        loss: Any = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, loss=loss, **kwargs)
        if not isinstance(model, keras.layers.Layer):
            raise ValueError(f"`model` must be a Keras model. Got: {model!r}.")
        self.model = model
        self.built = model.built

    def call(self, x, training=False):
        return self.model(x, training=training)

    def get_config(self) -> dict:
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config
