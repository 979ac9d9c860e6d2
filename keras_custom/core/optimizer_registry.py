"""The optimizers of a `CustomModel`: declared by name, or held as attributes.

A model owns named optimizers (`add_optimizer`), each tied to the
variables it updates, and may hold others as plain attributes as the Keras
guide's GAN does. This module resolves them at `compile()`, finds which
variables each one updates, and builds every one of them before the first
step (Keras builds only `self.optimizer`).
"""

import keras

from keras_custom.core import backend, named_optimizers
from keras_custom.core.named_optimizers import OptimizerLike, OptimizerSlot

_MIXED_POLICIES = ("mixed_float16",)


def declare(
    model, name: str, optimizer: OptimizerLike, variables, default: OptimizerLike
) -> None:
    """`CustomModel.add_optimizer`: a slot, and the optimizer as attribute."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"An optimizer name must be a Python identifier. Got: {name!r}"
        )
    if variables is not None:
        named_optimizers.trainable_variables_of(variables)  # validates
    model._optimizer_slots[name] = OptimizerSlot(name, variables, default)
    instance = named_optimizers.resolve_optimizer(optimizer, name)
    if instance is not None or not hasattr(model, name):
        model._set_untracked(name, instance)


def by_name(model) -> dict:
    """The model's declared optimizers that are set, by name."""
    return {
        name: getattr(model, name)
        for name in model._optimizer_slots
        if getattr(model, name, None) is not None
    }


def slot(model, name: str) -> OptimizerSlot:
    """The slot of optimizer `name`; a `ValueError` naming the others."""
    if name not in model._optimizer_slots:
        raise ValueError(
            f"Model '{model.name}' has no optimizer named '{name}'. Its "
            f"optimizers are: {model.optimizer_names}."
        )
    return model._optimizer_slots[name]


def get(model, name: str):
    """Optimizer `name`; a `ValueError` if it is not declared or not set."""
    slot(model, name)
    optimizer = getattr(model, name, None)
    if optimizer is None:
        raise ValueError(
            f"Optimizer '{name}' of model '{model.name}' is not set. Give it "
            f"to the constructor or to `compile({name}=...)`."
        )
    return optimizer


def variables_of(model, name: str) -> list:
    """`CustomModel.optimizer_variables`: what optimizer `name` updates."""
    owner = slot(model, name).owner
    if owner is not None:
        return named_optimizers.trainable_variables_of(owner)
    claimed = [
        variable
        for other in model._optimizer_slots.values()
        if other.owner is not None and getattr(model, other.name, None) is not None
        for variable in named_optimizers.trainable_variables_of(other.owner)
    ]
    # So are those of optimizers held as attributes (the guide's GAN leaves
    # `self.optimizer` unused: it is built on nothing).
    attributes = attribute_optimizers(model)
    claimed += [
        variable
        for attribute, variables in model._attribute_optimizer_variables.items()
        if attribute in attributes
        for variable in variables
    ]
    return named_optimizers.unclaimed_variables(model.trainable_variables, claimed)


def set_compiled(model, optimizers: dict, auto_scale_loss: bool) -> None:
    """Sets each declared optimizer as `compile(**optimizers)` chose it.

    An optimizer given replaces the one from `__init__`, one left out keeps
    it; `self.optimizer` alone defaults to `"rmsprop"` (as in Keras) when
    the model has other optimizers. Under `mixed_float16` each is wrapped
    in a `LossScaleOptimizer` (Keras wraps only `self.optimizer`).
    """
    unknown = sorted(set(optimizers) - set(model._optimizer_slots))
    if unknown:
        raise ValueError(
            f"`compile()` got unknown arguments {unknown}. Model "
            f"'{model.name}' has the optimizers {model.optimizer_names}."
        )
    others_declared = len(model._optimizer_slots) > 1
    mixed = model.dtype_policy.name in _MIXED_POLICIES
    with backend.strategy_scope(model):
        for name, declared in model._optimizer_slots.items():
            chosen = optimizers.get(name)
            if chosen is None:
                chosen = getattr(model, name, None)
            if chosen is None and not (declared.implicit and others_declared):
                chosen = declared.default
            chosen = named_optimizers.resolve_optimizer(chosen, name)
            if mixed and auto_scale_loss:
                chosen = named_optimizers.loss_scaled(chosen, name)
            model._set_untracked(name, chosen)


def build_all(model, strict: bool = False) -> None:
    """Builds every optimizer on its variables, before the first step.

    Keras builds only `self.optimizer`, and on all trainable variables; the
    others would be built inside the first traced step, which fails under
    `MirroredStrategy` and leaves their saved state unloaded.
    """
    for name, declared in model._optimizer_slots.items():
        optimizer = getattr(model, name, None)
        if optimizer is None or optimizer.built:
            continue
        owner = model if declared.owner is None else declared.owner
        if not named_optimizers.owner_is_built(owner):
            if strict:
                raise ValueError(
                    f"Optimizer '{name}' of model '{model.name}' cannot be "
                    "built because the layers it updates are not built. Build "
                    "them (call them on a batch, or construct them from "
                    "`keras.Input`) before training under a distribution "
                    "strategy."
                )
            continue
        variables = variables_of(model, name)
        if variables:
            with backend.strategy_scope(model):
                optimizer.build(variables)
    build_attribute_optimizers(model)


# ----------------------------------------------------------------------
# Optimizers held as plain attributes, and models without `call`: the Keras
# guide's GAN sets `self.d_optimizer` and `self.g_optimizer` in a `compile`
# of its own and has all its logic in `train_step`.
# ----------------------------------------------------------------------


def attribute_optimizers(model) -> dict:
    """Optimizers set as attributes, not declared with `add_optimizer`."""
    return named_optimizers.attribute_optimizers(model, by_name(model).values())


def find_attribute_optimizer_variables(
    model, data, in_replica_context: bool = False
) -> None:
    """Ties each unbuilt attribute optimizer to the variables it updates.

    Keras builds such an optimizer in its first `apply`, inside the first
    traced step. Under `MirroredStrategy` that step runs in a replica
    context, where the optimizer's variables cannot be created (a
    placeholder error); and a loaded model could not load the optimizer's
    state, having no variables to load it into. Which variables a step
    gives which optimizer is known only to the step (the guide applies
    `d_optimizer` to `discriminator.trainable_weights`), so the step is run
    once on symbolic data shaped like `data`, recording what each `apply`
    gets (`named_optimizers.applied_variables`); nothing is executed. Each
    optimizer is then built on its variables, under the model's strategy,
    and they are remembered for `.keras` files.

    Args:
        model: The model.
        data: A batch (one replica's part under a strategy), as
            `train_step` receives it.
        in_replica_context: Called from a step running under a strategy,
            where nothing can be built: an optimizer that should have been
            built before the first step raises.
    """
    known = model._attribute_optimizer_variables
    unbuilt = {
        name: optimizer
        for name, optimizer in attribute_optimizers(model).items()
        if not optimizer.built and name not in known
    }
    if not unbuilt:
        return
    applied, error = named_optimizers.applied_variables(model.train_step, data, unbuilt)
    if error is not None:
        # Once more, with the layers the failed run may have built.
        applied, error = named_optimizers.applied_variables(
            model.train_step, data, unbuilt
        )
    if error is None:
        # The unapplied ones are known to update nothing.
        known.update({name: applied.get(name, []) for name in unbuilt})
    if not in_replica_context:
        # If the symbolic run failed, Keras's lazy build remains (it works
        # on one device).
        build_attribute_optimizers(model)
        return
    if error is not None or applied:
        raise ValueError(
            f"Model '{model.name}' ({type(model).__name__}) holds the "
            f"optimizers {sorted(unbuilt)} as attributes. Under a "
            "distribution strategy they must be built before the first step, "
            "on the variables each one updates, and these were not found "
            "before it (by running `train_step` on symbolic data). Build them "
            "(`optimizer.build(variables)`) before `fit()`, or declare them "
            "with `self.add_optimizer(name, optimizer, variables)`."
        ) from error


def build_attribute_optimizers(model) -> None:
    """Builds the attribute optimizers whose variables are known."""
    attributes = attribute_optimizers(model)
    for name, variables in model._attribute_optimizer_variables.items():
        optimizer = attributes.get(name)
        if optimizer is None or optimizer.built or not variables:
            continue
        # Lifted out of a traced step (the first one, on one device).
        with (
            backend.strategy_scope(model),
            backend.outside_step(),
        ):
            optimizer.build(variables)


def train_step_building_optimizers(model):
    """`model.train_step`, with the attribute optimizers built first.

    Runs when the train function is traced. On one device the optimizers
    are built here, before the step's first `apply`; under a strategy that
    was done before the first step (`CustomModel._build_before_training`).
    """

    def train_step(data):
        replica_context = backend.has_distribution_strategy()
        find_attribute_optimizer_variables(
            model, data, in_replica_context=replica_context
        )
        if not replica_context:
            build_without_call(model)
        return model.train_step(data)

    return train_step


def build_without_call(model) -> None:
    """Marks a model without `call()` built when its layers are built.

    Before a distributed first step, Keras builds an unbuilt model by
    running `call` on symbolic inputs ("Unable to automatically build the
    model"); a model whose logic is all in `train_step` has no `call`. Its
    variables are those of its layers, so it is built when they are, as
    Keras marks a layer without `build()` built when it is made.
    """
    if (
        not model.built
        and type(model).call is keras.Model.call
        and all(layer.built for layer in model.layers)
    ):
        model.built = True
