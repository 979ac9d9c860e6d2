"""Training recipes of the generative models on the 8x8 digits.

The demos, the generative quality tests, the benchmarks and the notebooks
share these recipes, so that they all train exactly the same models the same
way. The digits are flat vectors of 64 pixels in [0, 1] (`load_digits()`);
the networks are the small multilayer perceptrons of
`keras_custom.recipes.generative_networks`, and the judge that scores the
generated digits is in `keras_custom.recipes.generative_scores`.

The `train_*` functions are the recipes: they seed Keras, build the networks,
compile and fit on the training digits, and return the trained model.

Example:

```python
from keras_custom.recipes import generative, generative_scores

classifier, features = generative_scores.train_judge(seed=0)
gan = generative.train_gan(seed=0)
(x_train, _), _ = generative.load_digits()
scores = generative_scores.judge_scores(
    classifier, features, gan.generate(1000, seed=1), real=x_train
)
scores["mean_max_probability"], scores["class_entropy"]
```
"""

import keras
import numpy as np

from keras_custom.generative import GAN, VAE, WGANGP, ConditionalGAN
from keras_custom.recipes import data
from keras_custom.recipes.cache import cached_training
from keras_custom.recipes.data import NUM_CLASSES, NUM_PIXELS
from keras_custom.recipes.generative_networks import (
    GAN_LATENT_DIM,
    build_conditional_discriminator,
    build_conditional_generator,
    build_critic,
    build_decoder,
    build_discriminator,
    build_encoder,
    build_generator,
)

#: Recipe of `train_gan`.
GAN_EPOCHS = 100
GAN_BATCH_SIZE = 64
GAN_LEARNING_RATE = 1e-3

#: Recipe of `train_wgan_gp`.
WGAN_GP_EPOCHS = 80
WGAN_GP_BATCH_SIZE = 64
WGAN_GP_LEARNING_RATE = 1e-3
WGAN_GP_CRITIC_STEPS = 3

#: Recipe of `train_conditional_gan`.
CONDITIONAL_GAN_EPOCHS = 50
CONDITIONAL_GAN_BATCH_SIZE = 64
CONDITIONAL_GAN_LEARNING_RATE = 1e-3

#: Recipe of `train_vae`.
VAE_EPOCHS = 100
VAE_BATCH_SIZE = 64
VAE_LEARNING_RATE = 1e-3


def load_digits() -> tuple[
    tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]:
    """Loads the digits as flat vectors, the input of the generative networks.

    `keras_custom.recipes.data.load_digits((NUM_PIXELS,))`.

    Returns:
        Tuple `(x_train, y_train), (x_test, y_test)`: float32 images of shape
        `(count, 64)` (the 8x8 pixels, row by row, in [0, 1]) and int32 class
        ids of shape `(count,)`; 1,437 training and 360 test digits.
    """
    return data.load_digits((NUM_PIXELS,))


def _adam_pair(learning_rate: float, beta_1: float, beta_2: float = 0.999) -> dict:
    """`d_optimizer` and `g_optimizer` of a GAN: two Adam optimizers."""
    return {
        f"{part}_optimizer": keras.optimizers.Adam(learning_rate, beta_1, beta_2)
        for part in ("d", "g")
    }


def _train(build, seed, batch_size, epochs, default_epochs, verbose, labels=False):
    """Seeds Keras, then compiles `build(seed)` and fits it on the digits."""
    keras.utils.set_random_seed(seed)
    model = build(seed)
    (x_train, y_train), _ = load_digits()
    model.compile()
    model.fit(
        x_train,
        y_train if labels else None,
        batch_size=batch_size,
        epochs=default_epochs if epochs is None else epochs,
        verbose=verbose,
    )
    return model


def build_gan(seed: int = 0, synchronized: bool = False) -> GAN:
    """Builds the `GAN` of `train_gan`, not compiled.

    `build_generator()` and `build_discriminator()`, latents of size
    `GAN_LATENT_DIM`, both optimizers Adam with learning rate
    `GAN_LEARNING_RATE` and `beta_1=0.5`.

    Args:
        seed: Seed of the model's latents (seed Keras first, for the
            initialization).
        synchronized: Whether the generator's batch normalization
            synchronizes its statistics across replicas (under a
            distribution strategy).

    Returns:
        The `GAN`, named `"gan"`; call `compile()` before `fit()`.
    """
    return GAN(
        build_generator(synchronized=synchronized),
        build_discriminator(),
        latent_dim=GAN_LATENT_DIM,
        **_adam_pair(GAN_LEARNING_RATE, beta_1=0.5),
        seed=seed,
        name="gan",
    )


def build_wgan_gp(seed: int = 0) -> WGANGP:
    """Builds the `WGANGP` of `train_wgan_gp`, not compiled.

    `build_generator()` and `build_critic()`, latents of size
    `GAN_LATENT_DIM`, `WGAN_GP_CRITIC_STEPS` critic steps per generator
    step, gradient penalty weight 10, both optimizers Adam with learning
    rate `WGAN_GP_LEARNING_RATE`, `beta_1=0` and `beta_2=0.9`.

    Args:
        seed: Seed of the model's latents and interpolation weights.

    Returns:
        The `WGANGP`, named `"wgan_gp"`.
    """
    return WGANGP(
        build_generator(),
        build_critic(),
        latent_dim=GAN_LATENT_DIM,
        **_adam_pair(WGAN_GP_LEARNING_RATE, beta_1=0.0, beta_2=0.9),
        critic_steps=WGAN_GP_CRITIC_STEPS,
        gp_weight=10.0,
        seed=seed,
        name="wgan_gp",
    )


def build_conditional_gan(seed: int = 0) -> ConditionalGAN:
    """Builds the `ConditionalGAN` of `train_conditional_gan`, not compiled.

    `build_conditional_generator()` and `build_conditional_discriminator()`,
    latents of size `GAN_LATENT_DIM`, both optimizers Adam with learning rate
    `CONDITIONAL_GAN_LEARNING_RATE` and `beta_1=0.5`.

    Args:
        seed: Seed of the latents the model draws for each class.

    Returns:
        The `ConditionalGAN` of the 10 digit classes, named
        `"conditional_gan"`.
    """
    return ConditionalGAN(
        build_conditional_generator(),
        build_conditional_discriminator(),
        latent_dim=GAN_LATENT_DIM,
        num_classes=NUM_CLASSES,
        **_adam_pair(CONDITIONAL_GAN_LEARNING_RATE, beta_1=0.5),
        seed=seed,
        name="conditional_gan",
    )


def build_vae(seed: int = 0) -> VAE:
    """Builds the `VAE` of `train_vae`, not compiled.

    `build_encoder()` and `build_decoder()`, latents of size
    `VAE_LATENT_DIM`, the default loss (binary cross-entropy summed over
    the pixels plus the KL divergence, weight 1), Adam with learning rate
    `VAE_LEARNING_RATE`.

    Args:
        seed: Seed of the reparameterization noise.

    Returns:
        The `VAE`, named `"vae"`; `compile()` takes no loss.
    """
    return VAE(
        build_encoder(),
        build_decoder(),
        optimizer=keras.optimizers.Adam(VAE_LEARNING_RATE),
        kl_weight=1.0,
        seed=seed,
        name="vae",
    )


@cached_training
def train_gan(seed: int = 0, epochs: int | None = None, verbose: int = 0) -> GAN:
    """Trains a `GAN` on the training digits.

    `build_gan(seed)`, batches of `GAN_BATCH_SIZE`, `GAN_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            latents.
        epochs: Number of epochs; `None` means `GAN_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `GAN`; `model.history` holds its `fit()` history.
    """
    return _train(build_gan, seed, GAN_BATCH_SIZE, epochs, GAN_EPOCHS, verbose)


@cached_training
def train_wgan_gp(seed: int = 0, epochs: int | None = None, verbose: int = 0) -> WGANGP:
    """Trains a `WGANGP` on the training digits.

    `build_wgan_gp(seed)`, batches of `WGAN_GP_BATCH_SIZE`, `WGAN_GP_EPOCHS`
    epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            latents and interpolation weights.
        epochs: Number of epochs; `None` means `WGAN_GP_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `WGANGP`; `model.history` holds its `fit()` history.
    """
    batch_size = WGAN_GP_BATCH_SIZE
    return _train(build_wgan_gp, seed, batch_size, epochs, WGAN_GP_EPOCHS, verbose)


@cached_training
def train_conditional_gan(
    seed: int = 0, epochs: int | None = None, verbose: int = 0
) -> ConditionalGAN:
    """Trains a `ConditionalGAN` on the training digits and their labels.

    `build_conditional_gan(seed)`, batches of `CONDITIONAL_GAN_BATCH_SIZE`,
    `CONDITIONAL_GAN_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the latents the
            model draws for each class.
        epochs: Number of epochs; `None` means `CONDITIONAL_GAN_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `ConditionalGAN`; `model.history` holds its `fit()`
        history.
    """
    batch_size, default_epochs = CONDITIONAL_GAN_BATCH_SIZE, CONDITIONAL_GAN_EPOCHS
    return _train(
        build_conditional_gan, seed, batch_size, epochs, default_epochs, verbose, True
    )


@cached_training
def train_vae(seed: int = 0, epochs: int | None = None, verbose: int = 0) -> VAE:
    """Trains a `VAE` on the training digits.

    `build_vae(seed)`, batches of `VAE_BATCH_SIZE`, `VAE_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            reparameterization noise.
        epochs: Number of epochs; `None` means `VAE_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `VAE`; `model.history` holds its `fit()` history.
    """
    return _train(build_vae, seed, VAE_BATCH_SIZE, epochs, VAE_EPOCHS, verbose)
