"""Training recipes of the `DiffusionModel` on the 8x8 digits.

The diffusion demo and quality test share these recipes. The digits are
flat vectors of 64 pixels (`keras_custom.recipes.generative.load_digits()`)
that the model sees scaled to `[-1, 1]` (`to_model_range`), the range of
Ho et al.; `generate_digits` samples with 50 DDIM steps and maps the
samples back to pixels in `[0, 1]`, which the judge of
`keras_custom.recipes.generative_scores` scores. The denoiser is a
residual multilayer perceptron (`build_denoiser`): the time step through
`keras_custom.layers.TimestepEmbedding` and two dense layers, and the class
label, in the conditional model, through an `Embedding` of the 10 digits and
the "no label" id, both added to the first hidden layer.

Example:

```python
from keras_custom.recipes import diffusion, generative_scores

model = diffusion.train_diffusion(seed=0, epochs=2)
digits = diffusion.generate_digits(model, 100, seed=1)  # (100, 64) in [0, 1]
```
"""

import keras
import numpy as np

from keras_custom.generative import DiffusionModel
from keras_custom.layers import TimestepEmbedding
from keras_custom.recipes.cache import cached_training
from keras_custom.recipes.data import NUM_CLASSES, NUM_PIXELS
from keras_custom.recipes.generative import load_digits
from keras_custom.schedules import CosineIncrease

#: The diffusion process: steps, schedule, prediction.
DIFFUSION_TIMESTEPS = 1000
DIFFUSION_SCHEDULE = "cosine"
DIFFUSION_PREDICTION = "epsilon"
#: `γ` of the Min-SNR loss weighting (Hang et al.), which trains faster.
MIN_SNR_GAMMA = 5.0
#: The denoiser: width and number of residual blocks.
DENOISER_UNITS = 256
DENOISER_BLOCKS = 3
#: Epochs of `train_diffusion` and of `train_conditional_diffusion`.
DIFFUSION_EPOCHS = 300
CONDITIONAL_DIFFUSION_EPOCHS = 40
#: Recipe of both.
DIFFUSION_BATCH_SIZE = 128
DIFFUSION_LEARNING_RATE = 2e-3
#: The moving average's decay rises from 0.9 to this over the training.
DIFFUSION_EMA_DECAY = 0.999
GUIDANCE_DROPOUT = 0.1
#: Sampling: DDIM steps, and the guidance scale of the conditional model.
SAMPLING_STEPS = 50
GUIDANCE_SCALE = 1.0


def to_model_range(pixels: np.ndarray) -> np.ndarray:
    """Pixels in `[0, 1]` to the model's `[-1, 1]`."""
    return (2.0 * np.asarray(pixels, "float32") - 1.0).astype("float32")


def to_pixels(samples: np.ndarray) -> np.ndarray:
    """Samples in `[-1, 1]` back to pixels in `[0, 1]`."""
    return np.clip((np.asarray(samples, "float32") + 1.0) / 2.0, 0.0, 1.0)


def build_denoiser(num_classes: int | None = None) -> keras.Model:
    """The residual MLP denoiser of `[x_t, t]` (and `labels`).

    `x_t` (64 values) goes through a dense layer of `DENOISER_UNITS`, to
    which the time step's features (`TimestepEmbedding(64)`, then two dense
    layers) and, when `num_classes` is given, an `Embedding` of the
    `num_classes + 1` labels are added; then `DENOISER_BLOCKS` residual
    blocks (SiLU, dense, SiLU, dense) and a linear output of 64 values.

    Args:
        num_classes: Number of classes of a conditional model, or `None`.

    Returns:
        The functional model, named `"denoiser"`.
    """
    units = DENOISER_UNITS
    samples = keras.Input((NUM_PIXELS,), name="noisy_samples")
    timesteps = keras.Input((), dtype="int32", name="timesteps")
    inputs = [samples, timesteps]
    time = TimestepEmbedding(64, name="time_embedding")(timesteps)
    time = keras.layers.Dense(units, activation="silu", name="time_dense_1")(time)
    time = keras.layers.Dense(units, name="time_dense_2")(time)
    terms = [keras.layers.Dense(units, name="input_dense")(samples), time]
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        terms.append(
            keras.layers.Embedding(num_classes + 1, units, name="label_embedding")(
                labels
            )
        )
    hidden = keras.layers.Add(name="add_inputs")(terms)
    for index in range(1, DENOISER_BLOCKS + 1):
        residual = keras.layers.Activation("silu")(hidden)
        residual = keras.layers.Dense(
            units, activation="silu", name=f"block_{index}_dense_1"
        )(residual)
        residual = keras.layers.Dense(units, name=f"block_{index}_dense_2")(residual)
        hidden = keras.layers.Add(name=f"block_{index}_add")([hidden, residual])
    hidden = keras.layers.Activation("silu")(hidden)
    outputs = keras.layers.Dense(NUM_PIXELS, name="prediction")(hidden)
    return keras.Model(inputs, outputs, name="denoiser")


def _steps_per_epoch() -> int:
    (x_train, _), _ = load_digits()
    return -(-len(x_train) // DIFFUSION_BATCH_SIZE)


def build_diffusion(
    seed: int = 0, conditional: bool = False, epochs: int | None = None
) -> DiffusionModel:
    """Builds the `DiffusionModel` of the recipes, not compiled.

    `build_denoiser()`, `DIFFUSION_TIMESTEPS` steps of the
    `DIFFUSION_SCHEDULE` schedule predicting `DIFFUSION_PREDICTION` with the
    Min-SNR weighting (`MIN_SNR_GAMMA`), Adam
    with learning rate `DIFFUSION_LEARNING_RATE`, samples in `[-1, 1]`, and
    a moving average whose decay rises from 0.9 to `DIFFUSION_EMA_DECAY`
    over the training (`CosineIncrease`), so it follows the fast early
    progress and averages late.

    Args:
        seed: Seed of the model's time steps and noise.
        conditional: Whether the model is conditioned on the digit class
            (with `GUIDANCE_DROPOUT`).
        epochs: Training epochs the decay's rise spans; `None` means
            `CONDITIONAL_DIFFUSION_EPOCHS` or `DIFFUSION_EPOCHS`.

    Returns:
        The model, named `"diffusion"` or `"conditional_diffusion"`.
    """
    num_classes = NUM_CLASSES if conditional else None
    epochs = _epochs(conditional, epochs)
    return DiffusionModel(
        build_denoiser(num_classes),
        timesteps=DIFFUSION_TIMESTEPS,
        schedule=DIFFUSION_SCHEDULE,
        prediction=DIFFUSION_PREDICTION,
        ema_decay=CosineIncrease(
            0.9, DIFFUSION_EMA_DECAY, steps=epochs * _steps_per_epoch()
        ),
        num_classes=num_classes,
        guidance_dropout=GUIDANCE_DROPOUT,
        sample_range=(-1.0, 1.0),
        min_snr_gamma=MIN_SNR_GAMMA,
        optimizer=keras.optimizers.Adam(DIFFUSION_LEARNING_RATE),
        seed=seed,
        name="conditional_diffusion" if conditional else "diffusion",
    )


def _epochs(conditional: bool, epochs: int | None) -> int:
    if epochs is not None:
        return epochs
    return CONDITIONAL_DIFFUSION_EPOCHS if conditional else DIFFUSION_EPOCHS


def _train(seed: int, conditional: bool, epochs, verbose: int) -> DiffusionModel:
    keras.utils.set_random_seed(seed)
    epochs = _epochs(conditional, epochs)
    model = build_diffusion(seed, conditional, epochs)
    (x_train, y_train), _ = load_digits()
    model.compile()
    model.fit(
        to_model_range(x_train),
        y_train if conditional else None,
        batch_size=DIFFUSION_BATCH_SIZE,
        epochs=epochs,
        verbose=verbose,
    )
    return model


@cached_training
def train_diffusion(
    seed: int = 0, epochs: int | None = None, verbose: int = 0
) -> DiffusionModel:
    """Trains the unconditional `DiffusionModel` on the training digits.

    `build_diffusion(seed)`, batches of `DIFFUSION_BATCH_SIZE`,
    `DIFFUSION_EPOCHS` epochs, on the digits scaled to `[-1, 1]`.

    Args:
        seed: Seeds Keras (initialization, shuffling) and the model's time
            steps and noise.
        epochs: Number of epochs; `None` means `DIFFUSION_EPOCHS`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained model; `model.history` holds its `fit()` history.
    """
    return _train(seed, False, epochs, verbose)


@cached_training
def train_conditional_diffusion(
    seed: int = 0, epochs: int | None = None, verbose: int = 0
) -> DiffusionModel:
    """Trains the class-conditional `DiffusionModel` on the digits and labels.

    As `train_diffusion`, for `CONDITIONAL_DIFFUSION_EPOCHS` epochs (the
    labels make it learn faster), with each label dropped (replaced by the
    "no label" id 10) with probability `GUIDANCE_DROPOUT`.

    Args:
        seed: As in `train_diffusion`.
        epochs: Number of epochs; `None` means
            `CONDITIONAL_DIFFUSION_EPOCHS`.
        verbose: As in `train_diffusion`.

    Returns:
        The trained model.
    """
    return _train(seed, True, epochs, verbose)


def generate_digits(
    model: DiffusionModel,
    count: int,
    seed: int | None = None,
    labels=None,
    guidance_scale: float | None = None,
    steps: int = SAMPLING_STEPS,
) -> np.ndarray:
    """Samples digits with `steps` DDIM steps, as pixels in `[0, 1]`.

    Args:
        model: A trained model of these recipes.
        count: Number of digits.
        seed: Seed of the sampler's noise.
        labels: The digit of each sample, for the conditional model.
        guidance_scale: Guidance scale `w` of the conditional model;
            `None` means `GUIDANCE_SCALE`.
        steps: Number of DDIM steps.

    Returns:
        A float32 array of shape `(count, 64)`.
    """
    if labels is not None and guidance_scale is None:
        guidance_scale = GUIDANCE_SCALE
    samples = model.generate(
        count,
        steps=steps,
        sampler="ddim",
        labels=labels,
        guidance_scale=guidance_scale,
        seed=seed,
    )
    return to_pixels(samples)
