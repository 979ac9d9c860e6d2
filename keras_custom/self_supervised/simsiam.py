"""`SimSiam`: simple Siamese representation learning."""

import keras

from keras_custom.losses import NegativeCosineSimilarity
from keras_custom.self_supervised.self_supervised_model import SelfSupervisedModel


@keras.saving.register_keras_serializable(package="keras_custom")
class SimSiam(SelfSupervisedModel):
    """SimSiam: each view's prediction matches the other view's projection.

    Each view goes through the encoder and the projector (`z`) and then the
    predictor (`p`); the loss is the symmetrized negative cosine similarity
    `D(p_1, stop_gradient(z_2)) / 2 + D(p_2, stop_gradient(z_1)) / 2`. The
    stop-gradient (no negatives, no momentum encoder) is what prevents
    collapse. Logs `loss`, which is -1 at best (and the online probe's keys
    when `fit` gets labels; see `SelfSupervisedModel`).

    Args:
        encoder: A built model mapping inputs to features `(batch, d)`.
        projector: A built model or layer mapping features to projections
            (the paper's ends with batch normalization:
            `ProjectionHead(..., output_batch_norm=True)`).
        predictor: A built model or layer mapping projections to
            predictions of the same size (`PredictionHead`).
        augmenter: Layer making a random view (default
            `small_image_augmenter()`).
        **kwargs: `num_classes`, `optimizer` and `probe_optimizer` of
            `SelfSupervisedModel`, and the arguments of `keras.Model`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import SimSiam
    from keras_custom.layers import PredictionHead, ProjectionHead

    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(32, activation="relu")])
    projector = ProjectionHead(16, hidden_units=32, output_batch_norm=True)
    predictor = PredictionHead(16, hidden_units=4)
    projector.build((None, 32))
    predictor.build((None, 16))
    model = SimSiam(encoder, projector, predictor)
    model.compile()
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1))
    model.fit(images.astype("float32"), batch_size=32, verbose=0)
    ```

    Reference:
        Chen and He, "Exploring Simple Siamese Representation Learning",
        CVPR 2021 (https://arxiv.org/abs/2011.10566).
    """

    def __init__(self, encoder, projector, predictor, augmenter=None, **kwargs):
        super().__init__(
            encoder, augmenter, projector=projector, predictor=predictor, **kwargs
        )
        self.similarity_loss = NegativeCosineSimilarity()

    def representation_loss(self, view_1, view_2, training: bool):
        z_1, z_2 = self.project(view_1, training), self.project(view_2, training)
        p_1 = self.predictor(z_1, training=training)
        p_2 = self.predictor(z_2, training=training)
        stop = keras.ops.stop_gradient
        return 0.5 * (
            self.similarity_loss(stop(z_2), p_1) + self.similarity_loss(stop(z_1), p_2)
        )
