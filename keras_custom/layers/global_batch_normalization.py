"""`GlobalBatchNormalization`: batch statistics of the global batch, any backend."""

import keras

from keras_custom.core import backend


@keras.saving.register_keras_serializable(package="keras_custom")
class GlobalBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalization whose statistics are those of the global batch.

    Under `tf.distribute` each replica sees its part of the batch, so this
    is `BatchNormalization(synchronized=True)`, which all-reduces the
    statistics across replicas. On JAX a step is one program over the
    global batch (`keras.distribution.DataParallel` shards it), so the
    plain layer already sees it; Keras's `synchronized=True` is refused
    there. The saved config leaves `synchronized` out, so a `.keras` file
    loads on either backend. Self-supervised methods (SimSiam, BYOL) and
    GANs with batch normalization need it to train the same on several
    devices as on one.

    Args:
        **kwargs: As `keras.layers.BatchNormalization`, without
            `synchronized`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.layers import GlobalBatchNormalization

    layer = GlobalBatchNormalization()
    outputs = layer(np.random.rand(8, 4).astype("float32"), training=True)
    assert outputs.shape == (8, 4)
    ```

    Reference: Ioffe and Szegedy, "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", 2015.
    """

    def __init__(self, **kwargs):
        kwargs.pop("synchronized", None)
        super().__init__(synchronized=backend.NAME == "tensorflow", **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("synchronized", None)
        return config
