"""`WGANGP`: the Wasserstein GAN with gradient penalty."""

import functools

import keras
from keras import ops

from keras_custom.core import input_gradients, replica_random, tensorflow_backend
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.generative.gan import GAN, _positive_int

# Gulrajani et al. (2017), algorithm 1: Adam, 1e-4, beta_1 0, beta_2 0.9.
WGAN_GP_ADAM = {
    "class_name": "Adam",
    "config": {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.9},
}


@keras.saving.register_keras_serializable(package="keras_custom")
class WGANGP(GAN):
    """A Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty.

    Each batch takes `critic_steps` critic updates, each on fresh latents and
    the batch's real samples, then one generator update. The critic (the
    `discriminator` argument, outputting one unbounded score per sample)
    minimizes `mean(D(fake)) - mean(D(real)) + gp_weight * penalty`, where
    the penalty is `mean((||grad D(x_hat)||_2 - 1)^2)` on random
    interpolates `x_hat` between real and generated samples; the generator
    minimizes `-mean(D(fake))`. Logs `d_loss` and `gradient_penalty` (means
    over the batch's critic steps) and `g_loss`.

    The penalty is taken per sample, so the critic must not mix samples of a
    batch: no `BatchNormalization` (layer normalization is fine), as in the
    paper.

    Args:
        generator: A built model mapping latents `(batch, latent_dim)` to
            samples.
        discriminator: The critic, a built model mapping samples to one
            score per sample, `(batch, 1)`.
        latent_dim: Size of the latent vector.
        d_optimizer: Optimizer of the critic. Defaults to Adam with learning
            rate 1e-4, `beta_1=0` and `beta_2=0.9`, as in the paper.
        g_optimizer: Optimizer of the generator, with the same default.
        critic_steps: Critic updates per generator update.
        gp_weight: Weight of the gradient penalty.
        seed: Seed of the latents and interpolation weights.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import WGANGP

    generator = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(64, activation="sigmoid")])
    critic = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(1)])
    wgan = WGANGP(generator, critic, latent_dim=8, critic_steps=3)
    wgan.compile()
    images = np.random.default_rng(0).uniform(size=(64, 64)).astype("float32")
    history = wgan.fit(images, batch_size=16, epochs=1, verbose=0)
    sorted(history.history)  # ['d_loss', 'g_loss', 'gradient_penalty']
    ```

    Reference:
        Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS
        2017 (https://arxiv.org/abs/1704.00028).
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        d_optimizer: OptimizerLike = None,
        g_optimizer: OptimizerLike = None,
        critic_steps: int = 5,
        gp_weight: float = 10.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        self.add_optimizer("d_optimizer", d_optimizer, discriminator, WGAN_GP_ADAM)
        self.add_optimizer("g_optimizer", g_optimizer, generator, WGAN_GP_ADAM)
        self.critic_steps = _positive_int(critic_steps, "critic_steps")
        if float(gp_weight) < 0:
            raise ValueError(f"`gp_weight` must be >= 0. Got: {gp_weight!r}.")
        self.gp_weight = float(gp_weight)
        self.add_tracker("gradient_penalty")

    def gradient_penalty(self, real, fake, conditions, training=True):
        """`mean((||grad D(x_hat)|| - 1)^2)` on random interpolates `x_hat`."""
        fake = ops.cast(fake, real.dtype)
        weight_shape = (1,) * (len(real.shape) - 1)
        alpha = replica_random.uniform(
            ops.shape(real)[0], weight_shape, self.seed_generator, dtype=real.dtype
        )
        interpolates = real + alpha * (fake - real)
        _, gradients = input_gradients(
            lambda x: self._discriminate(x, conditions, training), interpolates
        )
        gradients = ops.cast(gradients, "float32")
        axes = tuple(range(1, len(gradients.shape)))
        norms = ops.sqrt(ops.sum(ops.square(gradients), axis=axes) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def critic_loss(self, real, fake, conditions):
        """Returns `(loss, gradient_penalty)`; the loss includes the penalty."""
        real_scores = ops.cast(self._discriminate(real, conditions, True), "float32")
        fake_scores = ops.cast(self._discriminate(fake, conditions, True), "float32")
        penalty = self.gradient_penalty(real, fake, conditions)
        loss = ops.mean(fake_scores) - ops.mean(real_scores) + self.gp_weight * penalty
        return tensorflow_backend.scale_for_replicas(loss), penalty

    def generator_loss(self, fake_logits):
        """The generator maximizes the critic's score: `-mean(D(fake))`."""
        return tensorflow_backend.scale_for_replicas(
            -ops.mean(ops.cast(fake_logits, "float32"))
        )

    def discriminator_loss(self, real_logits, fake_logits):
        """The critic's loss without the penalty (used by `test_step`)."""
        return tensorflow_backend.scale_for_replicas(
            ops.mean(ops.cast(fake_logits, "float32"))
            - ops.mean(ops.cast(real_logits, "float32"))
        )

    def train_step(self, data):
        real, conditions = self._unpack(data)
        batch_size = ops.shape(real)[0]
        d_losses, penalties = [], []
        for _ in range(self.critic_steps):
            fake = self._generate(self.sample_latents(batch_size), conditions, True)
            d_loss, penalty = self.minimize(
                functools.partial(self.critic_loss, real, fake, conditions),
                optimizer="d_optimizer",
            )
            d_losses.append(d_loss)
            penalties.append(penalty)

        latents = self.sample_latents(batch_size)
        g_loss = self.minimize(
            lambda: self.generator_loss(
                self._discriminate(
                    self._generate(latents, conditions, True), conditions, True
                )
            ),
            optimizer="g_optimizer",
        )
        return {
            "d_loss": ops.mean(ops.stack(d_losses)),
            "g_loss": g_loss,
            "gradient_penalty": ops.mean(ops.stack(penalties)),
        }

    def test_step(self, data):
        real, conditions = self._unpack(data)
        fake = self._generate(
            self.sample_latents(ops.shape(real)[0]), conditions, False
        )
        real_scores = self._discriminate(real, conditions, False)
        fake_scores = self._discriminate(fake, conditions, False)
        penalty = self.gradient_penalty(real, fake, conditions, training=False)
        d_loss = tensorflow_backend.unscale_for_replicas(
            self.discriminator_loss(real_scores, fake_scores)
        )
        return {
            "d_loss": d_loss + self.gp_weight * penalty,
            "g_loss": tensorflow_backend.unscale_for_replicas(
                self.generator_loss(fake_scores)
            ),
            "gradient_penalty": penalty,
        }

    def get_config(self) -> dict:
        config = super().get_config()
        del config["adversarial_loss"], config["label_smoothing"]
        config.update({"critic_steps": self.critic_steps, "gp_weight": self.gp_weight})
        return config
