"""Random draws that do not depend on how a batch is split across replicas.

A model that samples noise per example (a GAN's latents, a VAE's
reparameterization, a gradient penalty's interpolates) with
`keras.random.normal(shape=(batch_size, ...))` draws the same numbers on every
replica of a `MirroredStrategy`: each replica sees half the batch and the same
seed, so the two halves get identical noise, and the training differs from one
device. These helpers draw the noise of the *global* batch and return this
replica's rows, so training under a strategy equals training on one device.
"""

import keras
from keras import ops

from keras_custom.core import backend


def _rows_of_this_replica(draw, batch_size, shape):
    replicas = backend.num_replicas_in_sync()
    if replicas == 1:
        return draw((batch_size, *shape))
    values = draw((replicas * batch_size, *shape))
    values = ops.reshape(values, (replicas, batch_size, *shape))
    return ops.take(values, backend.replica_index(), axis=0)


def normal(batch_size, shape: tuple = (), seed=None, dtype: str = "float32"):
    """Standard normal noise of shape `(batch_size, *shape)` for this replica.

    Args:
        batch_size: The replica's batch size (an int or a scalar tensor).
        shape: The shape of one example's noise.
        seed: A `keras.random.SeedGenerator` (or an int).
        dtype: The dtype of the noise.

    Example:

    ```python
    import keras
    from keras_custom.core import replica_random

    seed = keras.random.SeedGenerator(0)
    noise = replica_random.normal(4, (8,), seed)  # shape (4, 8)
    ```
    """
    return _rows_of_this_replica(
        lambda s: keras.random.normal(s, dtype=dtype, seed=seed),
        batch_size,
        tuple(shape),
    )


def uniform(batch_size, shape: tuple = (), seed=None, dtype: str = "float32"):
    """Uniform noise in `[0, 1)` of shape `(batch_size, *shape)` for this replica.

    Args:
        batch_size: As in `normal`.
        shape: As in `normal`.
        seed: As in `normal`.
        dtype: As in `normal`.

    Example:

    The interpolation weights of a gradient penalty, one per example:

    ```python
    import keras
    from keras import ops
    from keras_custom.core import replica_random

    seed = keras.random.SeedGenerator(0)
    real, fake = ops.ones((4, 8)), ops.zeros((4, 8))
    alpha = replica_random.uniform(4, (1,), seed)  # shape (4, 1), in [0, 1)
    interpolates = alpha * real + (1.0 - alpha) * fake
    ```
    """
    return _rows_of_this_replica(
        lambda s: keras.random.uniform(s, dtype=dtype, seed=seed),
        batch_size,
        tuple(shape),
    )


def apply_to_global_batch(fn, x):
    """Applies a random `fn` (an augmenter) to the global batch; returns this
    replica's rows.

    A random Keras layer draws its transforms from its own seed, which is the
    same on every replica, so under `MirroredStrategy` each replica would
    transform its rows as the others do. Gathering the global batch first
    gives every example the transform it gets on one device.

    Args:
        fn: Callable of one batch, e.g. `lambda b: augmenter(b, training=True)`.
        x: This replica's batch.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.core import replica_random

    augmenter = keras.layers.RandomFlip("horizontal", seed=0)
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1))
    # Inside a `train_step`; on one device this is `augmenter(images)`.
    view = replica_random.apply_to_global_batch(
        lambda batch: augmenter(batch, training=True), images)
    ```
    """
    if backend.num_replicas_in_sync() == 1:
        return fn(x)
    gathered = backend.all_gather(ops.stop_gradient(x))
    return backend.local_rows(fn(gathered), ops.shape(x)[0])
