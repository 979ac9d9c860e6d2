"""`BarlowTwinsLoss`: the redundancy-reduction loss of Barlow Twins."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_custom")
class BarlowTwinsLoss(keras.losses.Loss):
    """Pushes the cross-correlation matrix of two views towards the identity.

    `y_true` and `y_pred` are the projections `(N, d)` of two views of the
    same `N` examples. Each is standardized along the batch (mean 0,
    unbiased standard deviation 1 per dimension); `C = z1^T z2 / N` is their
    `d x d` cross-correlation, and the loss is
    `sum_i (1 - C_ii)^2 + redundancy_weight * sum_{i != j} C_ij^2`.
    It is a statistic of the whole batch, so it returns one value (of shape
    `(1,)` with `reduction="none"`).

    Args:
        redundancy_weight: The paper's `lambda`, weight of the off-diagonal
            (redundancy) term.
        reduction: Keras loss reduction (of the single value).
        name: Name of the loss.
        dtype: Dtype of the computation (default float32).

    Example:

    ```python
    import numpy as np
    from keras_custom.losses import BarlowTwinsLoss

    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(32, 4))
    loss = BarlowTwinsLoss()(z1, z1 + 0.1 * rng.normal(size=(32, 4)))
    ```

    Reference:
        Equations 1 and 2 of Zbontar et al., "Barlow Twins: Self-Supervised
        Learning via Redundancy Reduction", ICML 2021
        (https://arxiv.org/abs/2103.03230).
    """

    def __init__(
        self,
        redundancy_weight: float = 5e-3,
        reduction: str = "sum_over_batch_size",
        name: str = "barlow_twins_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if float(redundancy_weight) < 0:
            raise ValueError(
                f"`redundancy_weight` must be >= 0. Got: {redundancy_weight!r}."
            )
        self.redundancy_weight = float(redundancy_weight)

    @staticmethod
    def _standardize(z):
        count = ops.cast(ops.shape(z)[0], z.dtype)
        centered = z - ops.mean(z, axis=0, keepdims=True)
        variance = ops.sum(ops.square(centered), axis=0, keepdims=True) / (count - 1)
        return centered / ops.sqrt(variance + 1e-12)

    def call(self, y_true, y_pred):
        count = ops.cast(ops.shape(y_true)[0], y_true.dtype)
        correlation = (
            ops.matmul(
                ops.transpose(self._standardize(y_true)), self._standardize(y_pred)
            )
            / count
        )
        diagonal = ops.diagonal(correlation)
        on_diagonal = ops.sum(ops.square(1.0 - diagonal))
        off_diagonal = ops.sum(ops.square(correlation)) - ops.sum(ops.square(diagonal))
        loss = on_diagonal + self.redundancy_weight * off_diagonal
        # Shape (1,), not (): Keras leaves a 0-d value unreduced, so it would
        # escape the replica scaling every other Keras loss gets outside
        # `minimize`.
        return ops.reshape(loss, (1,))

    def get_config(self) -> dict:
        return {**super().get_config(), "redundancy_weight": self.redundancy_weight}
