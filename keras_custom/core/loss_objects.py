"""Losses given as objects, names or functions, as `compile(loss=...)` takes."""

import keras
from keras.src.losses.losses import LossFunctionWrapper


def as_loss(identifier, default: keras.losses.Loss) -> keras.losses.Loss:
    """A `keras.losses.Loss` from a `Loss`, a loss name or a loss function."""
    if identifier is None:
        return default
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, keras.losses.Loss):
        return identifier
    function = keras.losses.get(identifier) if isinstance(identifier, str) else None
    function = function or identifier
    if isinstance(function, keras.losses.Loss):
        return function
    if not callable(function):
        raise ValueError(
            "A loss must be a `keras.losses.Loss`, the name of a Keras loss or "
            f"a function `fn(y_true, y_pred)`. Got: {identifier!r}."
        )
    return LossFunctionWrapper(function)
