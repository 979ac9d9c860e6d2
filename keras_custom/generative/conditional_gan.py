"""`ConditionalGAN`: a GAN whose networks are conditioned on class labels."""

import keras
import numpy as np

from keras_custom.core.input_checks import (
    check_single_input,
    class_ids,
    network_input,
    require_labels,
)
from keras_custom.generative.gan import GAN, _positive_int


@keras.saving.register_keras_serializable(package="keras_custom")
class ConditionalGAN(GAN):
    """A GAN trained by `fit(x, y)` to generate samples of requested classes.

    The generator takes `[latents, labels]` and the discriminator
    `[samples, labels]`, where `labels` are integer class ids of shape
    `(batch,)`; how each network uses them (an `Embedding`, a one-hot
    concatenation) is the network's business. The discriminator sees real
    samples with their labels (target 1) and generated samples with the same
    labels (target 0); the generator is trained, non-saturating, to make
    the discriminator call its samples of those labels real. Logs `d_loss`
    and `g_loss`.

    `model([z, labels])` generates from given latents;
    `model.generate(labels)` draws the latents itself.

    Args:
        generator: A built model mapping `[latents, labels]` to samples.
        discriminator: A built model mapping `[samples, labels]` to one
            logit per sample, `(batch, 1)`.
        latent_dim: Size of the latent vector.
        num_classes: Number of classes; labels are in `[0, num_classes)`.
        **kwargs: The other arguments of `GAN` (`d_optimizer`,
            `g_optimizer`, `adversarial_loss`, `label_smoothing`, `seed`)
            and those of `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import ConditionalGAN

    def conditioned(size, outputs, activation=None):
        features = keras.Input((size,))
        labels = keras.Input((), dtype="int32")
        onehot = keras.layers.CategoryEncoding(3, output_mode="one_hot")(labels)
        hidden = keras.layers.Dense(16, activation="relu")(
            keras.layers.Concatenate()([features, onehot]))
        out = keras.layers.Dense(outputs, activation=activation)(hidden)
        return keras.Model([features, labels], out)

    cgan = ConditionalGAN(conditioned(8, 64, "sigmoid"), conditioned(64, 1),
                          latent_dim=8, num_classes=3)
    cgan.compile()
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(48, 64)).astype("float32")
    labels = rng.integers(0, 3, size=48)
    cgan.fit(images, labels, batch_size=16, epochs=1, verbose=0)
    twos = cgan.generate([2, 2, 2])  # three samples of class 2
    ```

    Reference:
        Mirza and Osindero, "Conditional Generative Adversarial Nets", 2014
        (https://arxiv.org/abs/1411.1784).
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        num_classes: int,
        **kwargs,
    ):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        self.num_classes = _positive_int(num_classes, "num_classes")

    def call(self, inputs, training=False):
        latents, labels = inputs
        return self.generator([latents, labels], training=training)

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if x is None:
            raise ValueError(f"Model '{self.name}' needs real samples: `fit(x, y)`.")
        require_labels(y, self, "it needs the class ids `y` of the samples")
        check_single_input(x, self, network_input(self.discriminator, 0), "samples")
        return x, class_ids(y, self)

    def _generate(self, latents, labels, training):
        return self.generator([latents, labels], training=training)

    def _discriminate(self, samples, labels, training):
        return self.discriminator([samples, labels], training=training)

    def generate(self, labels, seed: int | None = None, batch_size: int = 256):
        """Generates one sample per requested label.

        Args:
            labels: Integer class ids, one per sample.
            seed: Seed of the latents (NumPy); `None` draws fresh ones.
            batch_size: Batch size of the generator's forward passes.

        Returns:
            A NumPy array with one sample per label.
        """
        labels = np.asarray(labels).reshape(-1)
        if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`labels` must be a non-empty sequence of integer class ids. "
                f"Got: {labels!r}."
            )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"`labels` must be in [0, {self.num_classes}). Got values from "
                f"{labels.min()} to {labels.max()}."
            )
        latents = np.random.default_rng(seed).standard_normal(
            (len(labels), self.latent_dim)
        )
        return self.predict(
            [latents.astype("float32"), labels.astype("int32")],
            batch_size=batch_size,
            verbose=0,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}
