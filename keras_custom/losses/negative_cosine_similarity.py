"""`NegativeCosineSimilarity`: the loss of SimSiam (and, up to 2 - 2x, BYOL)."""

import keras


@keras.saving.register_keras_serializable(package="keras_custom")
class NegativeCosineSimilarity(keras.losses.CosineSimilarity):
    """Minus the cosine similarity of `y_true` and `y_pred` along `axis`.

    This is Keras's own `keras.losses.CosineSimilarity` (which already
    returns the negative similarity, in `[-1, 1]`), under the name the
    SimSiam paper gives it. Stop the gradient of the target branch before
    calling it: SimSiam's `D(p, stop_gradient(z))`.

    Args:
        axis: The axis along which the similarity is taken.
        reduction: Keras loss reduction over the examples.
        name: Name of the loss.
        dtype: Dtype of the computation (default float32).

    Example:

    ```python
    import numpy as np
    from keras_custom.losses import NegativeCosineSimilarity

    p = np.array([[1.0, 0.0], [0.0, 2.0]])
    z = np.array([[1.0, 0.0], [1.0, 0.0]])
    loss = NegativeCosineSimilarity()(z, p)  # (-1 + 0) / 2 = -0.5
    ```

    Reference:
        Equation 1 of Chen and He, "Exploring Simple Siamese Representation
        Learning", CVPR 2021 (https://arxiv.org/abs/2011.10566).
    """

    def __init__(
        self,
        axis: int = -1,
        reduction: str = "sum_over_batch_size",
        name: str = "negative_cosine_similarity",
        dtype=None,
    ):
        super().__init__(axis=axis, reduction=reduction, name=name, dtype=dtype)
        # `LossFunctionWrapper` calls `self.fn` with its keyword arguments.
        self.fn = _negative_cosine_similarity


def _l2_normalize(x, axis: int):
    """`x / max(norm(x), epsilon)` with a finite gradient where `x` is zero.

    Keras's `ops.normalize` clips `rsqrt(sum(x**2))` after taking it, so a
    zero row (a predictor whose ReLUs are all off) has the gradient
    `0 * inf = nan` on JAX; clipping the sum first, as TensorFlow's
    `l2_normalize` does, gives 0.
    """
    square_sum = keras.ops.sum(keras.ops.square(x), axis=axis, keepdims=True)
    epsilon = keras.config.epsilon()
    return x * keras.ops.rsqrt(keras.ops.maximum(square_sum, epsilon * epsilon))


def _negative_cosine_similarity(y_true, y_pred, axis: int = -1):
    y_pred = keras.ops.convert_to_tensor(y_pred)
    y_true = keras.ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
    return -keras.ops.sum(
        _l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis
    )
