"""`BYOL`: bootstrap your own latent."""

import keras

from keras_custom.core import (
    serialize_scalar,
    validate_scalar,
)
from keras_custom.core.schedules import Scalar
from keras_custom.layers import TargetNetwork
from keras_custom.losses import NegativeCosineSimilarity
from keras_custom.self_supervised.self_supervised_model import SelfSupervisedModel


@keras.saving.register_keras_serializable(package="keras_custom")
class BYOL(SelfSupervisedModel):
    """BYOL: an online network predicts a slowly moving target network.

    The online branch is encoder, projector and predictor; the target branch
    is a `keras_custom.layers.TargetNetwork` copy of the encoder and
    projector that receives no gradients and, after each optimizer step,
    moves to `ema_decay * target + (1 - ema_decay) * online`. The loss is
    the symmetrized normalized squared error
    `(2 - 2 cos(q_1, z'_2)) + (2 - 2 cos(q_2, z'_1))`, averaged over the
    batch. The target's weights are weights of the model: saved, restored
    and resumed with it. Logs `loss` (and the online probe's keys when
    `fit` gets labels; see `SelfSupervisedModel`).

    Args:
        encoder: A built model mapping inputs to features `(batch, d)`.
        projector: A built model or layer mapping features to projections.
        predictor: A built model or layer mapping projections to predictions
            of the same size (`PredictionHead`).
        augmenter: Layer making a random view (default
            `small_image_augmenter()`).
        ema_decay: The target's moving-average decay (the paper's `tau`): a
            float, or a schedule evaluated at the optimizer's iterations,
            e.g. `keras_custom.schedules.CosineIncrease(0.996, 1.0, steps)`.
        **kwargs: `num_classes`, `optimizer` and `probe_optimizer` of
            `SelfSupervisedModel`, and the arguments of `keras.Model`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import BYOL
    from keras_custom.layers import PredictionHead, ProjectionHead
    from keras_custom.schedules import CosineIncrease

    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Flatten()(inputs)
    encoder = keras.Model(inputs, keras.layers.Dense(32, activation="relu")(hidden))
    heads = [ProjectionHead(16, hidden_units=32), PredictionHead(16, hidden_units=32)]
    for head, width in zip(heads, (32, 16)):
        head.build((None, width))
    model = BYOL(encoder, *heads, ema_decay=CosineIncrease(0.99, 1.0, steps=100))
    model.compile()
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
    model.fit(images.astype("float32"), batch_size=32, epochs=2, verbose=0)
    ```

    Reference:
        Grill et al., "Bootstrap Your Own Latent: A New Approach to
        Self-Supervised Learning", NeurIPS 2020
        (https://arxiv.org/abs/2006.07733).
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        predictor: keras.layers.Layer,
        augmenter: keras.layers.Layer | None = None,
        ema_decay: Scalar = 0.996,
        **kwargs,
    ):
        super().__init__(
            encoder, augmenter, projector=projector, predictor=predictor, **kwargs
        )
        self.ema_decay = validate_scalar(ema_decay, "ema_decay")
        self.target = TargetNetwork([encoder, projector], name="target")
        self.similarity_loss = NegativeCosineSimilarity()

    def representation_loss(self, view_1, view_2, training: bool):
        def online(view):
            return self.predictor(self.project(view, training), training=training)

        target_1 = self.target(view_1, training=training)
        target_2 = self.target(view_2, training=training)
        # 2 - 2 cos(q, z') for each pair of a prediction and the other
        # view's target projection, as `-cos` means over the batch.
        negative_cosines = self.similarity_loss(
            target_2, online(view_1)
        ) + self.similarity_loss(target_1, online(view_2))
        return 4.0 + 2.0 * negative_cosines

    def after_update(self) -> None:
        self.target.update(lambda: self.scalar(self.ema_decay, "optimizer"))

    def get_config(self) -> dict:
        return {**super().get_config(), "ema_decay": serialize_scalar(self.ema_decay)}
