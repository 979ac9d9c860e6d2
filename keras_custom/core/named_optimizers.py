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
    """Turns a string, config dict or instance into an optimizer instance.

    A dict that is not a config (no `"class_name"`) maps layer groups to
    optimizers: it becomes a `keras_custom.optimizers.MultiOptimizer`.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict) and "class_name" not in identifier:
        # Imported here: the optimizers package is built on the core.
        from keras_custom.optimizers import MultiOptimizer

        return MultiOptimizer(identifier)
    try:
        optimizer = keras.optimizers.get(identifier)
    except ValueError as error:
        raise ValueError(
            f"Could not interpret `{slot_name}`: {identifier!r}. Pass a "
            "`keras.optimizers.Optimizer`, its name (e.g. 'adam'), its "
            "config dict, or a dict of layer groups to optimizers."
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


# ----------------------------------------------------------------------
# Optimizers held as plain attributes (the Keras guide's pattern)
# ----------------------------------------------------------------------


def attribute_optimizers(model, declared: Sequence) -> dict:
    """The optimizers `model` holds as plain attributes, by attribute name.

    The Keras guide's GAN sets `self.d_optimizer` and `self.g_optimizer` in
    its own `compile()`, without declaring them (`add_optimizer`). An
    optimizer object held under two names is listed once, under the first.

    Args:
        model: The model.
        declared: Optimizers declared otherwise (the named ones); left out.
    """
    seen = {id(optimizer) for optimizer in declared}
    found = {}
    for name, value in vars(model).items():
        if isinstance(value, keras.optimizers.Optimizer) and id(value) not in seen:
            seen.add(id(value))
            found[name] = value
    return found


class _SymbolicStep(keras.Operation):
    """Runs a step on symbolic inputs: traced, never executed.

    `keras.Operation.compute_output_spec` runs `call` in a scratch graph
    under Keras's stateless scope, the way Keras itself builds a model
    before a distributed first step: variable assignments (optimizers,
    metrics, seed generators, moving statistics) are recorded, not made, so
    the model's state is left as it was.
    """

    def __init__(self, step):
        super().__init__(name="symbolic_step")
        self.step = step

    def call(self, data):
        return self.step(data)


def _symbolic(value):
    """A `keras.KerasTensor` like `value` (a tensor or array); else `value`."""
    if value is None or not hasattr(value, "shape") or not hasattr(value, "dtype"):
        return value
    return keras.KerasTensor(
        tuple(value.shape), keras.backend.standardize_dtype(value.dtype)
    )


def applied_variables(step, data, optimizers: dict):
    """The variables `step(data)` applies each optimizer of `optimizers` to.

    `step` runs once on symbolic tensors shaped like `data`, with each
    optimizer's `apply` (which `apply_gradients` calls) replaced by a
    recorder of the variables it is given, so nothing is updated or built.
    As Keras's lazy build does, an optimizer is tied to the variables of its
    first `apply`.

    A layer the step calls unbuilt is built by the run, but its variables
    are made only when the run ends (Keras defers them in its stateless
    scope): a step taking gradients of them fails in that run, and succeeds
    in the next.

    Args:
        step: A `train_step`.
        data: A batch as `step` receives it (tensors, arrays, or symbolic).
        optimizers: Unbuilt optimizers by name.

    Returns:
        `(variables, error)`: the variables each applied optimizer was given,
        by name, and the exception the symbolic run raised, or `None`.
    """
    applied = {}

    def recorder(name):
        def apply(grads, trainable_variables=None):
            del grads
            if trainable_variables is not None:
                applied.setdefault(name, list(trainable_variables))

        return apply

    # An `apply` set on the instance itself (not the class's) is put back.
    own_apply = {name: vars(opt).get("apply") for name, opt in optimizers.items()}
    for name, optimizer in optimizers.items():
        optimizer.apply = recorder(name)
    error = None
    try:
        symbolic_data = keras.tree.map_structure(_symbolic, data)
        _SymbolicStep(step).compute_output_spec(symbolic_data)
    except Exception as exception:  # reported by the caller where it matters
        error = exception
    finally:
        for name, optimizer in optimizers.items():
            del optimizer.apply
            if own_apply[name] is not None:
                optimizer.apply = own_apply[name]
    return applied, error


def variable_indices(all_variables: Sequence, variables: Sequence) -> list | None:
    """The positions of `variables` in `all_variables`, or `None` if one is not.

    Positions in a model's `trainable_variables` identify its variables in
    a loaded copy of it (its layers are made in the same order); their
    paths may not (a loaded `Sequential` builds its layers outside its own
    name scope, so `discriminator/conv2d/kernel` becomes `conv2d/kernel`).
    """
    positions = {id(variable): index for index, variable in enumerate(all_variables)}
    indices = [positions.get(id(variable)) for variable in variables]
    return None if None in indices else indices


def variables_at(all_variables: Sequence, indices: Sequence[int]) -> list | None:
    """The variables of `all_variables` at `indices`, or `None` if out of range."""
    if not all(0 <= index < len(all_variables) for index in indices):
        return None
    return [all_variables[index] for index in indices]
