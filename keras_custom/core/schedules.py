"""Scalars that change during training: a float or a Keras schedule."""

import keras
from keras import ops

Scalar = float | keras.optimizers.schedules.LearningRateSchedule

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def validate_scalar(value, name: str) -> Scalar:
    """Checks that `value` is a number or a `LearningRateSchedule`.

    A schedule given as a config dict (as `get_config` writes it) is
    deserialized.
    """
    if isinstance(value, dict):
        value = keras.optimizers.schedules.deserialize(value)
    if isinstance(value, _Schedule):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a float or a "
            "`keras.optimizers.schedules.LearningRateSchedule`. "
            f"Got: {value!r} of type {type(value).__name__}."
        )
    return float(value)


def scalar_value(value: Scalar, step):
    """The value of a float or schedule at `step` (an optimizer's iterations)."""
    if isinstance(value, _Schedule):
        return ops.cast(value(step), "float32")
    return ops.convert_to_tensor(value, "float32")


def serialize_scalar(value: Scalar):
    """A float as is; a schedule as its Keras config dict."""
    if isinstance(value, _Schedule):
        return keras.optimizers.schedules.serialize(value)
    return value
