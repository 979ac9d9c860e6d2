"""`VAE`: the variational autoencoder."""

import keras
import numpy as np
from keras import ops

from keras_custom.core import (
    CustomModel,
    as_loss,
    replica_random,
    serialize_scalar,
    validate_scalar,
)
from keras_custom.core.input_checks import check_single_input, network_input
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.generative.gan import _positive_int


def kl_divergence(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per sample, summed over latents."""
    terms = 1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
    return -0.5 * ops.sum(terms, axis=tuple(range(1, len(z_mean.shape))))


def _latent_dim_of(encoder, decoder) -> int | None:
    for outputs in (
        getattr(encoder, "outputs", None),
        getattr(decoder, "inputs", None),
    ):
        if outputs:
            dim = outputs[0].shape[-1]
            if dim is not None:
                return int(dim)
    return None


@keras.saving.register_keras_serializable(package="keras_custom")
class VAE(CustomModel):
    """A variational autoencoder trained by `fit(x)`.

    The encoder maps samples to `(z_mean, z_log_var)`, the parameters of a
    diagonal Gaussian posterior; the model samples
    `z = z_mean + exp(z_log_var / 2) * eps` (reparameterization, `eps` from
    the model's own seed) and the decoder reconstructs the sample from `z`.
    The loss is the negative evidence lower bound: the reconstruction loss,
    summed over each sample's elements, plus `kl_weight` times the KL
    divergence to the standard normal prior, both averaged over the batch.
    `kl_weight` may be a schedule (a KL warm-up), evaluated at the
    optimizer's iterations so it resumes with the model.

    Logs `loss`, `reconstruction_loss` and `kl_loss` (unweighted), and their
    `val_` twins on validation data (with sampled `z`, an estimate of the
    same bound). `model(x)` and `predict(x)` reconstruct from `z_mean`;
    `encode`, `decode` and `generate` give the parts. Labels given to `fit`
    are ignored; `sample_weight` weights each sample's loss (Keras drops a
    `sample_weight` given without `y`, so pass `fit(x, x, sample_weight=w)`
    or a dataset of `(x, None, w)`).

    Args:
        encoder: A built model mapping samples to `[z_mean, z_log_var]`.
        decoder: A built model mapping latents to reconstructions.
        optimizer: Optimizer of both networks. Defaults to Adam unless given
            to `compile(optimizer=...)`.
        reconstruction_loss: Element-wise loss of `(x, reconstruction)`: a
            `keras.losses.Loss`, a Keras loss name or a function. Defaults to
            binary cross-entropy on decoder outputs in `[0, 1]`;
            `"mean_squared_error"` suits other data.
        kl_weight: Weight of the KL term, a float or a
            `keras.optimizers.schedules.LearningRateSchedule`.
        seed: Seed of the reparameterization noise.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import VAE

    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    encoder = keras.Model(
        inputs, [keras.layers.Dense(2)(hidden), keras.layers.Dense(2)(hidden)])
    decoder = keras.Sequential([keras.Input((2,)),
                                keras.layers.Dense(32, activation="relu"),
                                keras.layers.Dense(64, activation="sigmoid")])
    warm_up = keras.optimizers.schedules.PolynomialDecay(0.0, 100, 1.0)
    vae = VAE(encoder, decoder, kl_weight=warm_up)
    vae.compile()
    images = np.random.default_rng(0).uniform(size=(64, 64)).astype("float32")
    vae.fit(images, batch_size=16, epochs=1, verbose=0)
    samples = vae.generate(4)  # shape (4, 64)
    ```

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014
        (https://arxiv.org/abs/1312.6114); KL warm-up from Bowman et al.,
        "Generating Sentences from a Continuous Space", 2016
        (https://arxiv.org/abs/1511.06349).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "encoder"
    #: `compute_loss` encodes, samples and decodes itself.
    predicts_before_loss = False

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        optimizer: OptimizerLike = None,
        reconstruction_loss=None,
        kl_weight: Scalar = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, **kwargs)
        for name, part in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(part, keras.layers.Layer):
                raise ValueError(
                    f"`{name}` must be a Keras model or layer. Got: {part!r}."
                )
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_loss = as_loss(
            reconstruction_loss, keras.losses.BinaryCrossentropy()
        )
        self.kl_weight = validate_scalar(kl_weight, "kl_weight")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.latent_dim = _latent_dim_of(encoder, decoder)
        # One optimizer for both networks; Adam rather than Keras's RMSprop.
        self.add_optimizer("optimizer", None, None, default="adam")
        for name in ("loss", "reconstruction_loss", "kl_loss"):
            self.add_tracker(name)
        self.built = encoder.built and decoder.built

    def _posterior(self, x, training):
        outputs = self.encoder(x, training=training)
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            raise ValueError(
                f"The encoder of VAE '{self.name}' must return two tensors, "
                f"`[z_mean, z_log_var]`. Got: {outputs!r}."
            )
        z_mean, z_log_var = outputs
        return ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")

    def call(self, x, training=False):
        z_mean, _ = self._posterior(x, training)
        return self.decoder(z_mean, training=training)

    def _reconstruction_per_sample(self, x, reconstruction):
        x = ops.cast(x, "float32")
        reconstruction = ops.cast(reconstruction, "float32")
        if tuple(x.shape[1:]) != tuple(reconstruction.shape[1:]):
            raise ValueError(
                f"The decoder of VAE '{self.name}' returns shape "
                f"{reconstruction.shape[1:]} per sample, but the samples have "
                f"shape {x.shape[1:]}."
            )
        # A trailing axis of 1 makes Keras's last-axis mean element-wise.
        elementwise = self.reconstruction_loss.call(
            ops.expand_dims(x, -1), ops.expand_dims(reconstruction, -1)
        )
        return ops.sum(elementwise, axis=tuple(range(1, len(x.shape))))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The negative ELBO of `x` under `"loss"`, and its two terms.

        Both terms are means over the batch, weighted by `sample_weight`;
        `y` and `y_pred` are unused (the model samples its own `z`).
        """
        if x is None:
            raise ValueError(f"VAE '{self.name}' needs samples: `fit(x)`.")
        check_single_input(x, self, network_input(self.encoder), "samples")
        z_mean, z_log_var = self._posterior(x, training)
        noise = replica_random.normal(
            ops.shape(z_mean)[0], tuple(z_mean.shape[1:]), self.seed_generator
        )
        z = z_mean + ops.exp(0.5 * z_log_var) * noise
        reconstruction = self.decoder(z, training=training)
        reconstruction_loss = self._reconstruction_per_sample(x, reconstruction)
        kl_loss = kl_divergence(z_mean, z_log_var)
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            reconstruction_loss = reconstruction_loss * weight
            kl_loss = kl_loss * weight
        reconstruction_loss = ops.mean(reconstruction_loss)
        kl_loss = ops.mean(kl_loss)
        kl_weight = self.scalar(self.kl_weight, "optimizer")
        return {
            "loss": reconstruction_loss + kl_weight * kl_loss,
            "reconstruction_loss": reconstruction_loss,
            "kl_loss": kl_loss,
        }

    # ------------------------------------------------------------------

    def encode(self, x, batch_size: int = 256):
        """Returns the posterior `(z_mean, z_log_var)` of `x` as NumPy arrays."""
        z_mean, z_log_var = self.encoder.predict(x, batch_size=batch_size, verbose=0)
        return z_mean, z_log_var

    def decode(self, z, batch_size: int = 256):
        """Returns the decoder's output for latents `z` as a NumPy array."""
        return self.decoder.predict(z, batch_size=batch_size, verbose=0)

    def generate(self, count: int, seed: int | None = None, batch_size: int = 256):
        """Decodes `count` latents drawn from the standard normal prior."""
        count = _positive_int(count, "count")
        if self.latent_dim is None:
            raise ValueError(
                f"VAE '{self.name}' cannot tell its latent size: build the "
                "encoder or decoder functionally (from `keras.Input`), or call "
                "`decode()` with latents of your own."
            )
        z = np.random.default_rng(seed).standard_normal((count, self.latent_dim))
        return self.decode(z.astype("float32"), batch_size=batch_size)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "reconstruction_loss": keras.saving.serialize_keras_object(
                    self.reconstruction_loss
                ),
                "kl_weight": serialize_scalar(self.kl_weight),
                "seed": self.seed,
            }
        )
        return config
