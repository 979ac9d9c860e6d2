"""Gradient tapes and `tf.distribute` replica arithmetic.

With `tensorflow_functions` (the compiled train, test and inference
functions), the only modules of keras_custom that use TensorFlow, so that
the rest of the library is written with `keras.ops` and can run on another
backend by swapping these two.
"""

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf
from keras import ops

from keras_custom.core import keras_internals
from keras_custom.core.loss_objects import loss_of


def num_replicas_in_sync() -> int:
    """Returns the number of replicas of the active `tf.distribute` strategy."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_index():
    """The index of the replica running this code (0 outside replica steps)."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0
    return context.replica_id_in_sync_group


def has_distribution_strategy() -> bool:
    """Returns True inside the scope or a step of a non-default strategy."""
    return tf.distribute.has_strategy()


@contextlib.contextmanager
def op_determinism():
    """A context in which TensorFlow's ops are deterministic.

    `tf.config.experimental.enable_op_determinism()` for the duration of the
    context, restored to its previous state after (TensorFlow has no public
    way back).

    Example:

    ```python
    import keras
    from keras_custom.core import op_determinism

    with op_determinism():  # the same run gives the same numbers
        keras.utils.set_random_seed(0)
        first = keras.random.normal((3,))
    ```
    """
    was_enabled = keras_internals.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            keras_internals.disable_op_determinism()


def strategy_scope(model):
    """The scope of the strategy `model` was created under.

    A no-op when the model was created outside any strategy or when a
    strategy scope (or a replica context) is already active.
    """
    strategy = keras_internals.creation_strategy(model)
    if strategy is None or tf.distribute.has_strategy():
        return contextlib.nullcontext()
    return strategy.scope()


def outside_step():
    """A context that lifts variable creation out of a traced step."""
    return tf.init_scope()


def replica_share(loss):
    """A replica's share of a loss that is a mean over its own batch.

    Gradients are summed across replicas, so the mean over a replica's
    batch divided by the replica count has, summed, the gradient of the
    mean over the global batch. Outside a strategy (or with one replica)
    the loss is returned unchanged. Only the core applies it, once, to the
    loss it differentiates (`value_and_gradients`).
    """
    replicas = num_replicas_in_sync()
    if replicas > 1:
        loss = ops.multiply(loss, ops.cast(1.0 / replicas, loss.dtype))
    return loss


def first_replica_part(batch, strategy):
    """The first replica's part of a batch distributed by `strategy`.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from keras_custom.core import first_replica_part

    strategy = tf.distribute.get_strategy()  # one replica: the batch itself
    assert first_replica_part({"x": np.ones(2)}, strategy)["x"].shape == (2,)
    ```
    """

    def part(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(part, batch)


def all_gather(value):
    """Concatenates `value` over the replicas along axis 0.

    Gradients flow back to each replica's own rows (TensorFlow sums the
    upstream gradients over replicas), so a loss of the gathered batch,
    divided by the number of replicas as the core divides every loss, has
    the gradients of the same loss on one device. Outside a strategy it
    returns `value`.

    Example:

    ```python
    import numpy as np
    from keras_custom.core import all_gather

    # The projections of the global batch, for a loss that compares every
    # pair of examples (SimCLR, Barlow Twins); outside a strategy, as given.
    projections = np.ones((4, 8), "float32")
    assert all_gather(projections).shape == (4, 8)
    ```
    """
    context = tf.distribute.get_replica_context()
    if context is None or num_replicas_in_sync() == 1:
        return value
    return context.all_gather(value, axis=0)


def all_reduce_sum(values: Sequence) -> list:
    """Sums each tensor of `values` (`None` kept) over the replicas."""
    values = list(values)
    context = tf.distribute.get_replica_context()
    if context is None or num_replicas_in_sync() == 1:
        return values
    present = [v for v in values if v is not None]
    summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present))
    return [None if v is None else next(summed) for v in values]


def local_rows(gathered, local_size):
    """This replica's rows of a tensor that `all_gather` concatenated."""
    if num_replicas_in_sync() == 1:
        return gathered
    context = tf.distribute.get_replica_context()
    local_size = tf.cast(local_size, "int32")
    sizes = context.all_gather(tf.reshape(local_size, (1,)), axis=0)
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    return gathered[offset : offset + local_size]


def assign_moving_average(targets: Sequence, sources: Sequence, decay_fn) -> None:
    """`target = decay * target + (1 - decay) * source` for each pair.

    Under a strategy the update runs once, in cross-replica context, on the
    mirrored variables (the sources are equal on every replica after the
    optimizer's all-reduce). `decay_fn` is called there to give the decay.

    Example:

    ```python
    import keras
    from keras_custom.core import assign_moving_average

    target, source = keras.Variable([0.0]), keras.Variable([1.0])
    assign_moving_average([target], [source], lambda: 0.9)
    assert abs(float(target[0]) - 0.1) < 1e-6
    ```
    """

    def update(*_):
        decay = decay_fn()
        for target, source in zip(targets, sources, strict=True):
            weight = ops.cast(decay, target.dtype)
            target.assign(weight * target + (1.0 - weight) * source)

    context = tf.distribute.get_replica_context()
    if context is None or not tf.distribute.has_strategy():
        update()
    else:
        context.merge_call(update)


def value_and_gradients(
    loss_fn: Callable[[], Any],
    variables: Sequence | Callable[[], Sequence],
    scale_loss: Callable | None = None,
):
    """Runs `loss_fn` under a gradient tape; differentiates its replica share.

    `loss_fn` runs with Keras losses computed as means over this replica's
    batch (`keras_internals.replica_mean_losses`), as a loss made with raw
    `ops.mean` is; the loss is then divided by the replica count once
    (`replica_share`) before the gradients are taken. So a loss written
    with `Loss` objects, with `ops.mean` or with both trains the same on
    any number of replicas, and what `loss_fn` returned is the value to log.

    Args:
        loss_fn: Callable without arguments returning a scalar loss, a
            tuple `(loss, aux...)` or a dict of named terms with the total
            under `"loss"` (`loss_of`).
        variables: Variables to differentiate with respect to, or a callable
            returning them, called after the forward pass (which may be what
            creates them).
        scale_loss: Optional callable applied to the loss before the
            gradients are taken (an optimizer's `scale_loss`).

    Returns:
        `(output, variables, gradients)`: what `loss_fn` returned, the
        variables, and one gradient (or `None`) per variable.
    """
    with tf.GradientTape() as tape:
        with keras_internals.replica_mean_losses():
            output = loss_fn()
        loss = replica_share(loss_of(output))
        if scale_loss is not None:
            loss = scale_loss(loss)
    variables = list(variables() if callable(variables) else variables)
    return output, variables, tape.gradient(loss, variables)


def apply_gradients(optimizer, gradients: Sequence, variables: Sequence) -> None:
    """`optimizer.apply(gradients, variables)`."""
    optimizer.apply(gradients, variables)


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
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = fn(inputs)
    return outputs, tape.gradient(outputs, inputs)
