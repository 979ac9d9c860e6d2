"""`GAN`: the non-saturating generative adversarial network."""

import functools

import keras
import numpy as np
from keras import ops

from keras_custom.core import CustomModel, as_loss, replica_random
from keras_custom.core.input_checks import check_single_input, network_input
from keras_custom.core.named_optimizers import OptimizerLike

# Radford et al. (2016), section 4: Adam, learning rate 2e-4, beta_1 0.5.
DCGAN_ADAM = {"class_name": "Adam", "config": {"learning_rate": 2e-4, "beta_1": 0.5}}


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Got: {value!r}.")
    return int(value)


@keras.saving.register_keras_serializable(package="keras_custom")
class GAN(CustomModel):
    """A generative adversarial network trained by `fit(x)` on samples alone.

    Each batch takes one discriminator step, on real samples (target 1) and
    generated samples (target 0), then one generator step on fresh latents
    with the non-saturating objective: the generator maximizes the
    discriminator's log-probability of its samples being real, i.e. it is
    trained towards target 1. The discriminator outputs one logit per sample;
    the loss is binary cross-entropy on logits unless another
    `adversarial_loss` is given (`keras.losses.MeanSquaredError()` gives the
    least-squares GAN). Latents are standard normal, drawn from the model's
    own seed, which is saved and resumed with the model.

    `model(z)` and `model.predict(z)` generate from latents `z`;
    `model.generate(n)` draws the latents itself. The model logs `d_loss`
    and `g_loss` (and `val_d_loss`, `val_g_loss` on validation samples).

    Args:
        generator: A built model mapping latents `(batch, latent_dim)` to
            samples.
        discriminator: A built model mapping samples to one logit per
            sample, `(batch, 1)`.
        latent_dim: Size of the latent vector.
        d_optimizer: Optimizer of the discriminator. Defaults to Adam with
            learning rate 2e-4 and `beta_1=0.5` (DCGAN) unless given to
            `compile(d_optimizer=...)`.
        g_optimizer: Optimizer of the generator, with the same default.
        adversarial_loss: Loss of `(targets, logits)`: a `keras.losses.Loss`,
            a Keras loss name or a function. Defaults to
            `BinaryCrossentropy(from_logits=True)`.
        label_smoothing: One-sided label smoothing: the discriminator's
            target for real samples is `1 - label_smoothing`.
        seed: Seed of the latents drawn in training.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import GAN

    generator = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(64, activation="sigmoid")])
    discriminator = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(1)])
    gan = GAN(generator, discriminator, latent_dim=8)
    gan.compile()
    images = np.random.default_rng(0).uniform(size=(64, 64)).astype("float32")
    history = gan.fit(images, batch_size=16, epochs=1, verbose=0)
    samples = gan.generate(4)  # shape (4, 64)
    ```

    Reference:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014
        (https://arxiv.org/abs/1406.2661); one-sided label smoothing from
        Salimans et al., "Improved Techniques for Training GANs", 2016
        (https://arxiv.org/abs/1606.03498).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "generator"
    #: The default of `d_optimizer` and `g_optimizer`.
    default_optimizer = DCGAN_ADAM
    #: Discriminator updates per generator update (a `WGANGP` argument).
    critic_steps = 1

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        d_optimizer: OptimizerLike = None,
        g_optimizer: OptimizerLike = None,
        adversarial_loss=None,
        label_smoothing: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, part in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(part, keras.layers.Layer):
                raise ValueError(
                    f"`{name}` must be a Keras model or layer. Got: {part!r}."
                )
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1). Got: {label_smoothing!r}."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = _positive_int(latent_dim, "latent_dim")
        self.adversarial_loss = as_loss(
            adversarial_loss, keras.losses.BinaryCrossentropy(from_logits=True)
        )
        self.label_smoothing = float(label_smoothing)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        default = self.default_optimizer
        self.add_optimizer("d_optimizer", d_optimizer, discriminator, default)
        self.add_optimizer("g_optimizer", g_optimizer, generator, default)
        self.add_tracker("d_loss")
        self.add_tracker("g_loss")
        # Built parts leave nothing to build (BackupAndRestore asks).
        self.built = generator.built and discriminator.built

    # ------------------------------------------------------------------
    # The networks, as the step calls them (a conditional GAN overrides
    # these to pass its labels along).
    # ------------------------------------------------------------------

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    def _unpack(self, data):
        """`(real samples, conditions)` of a batch; conditions are `None`."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if x is None:
            raise ValueError(f"Model '{self.name}' needs real samples: `fit(x)`.")
        check_single_input(x, self, network_input(self.discriminator), "samples")
        return x, None

    def _generate(self, latents, conditions, training):
        return self.generator(latents, training=training)

    def _discriminate(self, samples, conditions, training):
        return self.discriminator(samples, training=training)

    def sample_latents(self, batch_size):
        """Standard normal latents `(batch_size, latent_dim)` from the model's seed.

        Under a distribution strategy the latents of the global batch are
        drawn and this replica's rows returned, so training equals training
        on one device.
        """
        return replica_random.normal(
            batch_size, (self.latent_dim,), seed=self.seed_generator
        )

    # ------------------------------------------------------------------
    # The losses
    # ------------------------------------------------------------------

    def discriminator_loss(self, real_logits, fake_logits):
        """Loss of real logits against `1 - label_smoothing`, fake against 0."""
        real_targets = ops.full_like(real_logits, 1.0 - self.label_smoothing)
        fake_targets = ops.zeros_like(fake_logits)
        return self.adversarial_loss(real_targets, real_logits) + self.adversarial_loss(
            fake_targets, fake_logits
        )

    def discriminator_terms(self, real, fake, conditions, training):
        """What one discriminator step minimizes and logs.

        A dict with the loss of real and fake samples under `"loss"` (logged
        as `d_loss`) and, in a subclass, further terms to log (`WGANGP`'s
        gradient penalty).
        """
        real_logits = self._discriminate(real, conditions, training)
        fake_logits = self._discriminate(fake, conditions, training)
        return {"loss": self.discriminator_loss(real_logits, fake_logits)}

    def generator_loss(self, fake_logits):
        """The non-saturating loss: fake logits against the target 1."""
        return self.adversarial_loss(ops.ones_like(fake_logits), fake_logits)

    # ------------------------------------------------------------------
    # Steps
    # ------------------------------------------------------------------

    def train_step(self, data):
        real, conditions = self._unpack(data)
        batch_size = ops.shape(real)[0]
        d_terms = []
        for _ in range(self.critic_steps):
            fake = self._generate(self.sample_latents(batch_size), conditions, True)
            d_terms.append(
                self.minimize(
                    functools.partial(
                        self.discriminator_terms, real, fake, conditions, True
                    ),
                    optimizer="d_optimizer",
                )
            )

        latents = self.sample_latents(batch_size)
        g_loss = self.minimize(
            lambda: self.generator_loss(
                self._discriminate(
                    self._generate(latents, conditions, True), conditions, True
                )
            ),
            optimizer="g_optimizer",
        )
        # Each discriminator term, averaged over the batch's discriminator steps.
        d_logs = {
            name: ops.mean(ops.stack([terms[name] for terms in d_terms]))
            for name in d_terms[0]
        }
        return {"d_loss": d_logs.pop("loss"), "g_loss": g_loss, **d_logs}

    def test_step(self, data):
        real, conditions = self._unpack(data)
        latents = self.sample_latents(ops.shape(real)[0])
        fake = self._generate(latents, conditions, False)
        d_logs = self.discriminator_terms(real, fake, conditions, False)
        fake_logits = self._discriminate(fake, conditions, False)
        return {
            "d_loss": d_logs.pop("loss"),
            "g_loss": self.generator_loss(fake_logits),
            **d_logs,
        }

    # ------------------------------------------------------------------

    def generate(self, count: int, seed: int | None = None, batch_size: int = 256):
        """Generates `count` samples from standard normal latents.

        Args:
            count: Number of samples.
            seed: Seed of the latents (NumPy); `None` draws fresh ones.
            batch_size: Batch size of the generator's forward passes.

        Returns:
            A NumPy array of `count` samples.
        """
        count = _positive_int(count, "count")
        latents = np.random.default_rng(seed).standard_normal((count, self.latent_dim))
        return self.predict(latents.astype("float32"), batch_size=batch_size, verbose=0)

    def compile(self, *args, **kwargs) -> None:
        if kwargs.get("loss") is not None or (len(args) > 1 and args[1] is not None):
            raise ValueError(
                f"`{type(self).__name__}.compile()` takes no `loss`: give "
                "`adversarial_loss=` to the constructor."
            )
        super().compile(*args, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(
                    self.discriminator
                ),
                "latent_dim": self.latent_dim,
                "adversarial_loss": keras.saving.serialize_keras_object(
                    self.adversarial_loss
                ),
                "label_smoothing": self.label_smoothing,
                "seed": self.seed,
            }
        )
        return config
