"""The networks of the generative recipes: small multilayer perceptrons.

The digits are flat vectors of 64 pixels in [0, 1]
(`keras_custom.recipes.generative.load_digits()`), and every network is a
small multilayer perceptron, which trains in seconds on a CPU:

- `build_generator`, `build_discriminator`: a `keras_custom.GAN`;
- `build_generator`, `build_critic`: a `keras_custom.WGANGP`;
- `build_conditional_generator`, `build_conditional_discriminator`: a
  `keras_custom.ConditionalGAN`;
- `build_encoder`, `build_decoder`: a `keras_custom.VAE`.

The recipes that train them are in `keras_custom.recipes.generative`.

Example:

```python
from keras_custom.recipes import generative_networks

generator = generative_networks.build_generator()
generator.output_shape  # (None, 64)
```
"""

import keras

from keras_custom.layers import GlobalBatchNormalization
from keras_custom.recipes.data import NUM_CLASSES, NUM_PIXELS

#: Size of the latent vector of the GANs.
GAN_LATENT_DIM = 32
#: Size of the latent vector of the VAE.
VAE_LATENT_DIM = 8


def _labels_input() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """An int32 class-id input `(batch,)` and its one-hot encoding."""
    labels = keras.Input((), dtype="int32", name="labels")
    onehot = keras.layers.CategoryEncoding(
        NUM_CLASSES, output_mode="one_hot", name="onehot"
    )(labels)
    return labels, onehot


def _generator_body(x, units: int, synchronized: bool = False) -> keras.KerasTensor:
    """Two dense blocks (batch norm, leaky ReLU) and sigmoid pixels."""
    for index in (1, 2):
        x = keras.layers.Dense(units, name=f"dense_{index}")(x)
        normalization = (
            GlobalBatchNormalization
            if synchronized
            else keras.layers.BatchNormalization
        )
        x = normalization(name=f"batch_norm_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
    return _pixels(x)


def _scorer_body(x, units: int) -> keras.KerasTensor:
    """Two dense leaky-ReLU layers and one unbounded score (logit)."""
    for index in (1, 2):
        x = keras.layers.Dense(units, name=f"dense_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
    return keras.layers.Dense(1, name="score")(x)


def _relu_stack(x, units: tuple[int, ...]) -> keras.KerasTensor:
    """Dense ReLU layers of `units`, named `dense_1`, `dense_2`, ..."""
    for index, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(x)
    return x


def _pixels(x) -> keras.KerasTensor:
    """The 64 sigmoid pixels of a generated digit."""
    return keras.layers.Dense(NUM_PIXELS, activation="sigmoid", name="pixels")(x)


def build_generator(
    latent_dim: int = GAN_LATENT_DIM,
    units: int = 128,
    name: str = "generator",
    synchronized: bool = False,
) -> keras.Model:
    """Builds the generator of `GAN` and `WGANGP`.

    Latents `(batch, latent_dim)` go through two dense layers of `units`
    (each with batch normalization and a leaky ReLU) to 64 sigmoid pixels.

    Args:
        latent_dim: Size of the latent vector.
        units: Width of the hidden layers.
        name: Name of the model.
        synchronized: Whether batch normalization synchronizes its batch
            statistics across replicas (for distributed training, where
            each replica would otherwise keep its own moving statistics).

    Returns:
        A functional `keras.Model` mapping `(batch, latent_dim)` latents to
        `(batch, 64)` images in [0, 1].
    """
    latents = keras.Input((latent_dim,), name="latents")
    return keras.Model(
        latents, _generator_body(latents, units, synchronized), name=name
    )


def build_discriminator(units: int = 128, name: str = "discriminator") -> keras.Model:
    """Builds the discriminator of `GAN`.

    Images `(batch, 64)` go through two dense leaky-ReLU layers of `units`
    to one logit per image (real: positive).

    Args:
        units: Width of the hidden layers.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `(batch, 64)` images to
        `(batch, 1)` logits.
    """
    images = keras.Input((NUM_PIXELS,), name="images")
    return keras.Model(images, _scorer_body(images, units), name=name)


def build_critic(units: int = 128, name: str = "critic") -> keras.Model:
    """Builds the critic of `WGANGP`.

    The same architecture as `build_discriminator`, with no batch
    normalization, as the gradient penalty requires; its output is an
    unbounded score rather than a logit.

    Args:
        units: Width of the hidden layers.
        name: Name of the model.

    Returns:
        `build_discriminator(units, name)`, whose `(batch, 1)` outputs are
        read as scores.
    """
    return build_discriminator(units=units, name=name)


def build_conditional_generator(
    latent_dim: int = GAN_LATENT_DIM,
    units: int = 128,
    name: str = "conditional_generator",
) -> keras.Model:
    """Builds the generator of `ConditionalGAN`.

    The latents are concatenated with the one-hot class, then go through
    the layers of `build_generator`.

    Args:
        latent_dim: Size of the latent vector.
        units: Width of the hidden layers.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `[latents, labels]`, latents
        `(batch, latent_dim)` and int32 class ids `(batch,)`, to `(batch, 64)`
        images in [0, 1].
    """
    latents = keras.Input((latent_dim,), name="latents")
    labels, onehot = _labels_input()
    x = keras.layers.Concatenate(name="concatenate")([latents, onehot])
    return keras.Model([latents, labels], _generator_body(x, units), name=name)


def build_conditional_discriminator(
    units: int = 128, name: str = "conditional_discriminator"
) -> keras.Model:
    """Builds the discriminator of `ConditionalGAN`.

    The image is concatenated with the one-hot class, then goes through the
    layers of `build_discriminator`.

    Args:
        units: Width of the hidden layers.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `[images, labels]`, images
        `(batch, 64)` and int32 class ids `(batch,)`, to `(batch, 1)` logits.
    """
    images = keras.Input((NUM_PIXELS,), name="images")
    labels, onehot = _labels_input()
    x = keras.layers.Concatenate(name="concatenate")([images, onehot])
    return keras.Model([images, labels], _scorer_body(x, units), name=name)


def build_encoder(
    latent_dim: int = VAE_LATENT_DIM,
    units: tuple[int, ...] = (256, 128),
    name: str = "encoder",
) -> keras.Model:
    """Builds the encoder of `VAE`.

    Images go through dense ReLU layers of `units` to two linear heads, the
    mean and the log-variance of the Gaussian posterior.

    Args:
        latent_dim: Size of the latent vector.
        units: Widths of the hidden layers, from the image side.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `(batch, 64)` images to
        `[z_mean, z_log_var]`, each `(batch, latent_dim)`.
    """
    images = keras.Input((NUM_PIXELS,), name="images")
    x = _relu_stack(images, units)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var], name=name)


def build_decoder(
    latent_dim: int = VAE_LATENT_DIM,
    units: tuple[int, ...] = (128, 256),
    name: str = "decoder",
) -> keras.Model:
    """Builds the decoder of `VAE`.

    Latents go through dense ReLU layers of `units` to 64 sigmoid pixels,
    suited to the VAE's default binary cross-entropy.

    Args:
        latent_dim: Size of the latent vector.
        units: Widths of the hidden layers, from the latent side.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `(batch, latent_dim)` latents to
        `(batch, 64)` images in [0, 1].
    """
    latents = keras.Input((latent_dim,), name="latents")
    return keras.Model(latents, _pixels(_relu_stack(latents, units)), name=name)
