"""The data contract of the reinforcement-learning models: dicts of tensors."""

from collections.abc import Mapping

import keras
from keras import ops

#: Keys whose values have the observation's shape; every other key of a
#: transition holds one number per transition.
OBSERVATION_KEYS = ("observation", "next_observation")


def transition_batch(x, y, keys: tuple[str, ...], model_name: str) -> dict:
    """Returns the batch's transition dict, checked to hold every key of `keys`.

    A reinforcement-learning batch is a dict of tensors with one row per
    transition (`{"observation": ..., "action": ..., ...}`), given to `fit`
    as `x` alone, with no `y`.
    """
    if not isinstance(x, Mapping) or y is not None:
        raise ValueError(
            f"Model '{model_name}' trains on batches of transitions: a dict "
            f"with the keys {list(keys)}, given as `x` alone (no `y`). Got "
            f"{type(x).__name__} inputs" + (" and labels." if y is not None else ".")
        )
    missing = [key for key in keys if key not in x]
    if missing:
        raise ValueError(
            f"Model '{model_name}' needs the transition keys {missing}; the "
            f"batch has {sorted(x)}. A batch holds {list(keys)}."
        )
    for key in keys:
        if key not in OBSERVATION_KEYS:
            _check_column(key, x[key], model_name)
    return {key: x[key] for key in keys}


def _check_column(key: str, values, model_name: str) -> None:
    """Raises a `ValueError` unless `values` hold one number per transition,
    `(batch,)` or `(batch, 1)`, and actions are integer ids."""
    shape = tuple(values.shape)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[-1] not in (1, None)):
        raise ValueError(
            f"Model '{model_name}' takes one '{key}' per transition, of shape "
            f"(batch,) or (batch, 1). Got '{key}' of shape {shape}."
        )
    dtype = keras.backend.standardize_dtype(values.dtype)
    if key == "action" and "int" not in dtype:
        raise ValueError(
            f"Model '{model_name}' takes discrete actions: 'action' must hold "
            f"integer action ids. Got 'action' of dtype {dtype}."
        )


def column(values, dtype: str = "float32"):
    """`values` as a `(batch, 1)` column, the shape Keras losses reduce right."""
    values = ops.cast(values, dtype)
    return ops.reshape(values, (-1, 1))


def observations_of(inputs):
    """The observations of a transition dict, or `inputs` themselves."""
    if isinstance(inputs, Mapping):
        if "observation" not in inputs:
            raise ValueError(
                "A dict given to a reinforcement-learning model must hold "
                f"'observation'. Got the keys {sorted(inputs)}."
            )
        return inputs["observation"]
    return inputs
