"""Losses given as objects, names or functions, as `compile(loss=...)` takes."""

import keras

from keras_custom.core.keras_internals import LossFunctionWrapper


def as_loss(identifier, default: keras.losses.Loss) -> keras.losses.Loss:
    """A `keras.losses.Loss` from a `Loss`, a loss name or a loss function.

    What a paradigm's constructor does with a loss argument, so that its user
    may pass anything `compile(loss=...)` takes (and a config dict, as
    `get_config` writes it), while the model always holds a `Loss` object
    (which follows the Keras replica convention under `tf.distribute`).

    Args:
        identifier: A `keras.losses.Loss`, the name of a Keras loss, a
            function `fn(y_true, y_pred)`, a serialized loss, or `None`.
        default: The loss returned when `identifier` is `None`.

    Returns:
        A `keras.losses.Loss`.

    Example:

    ```python
    import keras
    from keras_custom.core import as_loss

    default = keras.losses.BinaryCrossentropy(from_logits=True)
    assert as_loss(None, default) is default
    least_squares = as_loss("mse", default)  # a Loss wrapping the function
    hinge = as_loss(lambda y_true, y_pred: keras.ops.relu(1.0 - y_true * y_pred),
                    default)
    value = hinge(keras.ops.ones((4, 1)), keras.ops.zeros((4, 1)))  # 1.0
    same = as_loss(keras.saving.serialize_keras_object(default), default)
    ```
    """
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


def loss_of(output):
    """The loss in what a loss function returned.

    The value itself, the entry `"loss"` of a dict of named terms, or the
    loss in the first element of a tuple `(loss, aux...)`.
    """
    if isinstance(output, tuple):
        return loss_of(output[0])
    if isinstance(output, dict):
        if "loss" not in output:
            raise ValueError(
                "A loss function returned a dict without the key 'loss' "
                f"(keys: {sorted(output)}). Put the total loss to minimize "
                "under 'loss'; the other entries are logged as they are."
            )
        return output["loss"]
    return output
