"""`VICRegLoss`: the variance-invariance-covariance loss of VICReg."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_custom")
class VICRegLoss(keras.losses.Loss):
    """Invariance between two views, with variance and covariance regularizers.

    `y_true` and `y_pred` are the projections `(N, d)` of two views of the
    same `N` examples (`N >= 2`). The loss is
    `invariance_weight * s + variance_weight * v + covariance_weight * c`:

    - invariance `s`: the mean squared difference of the two views, over
      the `N * d` entries;
    - variance `v`: for each view, the mean over the `d` dimensions of the
      hinge `max(0, 1 - sqrt(Var(z_j) + epsilon))` on the (unbiased)
      standard deviation along the batch, which keeps every dimension
      spread out; the mean of the two views;
    - covariance `c`: for each view, the sum of the squared off-diagonal
      entries of its `d x d` covariance matrix (unbiased) divided by `d`,
      which decorrelates the dimensions; the sum of the two views.

    The two views' variance terms are averaged and their covariance terms
    added, as in the authors' implementation, for which the default weights
    are tuned. It is a statistic of the whole batch, so it returns one
    value (of shape `(1,)` with `reduction="none"`); `terms` gives the three
    terms too. Under a distribution strategy, give it the projections
    gathered over the replicas (`keras_custom.core.all_gather`), as
    `keras_custom.VICReg` does.

    Args:
        invariance_weight: The paper's `lambda`, weight of the invariance
            (mean squared error) term.
        variance_weight: The paper's `mu`, weight of the variance (hinge)
            term.
        covariance_weight: The paper's `nu`, weight of the covariance term.
        epsilon: Added to each variance before the square root, for
            numerical stability.
        reduction: Keras loss reduction (of the single value).
        name: Name of the loss.
        dtype: Dtype of the computation (default float32).

    Example:

    ```python
    import numpy as np
    from keras_custom.losses import VICRegLoss

    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(32, 4))
    z2 = z1 + 0.1 * rng.normal(size=(32, 4))
    loss = VICRegLoss()(z1, z2)
    terms = VICRegLoss().terms(z1, z2)
    sorted(terms)  # ['covariance_loss', 'invariance_loss', 'loss', 'variance_loss']
    ```

    Reference:
        Section 3 and algorithm 1 of Bardes, Ponce and LeCun,
        "VICReg: Variance-Invariance-Covariance Regularization for
        Self-Supervised Learning", ICLR 2022
        (https://arxiv.org/abs/2105.04906).
    """

    def __init__(
        self,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        epsilon: float = 1e-4,
        reduction: str = "sum_over_batch_size",
        name: str = "vicreg_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        for key, value in (
            ("invariance_weight", invariance_weight),
            ("variance_weight", variance_weight),
            ("covariance_weight", covariance_weight),
        ):
            if float(value) < 0:
                raise ValueError(f"`{key}` must be >= 0. Got: {value!r}.")
        if float(epsilon) <= 0:
            raise ValueError(f"`epsilon` must be > 0. Got: {epsilon!r}.")
        self.invariance_weight = float(invariance_weight)
        self.variance_weight = float(variance_weight)
        self.covariance_weight = float(covariance_weight)
        self.epsilon = float(epsilon)

    def _variance_and_covariance(self, z):
        """The variance hinge and the covariance penalty of one view."""
        count = ops.cast(ops.shape(z)[0], z.dtype)
        dim = ops.cast(ops.shape(z)[1], z.dtype)
        centered = z - ops.mean(z, axis=0, keepdims=True)
        covariance = ops.matmul(ops.transpose(centered), centered) / (count - 1)
        variance = ops.diagonal(covariance)
        std = ops.sqrt(variance + self.epsilon)
        hinge = ops.mean(ops.relu(1.0 - std))
        off_diagonal = ops.sum(ops.square(covariance)) - ops.sum(ops.square(variance))
        return hinge, off_diagonal / dim

    def terms(self, y_true, y_pred) -> dict:
        """The loss and its three terms, unweighted, as scalars.

        Args:
            y_true: Projections `(N, d)` of the first view.
            y_pred: Projections `(N, d)` of the second view.

        Returns:
            Dict of scalars: `"loss"`, the weighted total (the value of the
            loss), and `"invariance_loss"`, `"variance_loss"` and
            `"covariance_loss"`, the terms before their weights.
        """
        z_1 = ops.convert_to_tensor(y_true, dtype=self.dtype)
        z_2 = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        invariance = ops.mean(ops.square(z_1 - z_2))
        hinge_1, covariance_1 = self._variance_and_covariance(z_1)
        hinge_2, covariance_2 = self._variance_and_covariance(z_2)
        variance = (hinge_1 + hinge_2) / 2.0
        covariance = covariance_1 + covariance_2
        return {
            "loss": self.invariance_weight * invariance
            + self.variance_weight * variance
            + self.covariance_weight * covariance,
            "invariance_loss": invariance,
            "variance_loss": variance,
            "covariance_loss": covariance,
        }

    def call(self, y_true, y_pred):
        # Shape (1,), not (): Keras leaves a 0-d value unreduced, so it would
        # escape the replica scaling every other Keras loss gets outside
        # `minimize`.
        return ops.reshape(self.terms(y_true, y_pred)["loss"], (1,))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "invariance_weight": self.invariance_weight,
            "variance_weight": self.variance_weight,
            "covariance_weight": self.covariance_weight,
            "epsilon": self.epsilon,
        }
