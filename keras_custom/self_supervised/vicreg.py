"""`VICReg`: variance-invariance-covariance regularization."""

import keras

from keras_custom.losses import VICRegLoss
from keras_custom.self_supervised.self_supervised_model import SelfSupervisedModel


@keras.saving.register_keras_serializable(package="keras_custom")
class VICReg(SelfSupervisedModel):
    """VICReg: views agree, each dimension keeps its spread, none correlate.

    Each view goes through the encoder and the projector; the loss
    (`keras_custom.losses.VICRegLoss`) pulls the two views' projections
    together (mean squared error, weighted by `invariance_weight`), keeps
    the standard deviation of every projection dimension over the batch
    above 1 (a hinge, `variance_weight`) and drives the off-diagonal
    entries of each view's covariance matrix to zero
    (`covariance_weight`). No negatives, predictor, stop-gradient or
    target network: the variance term alone prevents collapse. The two
    regularizers are statistics of the batch, so under a distribution
    strategy the projections of all replicas are gathered first. Logs
    `loss` and its unweighted terms `invariance_loss`, `variance_loss` and
    `covariance_loss` (and the online probe's keys when `fit` gets labels;
    see `SelfSupervisedModel`).

    Args:
        encoder: A built model mapping inputs to features `(batch, d)`.
        projector: A built model or layer mapping features to projections
            (the paper's expander; its output is not batch-normalized).
        augmenter: Layer making a random view (default
            `small_image_augmenter()`).
        invariance_weight: The paper's `lambda`.
        variance_weight: The paper's `mu`.
        covariance_weight: The paper's `nu`.
        **kwargs: `num_classes`, `optimizer` and `probe_optimizer` of
            `SelfSupervisedModel`, and the arguments of `keras.Model`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import VICReg
    from keras_custom.layers import ProjectionHead
    from keras_custom.self_supervised import small_image_augmenter

    encoder = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    projector = ProjectionHead(32, hidden_units=32)
    projector.build((None, 8))
    model = VICReg(
        encoder,
        projector,
        augmenter=small_image_augmenter(rotation=0.0, seed=1),
        invariance_weight=25.0,
        variance_weight=25.0,
        covariance_weight=1.0,
    )
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
    history = model.fit(images.astype("float32"), batch_size=32, verbose=0)
    sorted(history.history)  # covariance_loss, invariance_loss, loss, variance_loss
    features = model.predict(images, verbose=0)  # the encoder's: (64, 8)
    ```

    Reference:
        Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance
        Regularization for Self-Supervised Learning", ICLR 2022
        (https://arxiv.org/abs/2105.04906).
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        augmenter: keras.layers.Layer | None = None,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(encoder, augmenter, projector=projector, **kwargs)
        self.vicreg_loss = VICRegLoss(
            invariance_weight, variance_weight, covariance_weight
        )
        self.invariance_weight = self.vicreg_loss.invariance_weight
        self.variance_weight = self.vicreg_loss.variance_weight
        self.covariance_weight = self.vicreg_loss.covariance_weight
        for name in ("invariance_loss", "variance_loss", "covariance_loss"):
            self.add_tracker(name)

    def representation_loss(self, view_1, view_2, training: bool):
        return self.vicreg_loss.terms(
            *self.gathered_projections(view_1, view_2, training)
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "invariance_weight": self.invariance_weight,
            "variance_weight": self.variance_weight,
            "covariance_weight": self.covariance_weight,
        }
