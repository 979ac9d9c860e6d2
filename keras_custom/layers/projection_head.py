"""`ProjectionHead`: the MLP head of self-supervised models."""

import keras

from keras_custom.layers.global_batch_normalization import GlobalBatchNormalization


@keras.saving.register_keras_serializable(package="keras_custom")
class ProjectionHead(keras.layers.Layer):
    """An MLP of `Dense -> BatchNormalization -> ReLU` blocks and a `Dense` output.

    The heads of SimCLR (v2), SimSiam, BYOL and Barlow Twins are this MLP
    with different sizes: `hidden_layers` blocks of `hidden_units` (the
    hidden `Dense` layers have no bias, as batch normalization follows),
    then a linear output of `output_units`, optionally batch-normalized
    (SimSiam's projector). Batch normalization is synchronized across
    replicas, so under `MirroredStrategy` it sees the global batch, as the
    papers do.

    Args:
        output_units: Size of the output.
        hidden_units: Size of each hidden block.
        hidden_layers: Number of hidden blocks.
        output_batch_norm: Whether the output is batch-normalized (without
            a learned scale and offset).
        **kwargs: Forwarded to `keras.layers.Layer`.

    Example:

    ```python
    import numpy as np
    from keras_custom.layers import ProjectionHead

    head = ProjectionHead(output_units=32, hidden_units=64)
    projections = head(np.zeros((8, 16)), training=True)  # shape (8, 32)
    ```

    Reference:
        Chen et al., "Big Self-Supervised Models are Strong Semi-Supervised
        Learners" (SimCLR v2), 2020 (https://arxiv.org/abs/2006.10029);
        Chen and He, SimSiam, 2021 (https://arxiv.org/abs/2011.10566).
    """

    def __init__(
        self,
        output_units: int,
        hidden_units: int = 128,
        hidden_layers: int = 1,
        output_batch_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("output_units", output_units),
            ("hidden_units", hidden_units),
        ):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be a positive integer. Got {value!r}.")
        if int(hidden_layers) < 0:
            raise ValueError(f"`hidden_layers` must be >= 0. Got {hidden_layers!r}.")
        self.output_units = int(output_units)
        self.hidden_units = int(hidden_units)
        self.hidden_layers = int(hidden_layers)
        self.output_batch_norm = bool(output_batch_norm)
        self.blocks = []
        for _ in range(self.hidden_layers):
            self.blocks += [
                keras.layers.Dense(self.hidden_units, use_bias=False),
                GlobalBatchNormalization(),
                keras.layers.ReLU(),
            ]
        self.blocks.append(keras.layers.Dense(self.output_units))
        if self.output_batch_norm:
            self.blocks.append(GlobalBatchNormalization(center=False, scale=False))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=None):
        outputs = inputs
        for block in self.blocks:
            if isinstance(block, keras.layers.BatchNormalization):
                outputs = block(outputs, training=training)
            else:
                outputs = block(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.output_units)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "output_units": self.output_units,
            "hidden_units": self.hidden_units,
            "hidden_layers": self.hidden_layers,
            "output_batch_norm": self.output_batch_norm,
        }
