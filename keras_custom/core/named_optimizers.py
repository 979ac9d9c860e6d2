"""Optimizers that a model owns by name, each tied to the variables it updates."""

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras

OptimizerLike = keras.optimizers.Optimizer | str | dict | None


@dataclasses.dataclass
class OptimizerSlot:
    """Where a named optimizer of a model applies.

    The optimizer itself is the model attribute of the same name (so Keras
    saves it under that name); the slot only remembers what it updates.

    Args:
        name: Attribute name of the optimizer, e.g. `"d_optimizer"`.
        owner: What the optimizer updates: a layer or model (its trainable
            variables, resolved when needed, so it may be unbuilt when the
            slot is made), a variable, or a list of these. `None` means every
            trainable variable of the model that no other optimizer owns.
        default: Identifier used when neither the constructor nor
            `compile()` gives an optimizer.
        implicit: True for the main `optimizer` that every model declares;
            it gets its default only when no other optimizer is declared
            (a GAN's `d_optimizer` and `g_optimizer` leave it unset), or when
            a subclass declares it again with `add_optimizer`.
    """

    name: str
    owner: Any
    default: OptimizerLike
    implicit: bool = False


def _as_list(owner) -> list:
    if isinstance(owner, (list, tuple)):
        return list(owner)
    return [owner]


def trainable_variables_of(owner) -> list:
    """The trainable variables of a layer, a variable, or a list of them."""
    variables, seen = [], set()
    for item in _as_list(owner):
        if isinstance(item, keras.layers.Layer):
            found = item.trainable_variables
        elif isinstance(item, keras.Variable):
            found = [item] if item.trainable else []
        else:
            raise ValueError(
                "An optimizer must be tied to layers, models or variables. "
                f"Got: {item!r} of type {type(item).__name__}."
            )
        for variable in found:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def owner_is_built(owner) -> bool:
    """Whether every layer in `owner` has created its variables."""
    return all(
        item.built for item in _as_list(owner) if isinstance(item, keras.layers.Layer)
    )


def resolve_optimizer(identifier: OptimizerLike, slot_name: str):
    """Turns a string, config dict or instance into an optimizer instance."""
    if identifier is None:
        return None
    try:
        optimizer = keras.optimizers.get(identifier)
    except ValueError as error:
        raise ValueError(
            f"Could not interpret `{slot_name}`: {identifier!r}. Pass a "
            "`keras.optimizers.Optimizer`, its name (e.g. 'adam') or its "
            "config dict."
        ) from error
    return optimizer


def loss_scaled(optimizer, slot_name: str):
    """Wraps `optimizer` in a `LossScaleOptimizer` unless it already is one."""
    if optimizer is None or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(
        optimizer, name=f"{slot_name}_loss_scale"
    )


def unclaimed_variables(all_variables: Sequence, claimed: Sequence) -> list:
    """The variables of `all_variables` that are not in `claimed`."""
    claimed_ids = {id(v) for v in claimed}
    return [v for v in all_variables if id(v) not in claimed_ids]
