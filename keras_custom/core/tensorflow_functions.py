"""The compiled TensorFlow functions of keras_custom.

The lean one-step train and test function `fit()` calls, the reduction of
a distributed step's logs, compiled inference for the forward passes that
run outside `fit()`, and the unbuffered dataset of experience that steps
read. With `tensorflow_backend`, the only modules that use TensorFlow.
"""

from collections.abc import Callable

import tensorflow as tf

from keras_custom.core import keras_internals


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


def step_function(model, step: Callable, kind: str) -> Callable:
    """The train (`kind="train"`) or test function `fit()` calls.

    Keras's own, built from `step` through its `_make_function` hook
    (which the core replaces by `one_step_function` for single steps).
    """
    del kind
    return keras_internals.make_function(model, step)


def inference_function(fn: Callable, model=None) -> Callable:
    """`fn` compiled once (per input signature), returning NumPy arrays.

    For the many small forward passes that run outside `fit()`'s steps,
    such as choosing actions while an environment is stepped: an eager
    Keras call costs about a millisecond, a compiled one a fraction of it.

    Args:
        fn: The function, of tensors.
        model: The model (or layer) whose variables `fn` reads. TensorFlow's
            compiled functions read variables as they are; on JAX their
            values are passed to the compiled function at each call.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.core import inference_function

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    act = inference_function(
        lambda states: keras.ops.argmax(policy(states), -1), policy)
    actions = act(np.zeros((3, 4), "float32"))  # a NumPy array of 3 actions
    ```
    """
    del model
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

    Example:

    ```python
    import numpy as np
    from keras_custom.core import unbuffered_dataset

    def batches():
        for step in range(3):
            yield {"x": np.full((2, 4), step, "float32")}

    dataset = unbuffered_dataset(batches, next(batches()))
    assert [int(batch["x"][0, 0]) for batch in dataset] == [0, 1, 2]
    ```
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
