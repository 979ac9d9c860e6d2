"""Gradients of a stateful-looking step on JAX, and the replica helpers there.

The JAX counterpart of `tensorflow_backend`. A step written as on
TensorFlow reads and assigns Keras variables; on JAX it runs inside a
`StateScope` (a `keras.StatelessScope` fed with the trainer's state, see
`jax_functions`), so reads give the traced values and assignments are
recorded, not applied. `value_and_gradients` differentiates a pure
function of the trainable values with `jax.value_and_grad`, its forward
pass in a nested scope that falls back to the step's scope for every
variable it does not map (keras-team/keras#18881), and hands what the
forward pass assigned (batch-norm statistics, seed states, trackers) back
to the step's scope.

With `keras.distribution.DataParallel` the step is one program over the
global batch, which XLA partitions across devices: a mean is the mean of
the global batch and gradients need no all-reduce, so the replica helpers
are the identity (one "replica").
"""

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import keras

from keras_custom.core import keras_internals
from keras_custom.core.loss_objects import loss_of


class StateScope(keras.StatelessScope):
    """A `keras.StatelessScope` that falls back to its parent and records updates.

    Keras's scope gives an unmapped variable its stored value, even inside
    another scope that maps it; this one asks `parent` (the enclosing
    `StateScope`) first. It also keeps the variables assigned inside it,
    so that their values can be handed on.

    Args:
        state_mapping: `(variable, value)` pairs, as `keras.StatelessScope`.
        parent: The enclosing `StateScope`, or `None`.
    """

    def __init__(self, state_mapping=None, parent: "StateScope | None" = None):
        # Variables a step creates (a tracker, a lazily built optimizer)
        # are initialized by `jax_functions`, outside any trace.
        super().__init__(
            state_mapping=state_mapping, collect_losses=True, initialize_variables=False
        )
        self.parent = parent
        self.updated: dict[int, keras.Variable] = {}

    def add_update(self, update) -> None:
        variable, _ = update
        self.updated[id(variable)] = variable
        super().add_update(update)

    def get_current_value(self, variable):
        value = super().get_current_value(variable)
        if value is None and self.parent is not None:
            return self.parent.get_current_value(variable)
        return value

    def updated_values(self, excluding: Sequence = ()) -> list[tuple]:
        """`(variable, new value)` of each variable assigned in the scope."""
        excluded = {id(variable) for variable in excluding}
        return [
            (variable, keras.StatelessScope.get_current_value(self, variable))
            for key, variable in self.updated.items()
            if key not in excluded
        ]


_active_scopes: list[StateScope] = []


@contextlib.contextmanager
def state_scope(state_mapping=None):
    """Enters a `StateScope` nested in the active one; yields it."""
    scope = StateScope(
        state_mapping, parent=_active_scopes[-1] if _active_scopes else None
    )
    _active_scopes.append(scope)
    try:
        with scope:
            yield scope
    finally:
        _active_scopes.pop()


def _hand_on(updates: Sequence[tuple]) -> None:
    """Assigns values computed in a nested scope where the caller runs.

    In the step's scope the assignment is recorded there; outside any
    scope (a step called eagerly) it is applied.
    """
    for variable, value in updates:
        variable.assign(value)


def num_replicas_in_sync() -> int:
    """One: a step under `DataParallel` is one program over the global batch."""
    return 1


def replica_index():
    """Zero: there is one replica (see `num_replicas_in_sync`)."""
    return 0


def has_distribution_strategy() -> bool:
    """False: nothing is built per replica on JAX."""
    return False


@contextlib.contextmanager
def op_determinism():
    """A context in which the same run gives the same numbers.

    JAX's CPU and GPU computations are deterministic for the same program
    and inputs, so there is nothing to switch on.

    Example:

    ```python
    import keras
    from keras_custom.core import op_determinism

    with op_determinism():  # the same run gives the same numbers
        keras.utils.set_random_seed(0)
        first = keras.random.normal((3,))
    ```
    """
    yield


def strategy_scope(model):
    """A no-op: on JAX variables take their layout from the distribution."""
    del model
    return contextlib.nullcontext()


def outside_step():
    """A no-op: variables a traced step creates are initialized after it."""
    return contextlib.nullcontext()


def replica_share(loss):
    """The loss itself: it is already the mean over the global batch."""
    return loss


def first_replica_part(batch, strategy):
    """The batch itself: on JAX a batch is one (possibly sharded) array.

    Example:

    ```python
    import numpy as np
    from keras_custom.core import first_replica_part

    assert first_replica_part({"x": np.ones(2)}, None)["x"].shape == (2,)
    ```
    """
    del strategy
    return batch


def all_gather(value):
    """`value`: on JAX a step already sees the global batch.

    Example:

    ```python
    import numpy as np
    from keras_custom.core import all_gather

    # The projections of the global batch, for a loss that compares every
    # pair of examples (SimCLR, Barlow Twins).
    projections = np.ones((4, 8), "float32")
    assert all_gather(projections).shape == (4, 8)
    ```
    """
    return value


def all_reduce_sum(values: Sequence) -> list:
    """`values`: the gradients of the global batch need no reduction."""
    return list(values)


def local_rows(gathered, local_size):
    """`gathered`: the global batch is the local one."""
    del local_size
    return gathered


def assign_moving_average(targets: Sequence, sources: Sequence, decay_fn) -> None:
    """`target = decay * target + (1 - decay) * source` for each pair.

    Example:

    ```python
    import keras
    from keras_custom.core import assign_moving_average

    target, source = keras.Variable([0.0]), keras.Variable([1.0])
    assign_moving_average([target], [source], lambda: 0.9)
    assert abs(float(target[0]) - 0.1) < 1e-6
    ```
    """
    decay = decay_fn()
    for target, source in zip(targets, sources, strict=True):
        weight = keras.ops.cast(decay, target.dtype)
        target.assign(weight * target + (1.0 - weight) * source)


def _pure(fn: Callable, variables: Sequence):
    """`fn` as a pure function of the values of `variables`.

    It returns `(fn's result, assignments)`; the assignments, made in a
    nested `StateScope`, are to be handed on (`_hand_on`) by the caller.
    """

    def pure(values, *args):
        with state_scope(list(zip(variables, values, strict=True))) as scope:
            with keras_internals.replica_mean_losses():
                result = fn(*args)
        return result, scope.updated_values(excluding=variables)

    return pure


def value_and_gradients(
    loss_fn: Callable[[], Any],
    variables: Sequence | Callable[[], Sequence],
    scale_loss: Callable | None = None,
):
    """`loss_fn()`'s output and the gradients of its loss, by `jax.value_and_grad`.

    The same contract as `tensorflow_backend.value_and_gradients`.

    Args:
        loss_fn: Callable without arguments returning a scalar loss, a
            tuple `(loss, aux...)` or a dict of named terms with the total
            under `"loss"`.
        variables: Variables to differentiate with respect to, or a callable
            returning them (on JAX they exist before the step is traced).
        scale_loss: Optional callable applied to the loss before the
            gradients are taken (an optimizer's `scale_loss`).

    Returns:
        `(output, variables, gradients)`.
    """
    variables = list(variables() if callable(variables) else variables)

    def loss_and_output():
        output = loss_fn()
        loss = loss_of(output)
        if scale_loss is not None:
            loss = scale_loss(loss)
        return loss, output

    pure = _pure(loss_and_output, variables)

    def differentiated(values):
        (loss, output), updates = pure(values)
        return loss, (output, updates)

    values = [variable.value for variable in variables]
    (_, (output, updates)), grads = jax.value_and_grad(differentiated, has_aux=True)(
        values
    )
    _hand_on(updates)
    return output, variables, grads


def apply_gradients(optimizer, gradients: Sequence, variables: Sequence) -> None:
    """`optimizer.apply(gradients, variables)`, as Keras's JAX trainer applies it.

    Through `optimizer.stateless_apply` on every variable the optimizer was
    built on (a gradient of `None` for those not given): a
    `LossScaleOptimizer`'s stateful `apply` assigns inside `ops.cond`
    branches, which JAX cannot trace; its stateless form returns the values.
    """
    built_on = keras_internals.optimizer_built_on(optimizer)
    given = {
        id(variable): gradient
        for variable, gradient in zip(variables, gradients, strict=True)
    }
    if not optimizer.built or not given.keys() <= {id(v) for v in built_on}:
        optimizer.apply(gradients, variables)
        return
    new_trainable, new_optimizer = optimizer.stateless_apply(
        [variable.value for variable in optimizer.variables],
        [given.get(id(variable)) for variable in built_on],
        [variable.value for variable in built_on],
    )
    _hand_on(
        [
            (variable, value)
            for variable, value in zip(built_on, new_trainable, strict=True)
            if id(variable) in given
        ]
    )
    _hand_on(list(zip(optimizer.variables, new_optimizer, strict=True)))


def input_gradients(fn: Callable[[Any], Any], inputs):
    """Returns `(fn(inputs), d sum(fn(inputs)) / d inputs)`.

    The helper for the few paradigms whose mathematics needs gradients with
    respect to inputs instead of variables: a gradient penalty, an
    adversarial example.

    Args:
        fn: Callable of one tensor argument returning a tensor.
        inputs: The tensor to differentiate with respect to.

    Example:

    The fast gradient sign method: move each input by `epsilon` in the
    direction that increases the classifier's loss.

    ```python
    import keras
    import numpy as np
    from keras import ops
    from keras_custom.core import input_gradients

    classifier = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="sum")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.zeros(8, "int32")
    loss, gradients = input_gradients(lambda x: loss_fn(y, classifier(x)), x)
    x_adversarial = x + 0.1 * ops.sign(gradients)
    assert float(loss_fn(y, classifier(x_adversarial))) > float(loss)
    ```
    """
    pure = _pure(fn, [])
    inputs = keras.ops.convert_to_tensor(inputs)
    outputs, pullback, updates = jax.vjp(lambda x: pure([], x), inputs, has_aux=True)
    _hand_on(updates)
    (gradients,) = pullback(keras.ops.ones_like(outputs))
    return outputs, gradients
