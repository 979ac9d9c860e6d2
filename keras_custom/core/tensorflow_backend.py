"""The only module of keras_custom that touches TensorFlow directly.

Gradient tapes and `tf.distribute` replica arithmetic live here, so that the
rest of the library is written with `keras.ops` and can later run on the JAX
and torch backends by swapping this one module.
"""

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf
from keras import ops

from keras_custom.core import keras_internals


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


def scale_for_replicas(loss):
    """Divides a per-replica mean loss by the number of replicas.

    Gradients are summed across replicas, so a loss that is the mean over the
    replica's batch must be divided by the replica count to give the gradient
    of the mean over the global batch. Keras `Loss` objects with the default
    `"sum_over_batch_size"` reduction already do this. Outside a strategy (or
    with one replica) the loss is returned unchanged.

    Example:

    ```python
    import keras
    import numpy as np
    from keras import ops
    from keras_custom import CustomModel
    from keras_custom.core import scale_for_replicas


    class MeanAbsoluteErrorModel(CustomModel):
        def train_step(self, data):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            # A loss made with raw `ops.mean` must be scaled by hand.
            loss = self.minimize(lambda: scale_for_replicas(
                ops.mean(ops.abs(y - self(x, training=True)))))
            return {"loss": loss}  # `minimize` returns it unscaled


    inputs = keras.Input((4,))
    model = MeanAbsoluteErrorModel(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam")
    model.fit(np.ones((32, 4)), np.ones((32, 1)), batch_size=8, verbose=0)
    ```
    """
    replicas = num_replicas_in_sync()
    if replicas > 1:
        loss = ops.multiply(loss, ops.cast(1.0 / replicas, loss.dtype))
    return loss


def unscale_for_replicas(loss):
    """Undoes `scale_for_replicas`: the loss of this replica's batch, to log.

    A `test_step` that logs the value of a Keras `Loss` object (already
    divided by the number of replicas) multiplies it back, so the logged
    value is the same on any number of devices. `minimize` does this for
    the loss it returns.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import CustomModel
    from keras_custom.core import unscale_for_replicas


    class Regressor(CustomModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            loss = self.minimize(lambda: self.loss_fn(y, self(x, training=True)))
            return {"loss": loss}

        def test_step(self, data):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            loss = self.loss_fn(y, self(x, training=False))
            return {"loss": unscale_for_replicas(loss)}


    inputs = keras.Input((4,))
    model = Regressor(inputs, keras.layers.Dense(1)(inputs), optimizer="adam")
    model.compile()
    x, y = np.ones((32, 4)), np.ones((32, 1))
    history = model.fit(x, y, batch_size=8, validation_data=(x, y), verbose=0)
    ```
    """
    replicas = num_replicas_in_sync()
    if replicas > 1:
        loss = ops.multiply(loss, ops.cast(replicas, loss.dtype))
    return loss


def first_replica_part(batch, strategy):
    """The first replica's part of a batch distributed by `strategy`."""

    def part(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(part, batch)


def all_gather(value):
    """Concatenates `value` over the replicas along axis 0.

    Gradients flow back to each replica's own rows (TensorFlow sums the
    upstream gradients over replicas), so a loss of the gathered batch,
    divided by the number of replicas (`scale_for_replicas`), has the
    gradients of the same loss on one device. Outside a strategy it returns
    `value`.
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
    """Runs `loss_fn` under a gradient tape.

    Args:
        loss_fn: Callable without arguments returning a scalar loss, or a
            tuple `(loss, aux)` whose first element is the loss.
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
        output = loss_fn()
        loss = output[0] if isinstance(output, tuple) else output
        if scale_loss is not None:
            loss = scale_loss(loss)
    variables = list(variables() if callable(variables) else variables)
    return output, variables, tape.gradient(loss, variables)


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


def is_multi_worker(strategy) -> bool:
    """Whether `strategy` is a `MultiWorkerMirroredStrategy` over workers."""
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and keras_internals.in_multi_worker_mode(strategy)


def reduce_step_logs(logs, strategy):
    """One value per logged name from the replicas' step logs.

    As Keras: the mean over the replicas. Across workers Keras reduces every
    value over axis 0, which fails for scalars (keras-team/keras#20585); the
    scalars are averaged over all replicas of all workers instead.
    """
    if is_multi_worker(strategy):
        return tf.nest.map_structure(
            lambda value: strategy.reduce("MEAN", value, axis=None), logs
        )
    return keras_internals.reduce_per_replica(logs, strategy, reduction="auto")


def one_step_function(model, step_function, keras_function):
    """A leaner Keras train/test function for `steps_per_execution == 1`.

    Keras runs even a single step through its multi-step loop: the outputs
    come back wrapped in a `tf.experimental.Optional` that is unpacked
    eagerly, a few hundred microseconds per step, which is most of the gap
    between `fit()` on a `tf.data.Dataset` and a hand-written `tf.function`
    loop over it. Here the next batch is read and the step run in one
    `tf.function`; the end of the data surfaces as Keras expects
    (`OutOfRangeError`).

    Other cases keep `keras_function`, except `steps_per_execution > 1`
    under `MultiWorkerMirroredStrategy`, where Keras's multi-step function
    reduces the logs in a way that fails across workers: that gets a clear
    error.
    """
    strategy = model.distribute_strategy
    if model.steps_per_execution != 1 and is_multi_worker(strategy):
        raise ValueError(
            f"Model '{model.name}': `steps_per_execution="
            f"{model.steps_per_execution}` is not supported under "
            "`MultiWorkerMirroredStrategy` (Keras's multi-step function "
            "fails across workers, keras-team/keras#20585). Compile with "
            "`steps_per_execution=1`."
        )
    if model.steps_per_execution != 1 or model.run_eagerly:
        return keras_function

    # As in Keras's trainer, autograph does not convert the step: a Python
    # `if tensor:` in a user's `train_step` fails as it does on
    # `keras.Model`, and exceptions keep their type.
    @tf.autograph.experimental.do_not_convert
    def one_step_on_data(data):
        outputs = strategy.run(step_function, args=(data,))
        return reduce_step_logs(outputs, strategy)

    one_step_on_data = keras_internals.autoconvert_optionals(
        model,
        tf.function(
            one_step_on_data, reduce_retracing=True, jit_compile=model.jit_compile
        ),
    )

    @tf.function(reduce_retracing=True)
    @tf.autograph.experimental.do_not_convert
    def one_step_on_iterator(iterator):
        return one_step_on_data(iterator.get_next())

    def function(iterator):
        if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            return one_step_on_iterator(iterator)
        return keras_function(iterator)

    return function


def inference_function(fn: Callable) -> Callable:
    """`fn` compiled once (per input signature), returning NumPy arrays.

    For the many small forward passes that run outside `fit()`'s steps,
    such as choosing actions while an environment is stepped: an eager
    Keras call costs about a millisecond, a compiled one a fraction of it.
    """
    compiled = tf.function(fn, reduce_retracing=True)

    def call(*args):
        return tf.nest.map_structure(lambda t: t.numpy(), compiled(*args))

    return call


def unbuffered_dataset(generator_fn: Callable, example: dict):
    """A `tf.data.Dataset` of the dicts `generator_fn()` yields, not read ahead.

    The generator runs when a step reads its batch, never ahead of it in a
    background thread (no prefetching, autotuning off), so what it computes
    from a model's weights sees the weights every earlier step left.

    Args:
        generator_fn: Callable returning an iterator of dicts of arrays.
        example: One such dict, which fixes the dtypes and trailing shapes.
    """
    signature = {
        key: tf.TensorSpec((None,) + tuple(value.shape[1:]), tf.as_dtype(value.dtype))
        for key, value in example.items()
    }
    dataset = tf.data.Dataset.from_generator(generator_fn, output_signature=signature)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.inject_prefetch = False
    return dataset.with_options(options)
