"""Checks of the batch a step receives, with errors that name the problem.

A step calls these on the tensors of its batch while it is traced, so they
see static shapes and dtypes: wrong data fails at the first step with a
`ValueError` naming what was expected and what was received, not with an
error from an operation deep inside the graph.
"""

from collections.abc import Mapping

import keras
from keras import ops


def describe(model) -> str:
    """`"GAN 'gan'"`: the model's class and name, for messages."""
    return f"{type(model).__name__} '{model.name}'"


def require_labels(y, model, need: str = "its loss needs targets `y`") -> None:
    """Raises a `ValueError` when the batch has no labels `y`.

    Args:
        y: The labels of the batch, `None` when `fit(x)` got none.
        model: The model whose step needs them (named in the message).
        need: What needs the labels, e.g. `"its student loss needs targets
            `y`"`.
    """
    if y is None:
        raise ValueError(
            f"{describe(model)} was given no labels: {need}. Pass `fit(x, y)`, "
            "or a dataset of `(x, y)` tuples."
        )


def class_ids(y, model, what: str = "labels"):
    """`y` as int32 class ids of shape `(batch,)`, after checking them.

    Class ids are integers of shape `(batch,)` or `(batch, 1)`; one-hot
    rows and float values (which a cast would truncate) are refused.

    Args:
        y: The labels of the batch.
        model: The model that takes them (named in the message).
        what: What the labels are for, e.g. `"labels of the online probe"`.
    """
    shape = tuple(y.shape)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[-1] not in (1, None)):
        raise ValueError(
            f"{describe(model)} takes integer class ids of shape (batch,) or "
            f"(batch, 1) as {what}. Got {what} of shape {shape}."
        )
    dtype = keras.backend.standardize_dtype(y.dtype)
    if "int" not in dtype:
        raise ValueError(
            f"{describe(model)} takes integer class ids as {what}. Got {what} "
            f"of dtype {dtype}; convert them with `y.astype('int32')` if they "
            "are whole numbers."
        )
    return ops.reshape(ops.cast(y, "int32"), (-1,))


def network_input(network, index: int | None = None):
    """The `keras.Input` of `network` that a batch's `x` feeds, if known.

    Args:
        network: A Keras model or layer.
        index: Which input of a network with several; `None` accepts a
            network with exactly one input.

    Returns:
        The symbolic input, or `None` for a network that was not built
        from `keras.Input` (a subclassed model) or has other inputs.
    """
    try:
        inputs = getattr(network, "inputs", None)
    except (AttributeError, ValueError):  # a layer that was never called
        return None
    if not inputs:
        return None
    if index is None:
        return inputs[0] if len(inputs) == 1 else None
    return inputs[index] if index < len(inputs) else None


def _shape_fits(expected: tuple, received: tuple) -> bool:
    return len(expected) == len(received) and all(
        e is None or r is None or e == r
        for e, r in zip(expected, received, strict=True)
    )


def check_single_input(x, model, expected=None, what: str = "inputs") -> None:
    """Raises a `ValueError` unless `x` is one tensor of the expected shape.

    Args:
        x: The inputs of the batch.
        model: The model whose step takes them (named in the message).
        expected: The `keras.Input` they feed (see `network_input`), whose
            shape but the batch axis `x` must have; `None` checks only
            that `x` is one tensor.
        what: What `x` is, e.g. `"samples"`.
    """
    shape = "" if expected is None else f" of shape {_batch_shape(expected.shape)}"
    if isinstance(x, (Mapping, list, tuple)):
        kind = "dict" if isinstance(x, Mapping) else type(x).__name__
        raise ValueError(
            f"{describe(model)} takes its {what} as one tensor{shape}. Got a "
            f"{kind} of {len(x)} parts."
        )
    if expected is None:
        return
    if not _shape_fits(tuple(expected.shape[1:]), tuple(x.shape[1:])):
        raise ValueError(
            f"{describe(model)} expects {what}{shape}. Got {what} of shape "
            f"{tuple(x.shape)}."
        )


def _batch_shape(shape) -> str:
    return str(("batch", *tuple(shape)[1:])).replace("'batch'", "batch")
