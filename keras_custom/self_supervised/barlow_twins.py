"""`BarlowTwins`: self-supervised learning by redundancy reduction."""

import keras

from keras_custom.losses import BarlowTwinsLoss
from keras_custom.self_supervised.self_supervised_model import SelfSupervisedModel


@keras.saving.register_keras_serializable(package="keras_custom")
class BarlowTwins(SelfSupervisedModel):
    """Barlow Twins: the cross-correlation of two views' projections -> identity.

    Each view goes through the encoder and the projector; the loss
    (`keras_custom.losses.BarlowTwinsLoss`) standardizes each projection
    dimension over the batch and drives the views' cross-correlation matrix
    to the identity: invariance on the diagonal, `redundancy_weight` times
    decorrelation off it. It is a statistic of the batch, so under a
    distribution strategy the projections of all replicas are gathered
    first. Logs `loss` (and the online probe's keys when `fit` gets labels;
    see `SelfSupervisedModel`).

    Args:
        encoder: A built model mapping inputs to features `(batch, d)`.
        projector: A built model or layer mapping features to projections.
        augmenter: Layer making a random view (default
            `small_image_augmenter()`).
        redundancy_weight: The paper's `lambda` (5e-3 for its 8192-d
            projections; about `1 / projection size` in general).
        **kwargs: `num_classes`, `optimizer` and `probe_optimizer` of
            `SelfSupervisedModel`, and the arguments of `keras.Model`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import BarlowTwins
    from keras_custom.layers import ProjectionHead
    from keras_custom.self_supervised import small_image_augmenter

    encoder = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    projector = ProjectionHead(32, hidden_units=32)
    projector.build((None, 8))
    model = BarlowTwins(
        encoder,
        projector,
        augmenter=small_image_augmenter(rotation=0.0, seed=1),
        redundancy_weight=1 / 32,  # about 1 / projection size
    )
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
    model.fit(images.astype("float32"), batch_size=32, verbose=0)
    features = model.predict(images, verbose=0)  # the encoder's: (64, 8)
    ```

    Reference:
        Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy
        Reduction", ICML 2021 (https://arxiv.org/abs/2103.03230).
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        augmenter: keras.layers.Layer | None = None,
        redundancy_weight: float = 5e-3,
        **kwargs,
    ):
        super().__init__(encoder, augmenter, projector=projector, **kwargs)
        self.barlow_twins_loss = BarlowTwinsLoss(redundancy_weight)
        self.redundancy_weight = self.barlow_twins_loss.redundancy_weight

    def representation_loss(self, view_1, view_2, training: bool):
        return self.barlow_twins_loss(
            *self.gathered_projections(view_1, view_2, training)
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "redundancy_weight": self.redundancy_weight}
