"""`TimestepEmbedding`: sinusoidal features of a diffusion time step."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_custom")
class TimestepEmbedding(keras.layers.Layer):
    """Sinusoidal features of integer time steps, for a denoising network.

    Maps time steps `t` of shape `(batch,)` (any integer or float dtype) to
    `(batch, dim)` features `[sin(t w_0), ..., sin(t w_{k-1}), cos(t w_0),
    ..., cos(t w_{k-1})]` with `k = dim / 2` frequencies
    `w_i = max_period ** (-i / k)`: the Transformer's position encoding,
    which Ho et al. use to give their network the time step. It has no
    weights; follow it with `Dense` layers to learn from it.

    Args:
        dim: Number of features, even.
        max_period: The longest period, in time steps.
        **kwargs: Forwarded to `keras.layers.Layer`.

    Example:

    ```python
    import numpy as np
    from keras_custom.layers import TimestepEmbedding

    embedding = TimestepEmbedding(16)
    features = embedding(np.array([0, 10, 999], "int32"))  # shape (3, 16)
    ```

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762), section 3.5; Ho et al.,
        "Denoising Diffusion Probabilistic Models", NeurIPS 2020
        (https://arxiv.org/abs/2006.11239), appendix B.
    """

    def __init__(self, dim: int, max_period: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise ValueError(f"`dim` must be a positive even integer. Got: {dim!r}.")
        self.dim = dim
        self.max_period = float(max_period)
        self.built = True

    def call(self, timesteps):
        half = self.dim // 2
        exponents = ops.arange(half, dtype="float32") / half
        frequencies = ops.exp(-math.log(self.max_period) * exponents)
        t = ops.reshape(ops.cast(timesteps, "float32"), (-1, 1))
        angles = t * ops.expand_dims(frequencies, 0)
        features = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(features, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}
