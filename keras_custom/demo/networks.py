"""Small networks, training recipes and judge scores for the 8x8 digits.

The demos, the generative quality tests and the notebooks share this module,
so that they all train exactly the same models the same way. The digits are
flattened to vectors of 64 pixels in [0, 1] (`load_digits()`), and every
network is a small multilayer perceptron, which trains in seconds on a CPU:

- `build_generator`, `build_discriminator`: a `keras_custom.GAN`;
- `build_generator`, `build_critic`: a `keras_custom.WGANGP`;
- `build_conditional_generator`, `build_conditional_discriminator`: a
  `keras_custom.ConditionalGAN`;
- `build_encoder`, `build_decoder`: a `keras_custom.VAE`;
- `build_judge`: a digits classifier and its feature layer, which judge the
  generated digits (`judge_scores`); `reconstruction_errors` measures a
  VAE's reconstructions.

The `train_*` functions are the recipes: they seed Keras, build the networks,
compile and fit on the training digits, and return the trained model.

Example:

```python
from keras_custom.demo import networks

classifier, features = networks.train_judge(seed=0)
gan = networks.train_gan(seed=0)
(x_train, _), _ = networks.load_digits()
scores = networks.judge_scores(
    classifier, features, gan.generate(1000, seed=1), real=x_train
)
scores["mean_max_probability"], scores["class_entropy"]
```
"""

import math

import keras
import numpy as np

from keras_custom.datasets import digits
from keras_custom.generative import GAN, VAE, WGANGP, ConditionalGAN
from keras_custom.metrics import FrechetDistance

#: Pixels of a flattened 8x8 digit.
NUM_PIXELS = 64
#: Number of digit classes.
NUM_CLASSES = 10
#: Size of the latent vector of the GANs.
GAN_LATENT_DIM = 32
#: Size of the latent vector of the VAE.
VAE_LATENT_DIM = 8

#: Recipe of the judge classifier.
JUDGE_EPOCHS = 40
JUDGE_BATCH_SIZE = 32
JUDGE_LEARNING_RATE = 1e-3

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
    """Loads the digits as flat float32 images in [0, 1] and int32 labels.

    Returns:
        Tuple `(x_train, y_train), (x_test, y_test)`: images of shape
        `(count, 64)` (the 8x8 pixels, row by row, divided by 16) and class
        ids of shape `(count,)`; 1,437 training and 360 test digits.
    """
    (x_train, y_train), (x_test, y_test) = digits.load_data()

    def prepare(x):
        return (x.astype("float32") / 16.0).reshape(len(x), NUM_PIXELS)

    return (
        (prepare(x_train), y_train.astype("int32")),
        (prepare(x_test), y_test.astype("int32")),
    )


# ----------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------


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
        x = keras.layers.BatchNormalization(
            synchronized=synchronized, name=f"batch_norm_{index}"
        )(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
    return keras.layers.Dense(NUM_PIXELS, activation="sigmoid", name="pixels")(x)


def _scorer_body(x, units: int) -> keras.KerasTensor:
    """Two dense leaky-ReLU layers and one unbounded score (logit)."""
    for index in (1, 2):
        x = keras.layers.Dense(units, name=f"dense_{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(x)
    return keras.layers.Dense(1, name="score")(x)


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
        A functional `keras.Model` mapping `(batch, 64)` images to
        `(batch, 1)` scores.
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
    x = images
    for index, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(x)
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
    x = latents
    for index, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(x)
    pixels = keras.layers.Dense(NUM_PIXELS, activation="sigmoid", name="pixels")(x)
    return keras.Model(latents, pixels, name=name)


def build_judge(
    units: int = 128, name: str = "judge"
) -> tuple[keras.Model, keras.Model]:
    """Builds the judge: a digits classifier and its feature layer.

    Images `(batch, 64)` go through one dense ReLU layer of `units`, the
    features, to 10 softmax class probabilities. The classifier is compiled
    (Adam, sparse categorical cross-entropy, accuracy); the feature model
    shares its layers, so it is trained along with it.

    Args:
        units: Number of features (width of the hidden layer).
        name: Name of the classifier; the feature model is `name + "_features"`.

    Returns:
        Tuple `(classifier, feature_model)`: `classifier` maps images to
        `(batch, 10)` probabilities, `feature_model` maps images to
        `(batch, units)` features, the space of `judge_scores`'s Fréchet
        distance.
    """
    images = keras.Input((NUM_PIXELS,), name="images")
    features = keras.layers.Dense(units, activation="relu", name="features")(images)
    probabilities = keras.layers.Dense(
        NUM_CLASSES, activation="softmax", name="probabilities"
    )(features)
    classifier = keras.Model(images, probabilities, name=name)
    classifier.compile(
        optimizer=keras.optimizers.Adam(JUDGE_LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    feature_model = keras.Model(images, features, name=f"{name}_features")
    return classifier, feature_model


# ----------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------


def train_judge(
    seed: int = 0, epochs: int | None = None, verbose: int = 0
) -> tuple[keras.Model, keras.Model]:
    """Trains the judge classifier on the training digits.

    Seeds Keras with `seed` (`keras.utils.set_random_seed`), then fits
    `build_judge()` (Adam, learning rate `JUDGE_LEARNING_RATE`) for
    `JUDGE_EPOCHS` epochs of batch `JUDGE_BATCH_SIZE`. It reaches 0.97 to
    0.98 accuracy on the test digits.

    Args:
        seed: Random seed of the initialization and the shuffling.
        epochs: Number of training epochs; `None` means `JUDGE_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        Tuple `(classifier, feature_model)`, as `build_judge`.
    """
    keras.utils.set_random_seed(seed)
    (x_train, y_train), _ = load_digits()
    classifier, feature_model = build_judge()
    classifier.fit(
        x_train,
        y_train,
        batch_size=JUDGE_BATCH_SIZE,
        epochs=JUDGE_EPOCHS if epochs is None else epochs,
        verbose=verbose,
    )
    return classifier, feature_model


def judge_accuracy(classifier: keras.Model) -> float:
    """Accuracy of a digits classifier on the test digits.

    Args:
        classifier: A model mapping `(batch, 64)` images to class scores.

    Returns:
        The fraction of the 360 test digits whose highest score is the
        true class.
    """
    _, (x_test, y_test) = load_digits()
    scores = classifier.predict(x_test, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(scores, axis=-1) == y_test))


def train_gan(seed: int = 0, epochs: int | None = None, verbose: int = 0) -> GAN:
    """Trains a `GAN` on the training digits.

    `build_generator()` and `build_discriminator()`, latents of size
    `GAN_LATENT_DIM`, both optimizers Adam with learning rate
    `GAN_LEARNING_RATE` and `beta_1=0.5`, batches of `GAN_BATCH_SIZE`,
    `GAN_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            latents.
        epochs: Number of epochs; `None` means `GAN_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `GAN`; `model.history` holds its `fit()` history.
    """
    keras.utils.set_random_seed(seed)
    (x_train, _), _ = load_digits()
    model = GAN(
        build_generator(),
        build_discriminator(),
        latent_dim=GAN_LATENT_DIM,
        d_optimizer=keras.optimizers.Adam(GAN_LEARNING_RATE, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(GAN_LEARNING_RATE, beta_1=0.5),
        seed=seed,
        name="gan",
    )
    model.compile()
    model.fit(
        x_train,
        batch_size=GAN_BATCH_SIZE,
        epochs=GAN_EPOCHS if epochs is None else epochs,
        verbose=verbose,
    )
    return model


def train_wgan_gp(seed: int = 0, epochs: int | None = None, verbose: int = 0) -> WGANGP:
    """Trains a `WGANGP` on the training digits.

    `build_generator()` and `build_critic()`, latents of size
    `GAN_LATENT_DIM`, `WGAN_GP_CRITIC_STEPS` critic steps per generator
    step, gradient penalty weight 10, both optimizers Adam with learning
    rate `WGAN_GP_LEARNING_RATE`, `beta_1=0` and `beta_2=0.9`, batches of
    `WGAN_GP_BATCH_SIZE`, `WGAN_GP_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            latents and interpolation weights.
        epochs: Number of epochs; `None` means `WGAN_GP_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `WGANGP`; `model.history` holds its `fit()` history.
    """
    keras.utils.set_random_seed(seed)
    (x_train, _), _ = load_digits()
    model = WGANGP(
        build_generator(),
        build_critic(),
        latent_dim=GAN_LATENT_DIM,
        d_optimizer=keras.optimizers.Adam(WGAN_GP_LEARNING_RATE, 0.0, 0.9),
        g_optimizer=keras.optimizers.Adam(WGAN_GP_LEARNING_RATE, 0.0, 0.9),
        critic_steps=WGAN_GP_CRITIC_STEPS,
        gp_weight=10.0,
        seed=seed,
        name="wgan_gp",
    )
    model.compile()
    model.fit(
        x_train,
        batch_size=WGAN_GP_BATCH_SIZE,
        epochs=WGAN_GP_EPOCHS if epochs is None else epochs,
        verbose=verbose,
    )
    return model


def train_conditional_gan(
    seed: int = 0, epochs: int | None = None, verbose: int = 0
) -> ConditionalGAN:
    """Trains a `ConditionalGAN` on the training digits and their labels.

    `build_conditional_generator()` and `build_conditional_discriminator()`,
    latents of size `GAN_LATENT_DIM`, both optimizers Adam with learning rate
    `CONDITIONAL_GAN_LEARNING_RATE` and `beta_1=0.5`, batches of
    `CONDITIONAL_GAN_BATCH_SIZE`, `CONDITIONAL_GAN_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            latents.
        epochs: Number of epochs; `None` means `CONDITIONAL_GAN_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `ConditionalGAN`; `model.history` holds its `fit()`
        history.
    """
    keras.utils.set_random_seed(seed)
    (x_train, y_train), _ = load_digits()
    model = ConditionalGAN(
        build_conditional_generator(),
        build_conditional_discriminator(),
        latent_dim=GAN_LATENT_DIM,
        num_classes=NUM_CLASSES,
        d_optimizer=keras.optimizers.Adam(CONDITIONAL_GAN_LEARNING_RATE, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(CONDITIONAL_GAN_LEARNING_RATE, beta_1=0.5),
        seed=seed,
        name="conditional_gan",
    )
    model.compile()
    model.fit(
        x_train,
        y_train,
        batch_size=CONDITIONAL_GAN_BATCH_SIZE,
        epochs=CONDITIONAL_GAN_EPOCHS if epochs is None else epochs,
        verbose=verbose,
    )
    return model


def train_vae(seed: int = 0, epochs: int | None = None, verbose: int = 0) -> VAE:
    """Trains a `VAE` on the training digits.

    `build_encoder()` and `build_decoder()`, latents of size
    `VAE_LATENT_DIM`, the default loss (binary cross-entropy summed over
    the pixels plus the KL divergence, weight 1), Adam with learning rate
    `VAE_LEARNING_RATE`, batches of `VAE_BATCH_SIZE`, `VAE_EPOCHS` epochs.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's
            reparameterization noise.
        epochs: Number of epochs; `None` means `VAE_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `VAE`; `model.history` holds its `fit()` history.
    """
    keras.utils.set_random_seed(seed)
    (x_train, _), _ = load_digits()
    model = VAE(
        build_encoder(),
        build_decoder(),
        optimizer=keras.optimizers.Adam(VAE_LEARNING_RATE),
        kl_weight=1.0,
        seed=seed,
        name="vae",
    )
    model.compile()
    model.fit(
        x_train,
        batch_size=VAE_BATCH_SIZE,
        epochs=VAE_EPOCHS if epochs is None else epochs,
        verbose=verbose,
    )
    return model


# ----------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------


def mean_max_probability(probabilities: np.ndarray) -> float:
    """Mean over samples of the highest class probability.

    Near 1 when the judge recognizes every sample as some digit; near
    `1 / num_classes` for samples it cannot place.

    Args:
        probabilities: Class probabilities, shape `(count, num_classes)`.

    Returns:
        The mean of the row maxima.
    """
    return float(np.mean(np.max(np.asarray(probabilities), axis=-1)))


def class_entropy(classes: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Normalized entropy of the histogram of predicted classes.

    The entropy (natural log) of the class frequencies divided by
    `log(num_classes)`: 1 when every class is equally frequent, 0 when all
    samples fall in one class (mode collapse).

    Args:
        classes: Integer class ids, shape `(count,)`.
        num_classes: Number of classes.

    Returns:
        The normalized entropy, in [0, 1].
    """
    counts = np.bincount(np.asarray(classes).reshape(-1), minlength=num_classes)
    frequencies = counts[counts > 0] / counts.sum()
    return float(-np.sum(frequencies * np.log(frequencies)) / math.log(num_classes))


def frechet_distance(
    feature_model: keras.Model,
    real: np.ndarray,
    generated: np.ndarray,
    batch_size: int = 512,
) -> float:
    """Fréchet distance between two sets of samples in a feature space.

    Uses `keras_custom.metrics.FrechetDistance`, fed in batches.

    Args:
        feature_model: Model mapping samples to features (the judge's
            feature model).
        real: Reference samples.
        generated: Samples to compare with them.
        batch_size: Samples per `update_state` call.

    Returns:
        The Fréchet distance, a float.
    """
    metric = FrechetDistance(feature_model)
    for part, samples in (("real", real), ("generated", generated)):
        for start in range(0, len(samples), batch_size):
            metric.update_state(**{part: samples[start : start + batch_size]})
    return float(metric.result())


def uniform_noise(count: int, seed: int = 0) -> np.ndarray:
    """Images whose pixels are uniform in [0, 1]: the baseline of the scores.

    Args:
        count: Number of images.
        seed: Seed of the NumPy generator.

    Returns:
        A float32 array of shape `(count, 64)`.
    """
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(count, NUM_PIXELS)).astype("float32")


def reconstruction_errors(
    model: VAE, x_train: np.ndarray, x_test: np.ndarray
) -> tuple[float, float]:
    """Test reconstruction error of a VAE, and that of the training mean image.

    Args:
        model: A trained `VAE`; `model.predict(x)` reconstructs from `z_mean`.
        x_train: Training images, whose mean image is the baseline.
        x_test: Test images to reconstruct.

    Returns:
        Tuple `(error, mean_image_error)`: the mean squared error per pixel
        of the model's reconstructions of `x_test`, and that of predicting
        the mean training image for every test image.
    """
    reconstructions = model.predict(x_test, batch_size=512, verbose=0)
    error = float(np.mean(np.square(reconstructions - x_test)))
    mean_image_error = float(np.mean(np.square(x_train.mean(axis=0) - x_test)))
    return error, mean_image_error


def judge_scores(
    classifier: keras.Model,
    feature_model: keras.Model,
    samples: np.ndarray,
    real: np.ndarray,
    labels: np.ndarray | None = None,
    noise_seed: int = 0,
) -> dict[str, float]:
    """Judges generated digits with a classifier trained on the real ones.

    Args:
        classifier: Model mapping `(batch, 64)` images to class
            probabilities (the judge of `train_judge`).
        feature_model: Model mapping images to the judge's features.
        samples: Generated images, shape `(count, 64)`.
        real: Real images, the reference of the Fréchet distances (e.g. the
            training digits).
        labels: The classes requested of a conditional generator, one per
            sample, or `None`.
        noise_seed: Seed of the uniform-noise images of the baseline.

    Returns:
        Dict of floats: `"mean_max_probability"` (`mean_max_probability` of
        the judge's probabilities), `"class_entropy"` (`class_entropy` of its
        predicted classes), `"classes_covered"` (number of distinct predicted
        classes), `"frechet_distance"` (from `real` to `samples` in the
        feature space), `"noise_frechet_distance"` (from `real` to as many
        uniform-noise images), `"frechet_ratio"` (the first over the second)
        and, when `labels` are given, `"label_agreement"` (fraction of
        samples predicted as their requested label).
    """
    samples = np.asarray(samples, dtype="float32").reshape(len(samples), NUM_PIXELS)
    real = np.asarray(real, dtype="float32").reshape(len(real), NUM_PIXELS)
    probabilities = classifier.predict(samples, batch_size=512, verbose=0)
    classes = np.argmax(probabilities, axis=-1)
    distance = frechet_distance(feature_model, real, samples)
    noise_distance = frechet_distance(
        feature_model, real, uniform_noise(len(samples), noise_seed)
    )
    scores = {
        "mean_max_probability": mean_max_probability(probabilities),
        "class_entropy": class_entropy(classes),
        "classes_covered": float(len(np.unique(classes))),
        "frechet_distance": distance,
        "noise_frechet_distance": noise_distance,
        "frechet_ratio": distance / noise_distance,
    }
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        scores["label_agreement"] = float(np.mean(classes == labels))
    return scores
