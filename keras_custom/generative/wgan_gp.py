"""`WGANGP`: the Wasserstein GAN with gradient penalty."""

import keras
from keras import ops

from keras_custom.core import input_gradients, replica_random
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
        critic_steps: Critic updates per generator update.
        gp_weight: Weight of the gradient penalty.
        **kwargs: `d_optimizer` (of the critic) and `g_optimizer`, which
            default to Adam with learning rate 1e-4, `beta_1=0` and
            `beta_2=0.9`, as in the paper; `seed`, of the latents and the
            interpolation weights; and the arguments of `keras.Model`.

    Example:

    A critic with layer normalization, which keeps samples apart:

    ```python
    import keras
    import numpy as np
    from keras_custom import WGANGP

    critic = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32),
        keras.layers.LayerNormalization(),
        keras.layers.LeakyReLU(0.2),
        keras.layers.Dense(1),
    ])
    wgan = WGANGP(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(64)]),
        critic,
        latent_dim=4,
        critic_steps=3,
        gp_weight=5.0,
    )
    wgan.compile()
    data = np.random.default_rng(1).normal(size=(48, 64))
    logs = wgan.fit(data.astype("float32"), batch_size=16, verbose=0).history
    sorted(logs)  # ['d_loss', 'g_loss', 'gradient_penalty']
    ```

    Reference:
        Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS
        2017 (https://arxiv.org/abs/1704.00028).
    """

    default_optimizer = WGAN_GP_ADAM

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        critic_steps: int = 5,
        gp_weight: float = 10.0,
        **kwargs,
    ):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
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

    def discriminator_loss(self, real_logits, fake_logits):
        """The critic's loss without the penalty: `mean(D(fake)) - mean(D(real))`."""
        return ops.mean(ops.cast(fake_logits, "float32")) - ops.mean(
            ops.cast(real_logits, "float32")
        )

    def discriminator_terms(self, real, fake, conditions, training):
        """The critic's loss, penalty included, and the `gradient_penalty`."""
        loss = super().discriminator_terms(real, fake, conditions, training)["loss"]
        penalty = self.gradient_penalty(real, fake, conditions, training)
        return {"loss": loss + self.gp_weight * penalty, "gradient_penalty": penalty}

    def generator_loss(self, fake_logits):
        """The generator maximizes the critic's score: `-mean(D(fake))`."""
        return -ops.mean(ops.cast(fake_logits, "float32"))

    def get_config(self) -> dict:
        config = super().get_config()
        del config["adversarial_loss"], config["label_smoothing"]
        config.update({"critic_steps": self.critic_steps, "gp_weight": self.gp_weight})
        return config
