"""`BarlowTwins`: self-supervised learning by redundancy reduction."""

import keras

from keras_custom.core import tensorflow_backend
from keras_custom.core.named_optimizers import OptimizerLike
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
        num_classes: Classes of the online probe, or `None`.
        optimizer: Optimizer of the encoder and projector (default Adam).
        probe_optimizer: Optimizer of the probe (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import BarlowTwins
    from keras_custom.layers import ProjectionHead

    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(32, activation="relu")])
    projector = ProjectionHead(64, hidden_units=64)
    projector.build((None, 32))
    model = BarlowTwins(encoder, projector, redundancy_weight=1 / 64)
    model.compile()
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
    model.fit(images.astype("float32"), batch_size=32, verbose=0)
    ```

    Reference:
        Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy
        Reduction", ICML 2021 (https://arxiv.org/abs/2103.03230).
    """

    _serialized_arguments = ("encoder", "augmenter", "projector")

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        augmenter: keras.layers.Layer | None = None,
        redundancy_weight: float = 5e-3,
        num_classes: int | None = None,
        optimizer: OptimizerLike = None,
        probe_optimizer: OptimizerLike = None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            augmenter=augmenter,
            num_classes=num_classes,
            optimizer=optimizer,
            probe_optimizer=probe_optimizer,
            **kwargs,
        )
        self.projector = projector
        self.barlow_twins_loss = BarlowTwinsLoss(redundancy_weight)
        self.redundancy_weight = self.barlow_twins_loss.redundancy_weight
        self.built = encoder.built and projector.built

    def representation_loss(self, view_1, view_2, training: bool):
        z_1, z_2 = self.project(view_1, training), self.project(view_2, training)
        return self.barlow_twins_loss(
            tensorflow_backend.all_gather(z_1), tensorflow_backend.all_gather(z_2)
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "redundancy_weight": self.redundancy_weight}
