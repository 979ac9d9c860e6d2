"""`SimCLR`: contrastive learning of visual representations."""

import keras

from keras_custom.losses import NTXent
from keras_custom.self_supervised.self_supervised_model import SelfSupervisedModel


@keras.saving.register_keras_serializable(package="keras_custom")
class SimCLR(SelfSupervisedModel):
    """SimCLR: the two views of an example attract, all other examples repel.

    Each view goes through the encoder and the projector; the NT-Xent loss
    (`keras_custom.losses.NTXent`) with `temperature` takes every other
    example of the batch, in both views, as a negative. Under a distribution
    strategy the projections of all replicas are gathered first, so the
    negatives are those of the global batch, as in the paper. Logs `loss`
    (and the online probe's `probe_loss`, `probe_accuracy` when `fit` gets
    labels; see `SelfSupervisedModel`).

    Args:
        encoder: A built model mapping inputs to features `(batch, d)`.
        projector: A built model or layer mapping features to projections,
            e.g. `keras_custom.layers.ProjectionHead`.
        augmenter: Layer making a random view (default
            `small_image_augmenter()`).
        temperature: Temperature of the NT-Xent loss.
        **kwargs: `num_classes`, `optimizer` and `probe_optimizer` of
            `SelfSupervisedModel`, and the arguments of `keras.Model`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import SimCLR
    from keras_custom.layers import ProjectionHead

    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(32, activation="relu")])
    projector = ProjectionHead(16, hidden_units=32)
    projector.build((None, 32))
    model = SimCLR(encoder, projector, temperature=0.5, num_classes=10)
    model.compile()
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(64, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 10, size=64)
    history = model.fit(images, labels, batch_size=32, verbose=0)
    sorted(history.history)  # ['loss', 'probe_accuracy', 'probe_loss']
    ```

    Reference:
        Chen et al., "A Simple Framework for Contrastive Learning of Visual
        Representations", ICML 2020 (https://arxiv.org/abs/2002.05709).
    """

    def __init__(
        self,
        encoder: keras.Model,
        projector: keras.layers.Layer,
        augmenter: keras.layers.Layer | None = None,
        temperature: float = 0.5,
        **kwargs,
    ):
        super().__init__(encoder, augmenter, projector=projector, **kwargs)
        self.contrastive_loss = NTXent(temperature)
        self.temperature = self.contrastive_loss.temperature

    def representation_loss(self, view_1, view_2, training: bool):
        return self.contrastive_loss(
            *self.gathered_projections(view_1, view_2, training)
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature}
