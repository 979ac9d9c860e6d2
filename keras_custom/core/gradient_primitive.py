"""The one gradient primitive: `minimize`, and `gradients` without the update.

The forward pass runs under a tape with every loss a mean over this
replica's batch (Keras `Loss` objects and raw `ops.mean` alike); the total
is divided by the replica count once, scaled for mixed precision, and
differentiated with respect to exactly the variables of the optimizer,
which applies the gradients (its `clipnorm`, `global_clipnorm` and
`gradient_accumulation_steps` included). What the loss function returned
comes back as it is, the values to log.
"""

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_custom.core import backend, optimizer_registry


def _optimizer_and_variables(model, optimizer, variables, caller: str):
    if isinstance(optimizer, str):
        if variables is None:
            variables = functools.partial(
                optimizer_registry.variables_of, model, optimizer
            )
        return optimizer_registry.get(model, optimizer), variables
    if variables is None:
        raise ValueError(
            f"`{caller}()` needs `variables` when `optimizer` is an instance "
            "rather than the name of one of the model's optimizers."
        )
    return optimizer, variables


def minimize(
    model,
    loss_fn: Callable[[], Any],
    variables: Sequence | None,
    optimizer,
    before_apply: Callable[[], None] | None,
):
    """`CustomModel.minimize`: one gradient step; returns what `loss_fn` did."""
    optimizer, variables = _optimizer_and_variables(
        model, optimizer, variables, "minimize"
    )
    output, variables, gradients = backend.value_and_gradients(
        loss_fn, variables, optimizer.scale_loss
    )
    if before_apply is not None:
        before_apply()
    if variables:
        backend.apply_gradients(optimizer, gradients, variables)
    else:
        warnings.warn(
            f"`minimize()` on model '{model.name}' got no trainable variables "
            "to update.",
            stacklevel=3,
        )
    return output


def gradients(model, loss_fn: Callable[[], Any], variables, optimizer):
    """`CustomModel.gradients`: `(output, gradients)` of the global batch."""
    optimizer, variables = _optimizer_and_variables(
        model, optimizer, variables, "gradients"
    )
    output, _, grads = backend.value_and_gradients(
        loss_fn, variables, optimizer.scale_loss
    )
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        scale = optimizer.dynamic_scale
        grads = [
            None if g is None else g / keras.ops.cast(scale, g.dtype) for g in grads
        ]
    return output, backend.all_reduce_sum(grads)
