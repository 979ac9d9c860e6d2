"""Networks and the training recipe of the self-supervised models on the digits.

The quality tests of `SimCLR`, `SimSiam`, `BYOL`, `BarlowTwins` and
`VICReg`, and the demos and notebooks that show them, share this module, so
that they all train exactly the same models the same way. The digits are
images of shape `(8, 8, 1)` with pixels in [0, 1]
(`keras_custom.recipes.data.load_digits()`); the models learn from the
training images alone, without their labels.

- `build_encoder`: a small convolutional network, the same for the five
  models so that they can be compared; `build_projector`,
  `build_predictor`: their heads.
- `build_self_supervised(name, seed)`: one of the five models, untrained;
  its encoder at that seed is also the random-initialization baseline.
- `train_self_supervised(name, seed)`: the recipe; it seeds Keras, builds
  the model, compiles it and fits it on the training digits.

The scores of the learned features are in
`keras_custom.recipes.self_supervised_scores`. The names of the models are
`ALL_MODEL_NAMES`: `"simclr"`, `"simsiam"`, `"byol"`, `"barlow_twins"` and
`"vicreg"`; `MODEL_NAMES` are the first four, those the notebook
`03_self_supervised` trains and checks.

Example:

```python
from keras_custom.recipes import self_supervised, self_supervised_scores

model = self_supervised.train_self_supervised("simclr", seed=0)
untrained = self_supervised.build_self_supervised("simclr", seed=0)
self_supervised_scores.evaluate_encoder(model)["knn_accuracy"]  # about 0.98
self_supervised_scores.evaluate_encoder(untrained)["few_shot_accuracy"]  # 0.7
```
"""

import math

import keras

from keras_custom.layers import (
    GlobalBatchNormalization,
    PredictionHead,
    ProjectionHead,
)
from keras_custom.recipes.cache import cached_training
from keras_custom.recipes.data import IMAGE_SHAPE, load_digits
from keras_custom.schedules import CosineIncrease
from keras_custom.self_supervised import (
    BYOL,
    BarlowTwins,
    SelfSupervisedModel,
    SimCLR,
    SimSiam,
    VICReg,
    small_image_augmenter,
)

#: The models of `build_self_supervised` and `train_self_supervised`.
ALL_MODEL_NAMES = ("simclr", "simsiam", "byol", "barlow_twins", "vicreg")
#: The four models the notebook `03_self_supervised` trains and checks.
MODEL_NAMES = ALL_MODEL_NAMES[:4]

#: Networks: encoder features, convolution widths, projection and heads.
FEATURE_DIM = 32
ENCODER_FILTERS = (32, 64, 128)
PROJECTION_DIM = 64
PROJECTOR_HIDDEN_UNITS = 128
#: SimSiam's predictor is a bottleneck (a quarter of the projection), BYOL's
#: is not, as in the papers.
SIMSIAM_PREDICTOR_HIDDEN_UNITS = 16
BYOL_PREDICTOR_HIDDEN_UNITS = 128

#: Recipe of `train_self_supervised`, the same for the five models.
EPOCHS = 80
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
#: Loss settings of each model.
SIMCLR_TEMPERATURE = 0.5
BYOL_INITIAL_EMA_DECAY = 0.98
BARLOW_TWINS_REDUNDANCY_WEIGHT = 1.0 / PROJECTION_DIM
#: VICReg's loss weights, the paper's `lambda`, `mu` and `nu`. `lambda` is
#: lowered from the paper's 25 (tuned for 8192-d projections) to 10: with
#: the paper's weights the variance hinge stays active on these 64-d
#: projections (`variance_loss` about 0.22 at the end) and the 5-NN
#: accuracy over seeds 0 to 4 is 0.956 to 0.981; with `lambda = 10` the
#: hinge is nearly met (about 0.05) and it is 0.981 to 0.994 over seeds 0
#: to 6.
VICREG_INVARIANCE_WEIGHT = 10.0
VICREG_VARIANCE_WEIGHT = 25.0
VICREG_COVARIANCE_WEIGHT = 1.0


def build_encoder(
    feature_dim: int = FEATURE_DIM,
    filters: tuple[int, ...] = ENCODER_FILTERS,
    name: str = "encoder",
) -> keras.Model:
    """Builds the encoder shared by the five self-supervised models.

    Three 3x3 ReLU convolutions of `filters` (the second with stride 2, so
    8x8 -> 4x4), global average pooling, a batch normalization and a linear
    `Dense` layer to `feature_dim` features. The batch normalization
    (synchronized across replicas, so it sees the global batch under a
    distribution strategy) centers the pooled activations, which are all
    positive after the ReLU: without it the features share a large constant
    offset, which the self-supervised losses leave alone (their projector
    starts with batch normalization), and the l2-normalized features are
    crowded in one direction. There is no other batch normalization, so the
    encoder is the same in training and inference mode but for it.

    Args:
        feature_dim: Number of features.
        filters: Number of filters of each convolution.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `(batch, 8, 8, 1)` images to
        `(batch, feature_dim)` features.
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = images
    for index, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(
            width,
            3,
            strides=2 if index == 2 else 1,
            padding="same",
            activation="relu",
            name=f"conv_{index}",
        )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = GlobalBatchNormalization(name="batch_norm")(x)
    features = keras.layers.Dense(feature_dim, name="features")(x)
    return keras.Model(images, features, name=name)


def build_projector(
    output_batch_norm: bool = False,
    feature_dim: int = FEATURE_DIM,
    name: str = "projector",
) -> ProjectionHead:
    """Builds a projector: `ProjectionHead(PROJECTION_DIM, PROJECTOR_HIDDEN_UNITS)`.

    Args:
        output_batch_norm: Whether the projection is batch-normalized
            (SimSiam's projector).
        feature_dim: Number of features of the encoder, its input.
        name: Name of the layer.

    Returns:
        A built `keras_custom.layers.ProjectionHead` mapping
        `(batch, feature_dim)` features to `(batch, PROJECTION_DIM)`
        projections.
    """
    projector = ProjectionHead(
        PROJECTION_DIM,
        hidden_units=PROJECTOR_HIDDEN_UNITS,
        output_batch_norm=output_batch_norm,
        name=name,
    )
    projector.build((None, feature_dim))
    return projector


def build_predictor(hidden_units: int, name: str = "predictor") -> PredictionHead:
    """Builds a predictor of SimSiam or BYOL: `PredictionHead(PROJECTION_DIM)`.

    Args:
        hidden_units: Size of the hidden block
            (`SIMSIAM_PREDICTOR_HIDDEN_UNITS` or `BYOL_PREDICTOR_HIDDEN_UNITS`).
        name: Name of the layer.

    Returns:
        A built `keras_custom.layers.PredictionHead` mapping projections
        `(batch, PROJECTION_DIM)` to predictions of the same shape.
    """
    predictor = PredictionHead(PROJECTION_DIM, hidden_units=hidden_units, name=name)
    predictor.build((None, PROJECTION_DIM))
    return predictor


def steps_per_epoch(batch_size: int = BATCH_SIZE) -> int:
    """Optimizer steps of one epoch over the 1,437 training digits.

    Args:
        batch_size: Batch size of `fit()`.

    Returns:
        The number of batches of one epoch (the last one may be smaller).
    """
    (x_train, _), _ = load_digits()
    return math.ceil(len(x_train) / batch_size)


def build_self_supervised(
    name: str, seed: int = 0, total_steps: int | None = None
) -> SelfSupervisedModel:
    """Builds one of the five self-supervised models, untrained.

    Seeds Keras with `seed` (`keras.utils.set_random_seed`) and builds the
    encoder first, so that the encoder at a given seed has the same initial
    weights whatever the model: the untrained model's encoder is the
    random-initialization baseline of the trained one. The augmentation is
    `small_image_augmenter(seed=seed)` with its default strengths. The
    models:

    - `"simclr"`: `SimCLR`, temperature `SIMCLR_TEMPERATURE`;
    - `"simsiam"`: `SimSiam`, batch-normalized projection, predictor hidden
      size `SIMSIAM_PREDICTOR_HIDDEN_UNITS`;
    - `"byol"`: `BYOL`, predictor hidden size `BYOL_PREDICTOR_HIDDEN_UNITS`,
      target decay rising from `BYOL_INITIAL_EMA_DECAY` to 1 over
      `total_steps` (`keras_custom.schedules.CosineIncrease`);
    - `"barlow_twins"`: `BarlowTwins`, redundancy weight
      `BARLOW_TWINS_REDUNDANCY_WEIGHT`;
    - `"vicreg"`: `VICReg`, weights `VICREG_INVARIANCE_WEIGHT`,
      `VICREG_VARIANCE_WEIGHT` and `VICREG_COVARIANCE_WEIGHT`.

    Args:
        name: One of `ALL_MODEL_NAMES`.
        seed: Seed of the initialization and of the augmentation.
        total_steps: Number of optimizer steps of the training, the length
            of BYOL's decay schedule; `None` means `EPOCHS` epochs of
            `BATCH_SIZE`.

    Returns:
        The model, not compiled, without an online probe; `model.encoder`
        is the `build_encoder()` network.
    """
    if name not in ALL_MODEL_NAMES:
        raise ValueError(f"Unknown model {name!r}. Available: {ALL_MODEL_NAMES}.")
    if total_steps is None:
        total_steps = EPOCHS * steps_per_epoch(BATCH_SIZE)
    keras.utils.set_random_seed(seed)
    encoder = build_encoder()
    augmenter = small_image_augmenter(seed=seed)
    if name == "simclr":
        return SimCLR(
            encoder,
            build_projector(),
            augmenter,
            temperature=SIMCLR_TEMPERATURE,
            name=name,
        )
    if name == "simsiam":
        return SimSiam(
            encoder,
            build_projector(output_batch_norm=True),
            build_predictor(SIMSIAM_PREDICTOR_HIDDEN_UNITS),
            augmenter,
            name=name,
        )
    if name == "byol":
        return BYOL(
            encoder,
            build_projector(),
            build_predictor(BYOL_PREDICTOR_HIDDEN_UNITS),
            augmenter,
            ema_decay=CosineIncrease(BYOL_INITIAL_EMA_DECAY, 1.0, total_steps),
            name=name,
        )
    if name == "barlow_twins":
        return BarlowTwins(
            encoder,
            build_projector(),
            augmenter,
            redundancy_weight=BARLOW_TWINS_REDUNDANCY_WEIGHT,
            name=name,
        )
    return VICReg(
        encoder,
        build_projector(),
        augmenter,
        invariance_weight=VICREG_INVARIANCE_WEIGHT,
        variance_weight=VICREG_VARIANCE_WEIGHT,
        covariance_weight=VICREG_COVARIANCE_WEIGHT,
        name=name,
    )


@cached_training
def train_self_supervised(
    name: str,
    seed: int = 0,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    verbose: int = 0,
) -> SelfSupervisedModel:
    """Trains a self-supervised model on the training digits, without labels.

    `build_self_supervised(name, seed)`, compiled with Adam at
    `LEARNING_RATE`, fit on the 1,437 training images (`fit(x)`: no labels,
    no online probe) for `epochs` epochs of `batch_size`. With the defaults
    it takes about a minute on two busy CPU cores.

    Args:
        name: One of `ALL_MODEL_NAMES`: `"simclr"`, `"simsiam"`, `"byol"`,
            `"barlow_twins"` or `"vicreg"`.
        seed: Seed of the initialization, the augmentation and the
            shuffling.
        epochs: Number of epochs.
        batch_size: Batch size.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained model; `model.predict(images)` gives the encoder's
        features and `model.history` holds the `fit()` history.
    """
    model = build_self_supervised(
        name, seed=seed, total_steps=max(1, epochs * steps_per_epoch(batch_size))
    )
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    (x_train, _), _ = load_digits()
    model.fit(x_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    return model
