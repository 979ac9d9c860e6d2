"""`NTXent`: the normalized temperature-scaled cross-entropy of SimCLR."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_custom")
class NTXent(keras.losses.Loss):
    """The contrastive loss of SimCLR between two views of a batch.

    `y_true` and `y_pred` are the projections `(N, d)` of the first and
    second view of the same `N` examples. Each of the `2N` projections is
    l2-normalized; its positive is the other view of the same example and
    its negatives are the other `2N - 2` projections. The loss of an anchor
    is the cross-entropy of its cosine similarities divided by
    `temperature`, with the positive as the target; the loss of an example
    is the mean of its two anchors' losses.

    Args:
        temperature: Softmax temperature.
        reduction: Keras loss reduction over the `N` examples.
        name: Name of the loss.
        dtype: Dtype of the computation (default float32).

    Example:

    ```python
    import numpy as np
    from keras_custom.losses import NTXent

    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(2, 8, 4))
    loss = NTXent(temperature=0.5)(z1, z2)
    ```

    Reference:
        Equation 1 of Chen et al., "A Simple Framework for Contrastive
        Learning of Visual Representations", ICML 2020
        (https://arxiv.org/abs/2002.05709).
    """

    def __init__(
        self,
        temperature: float = 0.5,
        reduction: str = "sum_over_batch_size",
        name: str = "nt_xent",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if float(temperature) <= 0:
            raise ValueError(f"`temperature` must be > 0. Got: {temperature!r}.")
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        count = ops.shape(y_true)[0]
        z = ops.concatenate([y_true, y_pred], axis=0)
        z = z / ops.maximum(ops.norm(z, axis=1, keepdims=True), 1e-12)
        logits = ops.matmul(z, ops.transpose(z)) / self.temperature
        # An anchor is not its own negative.
        logits = logits - 1e9 * ops.eye(2 * count, dtype=logits.dtype)
        positives = ops.concatenate(
            [ops.arange(count) + count, ops.arange(count)], axis=0
        )
        per_anchor = keras.losses.sparse_categorical_crossentropy(
            positives, logits, from_logits=True
        )
        return ops.mean(ops.reshape(per_anchor, (2, count)), axis=0)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature}
