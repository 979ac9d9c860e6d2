"""Scalars that change during training: a float or a Keras schedule."""

import keras
from keras import ops

Scalar = float | keras.optimizers.schedules.LearningRateSchedule

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def validate_scalar(value, name: str) -> Scalar:
    """Checks that `value` is a number or a `LearningRateSchedule`.

    A schedule given as a config dict (as `get_config` writes it) is
    deserialized.

    Args:
        value: A number, a `LearningRateSchedule` or its config dict.
        name: The argument's name, for the error message.

    Returns:
        A float or a `LearningRateSchedule`.

    Example:

    ```python
    import keras
    from keras_custom.core import serialize_scalar, validate_scalar

    # In a constructor: `self.kl_weight = validate_scalar(kl_weight, "kl_weight")`.
    assert validate_scalar(1, "kl_weight") == 1.0
    warm_up = keras.optimizers.schedules.PolynomialDecay(
        0.0, decay_steps=100, end_learning_rate=1.0)
    config = serialize_scalar(warm_up)  # a dict, as `get_config` writes it
    schedule = validate_scalar(config, "kl_weight")  # a PolynomialDecay again
    try:
        validate_scalar("high", "kl_weight")
    except ValueError as error:
        print(error)  # `kl_weight` must be a float or a ...
    ```
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
    """The value of a float or schedule at `step` (an optimizer's iterations).

    Returns a `float32` scalar tensor, so it can be used inside a traced
    step. `CustomModel.scalar(value, optimizer)` calls it at the iterations
    of one of the model's optimizers.

    Example:

    ```python
    import keras
    from keras_custom.core import scalar_value

    warm_up = keras.optimizers.schedules.PolynomialDecay(
        0.0, decay_steps=100, end_learning_rate=1.0)
    weight = scalar_value(warm_up, step=50)  # 0.5, halfway through
    assert abs(float(weight) - 0.5) < 1e-6
    assert float(scalar_value(0.25, step=50)) == 0.25  # a float is constant
    ```
    """
    if isinstance(value, _Schedule):
        return ops.cast(value(step), "float32")
    return ops.convert_to_tensor(value, "float32")


def serialize_scalar(value: Scalar):
    """A float as is; a schedule as its Keras config dict.

    The inverse of `validate_scalar`, for `get_config`.

    Example:

    ```python
    import keras
    from keras_custom.core import serialize_scalar, validate_scalar

    assert serialize_scalar(0.996) == 0.996
    decay = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=10)
    config = serialize_scalar(decay)  # {"class_name": "CosineDecay", ...}
    restored = validate_scalar(config, "decay")
    assert restored.get_config() == decay.get_config()
    ```
    """
    if isinstance(value, _Schedule):
        return keras.optimizers.schedules.serialize(value)
    return value
