"""Networks, training recipes and representation scores of the self-supervised
models on the 8x8 digits.

The quality tests of `SimCLR`, `SimSiam`, `BYOL` and `BarlowTwins`, and the
demos and notebooks that show them, share this module, so that they all train
exactly the same models the same way. The digits are images of shape
`(8, 8, 1)` with pixels in [0, 1] (`load_digits()`); the models learn from
the training images alone, without their labels.

- `build_encoder`: a small convolutional network, the same for the four
  models so that they can be compared; `build_projector`,
  `build_predictor`: their heads.
- `build_self_supervised(name, seed)`: one of the four models, untrained;
  its encoder at that seed is also the random-initialization baseline.
- `train_self_supervised(name, seed)`: the recipe; it seeds Keras, builds
  the model, compiles it and fits it on the training digits.
- `embedding_std`, `knn_accuracy`, `few_shot_linear_accuracy`: scores of a
  frozen encoder's features (NumPy only), and `evaluate_encoder`, which
  computes the three on the digits.

The names of the models are `MODEL_NAMES`: `"simclr"`, `"simsiam"`,
`"byol"` and `"barlow_twins"`.

Example:

```python
from keras_custom.demo import self_supervised_recipes as recipes

model = recipes.train_self_supervised("simclr", seed=0)
untrained = recipes.build_self_supervised("simclr", seed=0)
recipes.evaluate_encoder(model)["knn_accuracy"]  # about 0.98
recipes.evaluate_encoder(untrained)["few_shot_accuracy"]  # about 0.7
```
"""

import math

import keras
import numpy as np

from keras_custom.datasets import digits
from keras_custom.layers import PredictionHead, ProjectionHead
from keras_custom.schedules import CosineIncrease
from keras_custom.self_supervised import (
    BYOL,
    BarlowTwins,
    SelfSupervisedModel,
    SimCLR,
    SimSiam,
    small_image_augmenter,
)

#: Shape of one digit image: 8x8 pixels, one channel.
IMAGE_SHAPE = (8, 8, 1)
#: Number of digit classes.
NUM_CLASSES = 10
#: The models of `build_self_supervised` and `train_self_supervised`.
MODEL_NAMES = ("simclr", "simsiam", "byol", "barlow_twins")

#: Networks: encoder features, convolution widths, projection and heads.
FEATURE_DIM = 32
ENCODER_FILTERS = (32, 64, 128)
PROJECTION_DIM = 64
PROJECTOR_HIDDEN_UNITS = 128
#: SimSiam's predictor is a bottleneck (a quarter of the projection), BYOL's
#: is not, as in the papers.
SIMSIAM_PREDICTOR_HIDDEN_UNITS = 16
BYOL_PREDICTOR_HIDDEN_UNITS = 128

#: Recipe of `train_self_supervised`, the same for the four models.
EPOCHS = 80
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
#: Loss settings of each model.
SIMCLR_TEMPERATURE = 0.5
BYOL_INITIAL_EMA_DECAY = 0.98
BARLOW_TWINS_REDUNDANCY_WEIGHT = 1.0 / PROJECTION_DIM

#: Scores: neighbours of `knn_accuracy`, labeled digits per class of
#: `few_shot_linear_accuracy`, and the factor of the collapse threshold
#: `COLLAPSE_STD_FACTOR / sqrt(d)` of `embedding_std`.
KNN_NEIGHBORS = 5
FEW_SHOT_PER_CLASS = 10
COLLAPSE_STD_FACTOR = 0.5


def load_digits() -> tuple[
    tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]:
    """Loads the digits as float32 images in [0, 1] and int32 labels.

    Returns:
        Tuple `(x_train, y_train), (x_test, y_test)`: images of shape
        `(count, 8, 8, 1)` (the pixels divided by 16) and class ids of shape
        `(count,)`; 1,437 training and 360 test digits.
    """
    (x_train, y_train), (x_test, y_test) = digits.load_data()

    def prepare(x):
        return (x.astype("float32") / 16.0).reshape((len(x), *IMAGE_SHAPE))

    return (
        (prepare(x_train), y_train.astype("int32")),
        (prepare(x_test), y_test.astype("int32")),
    )


# ----------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------


def build_encoder(
    feature_dim: int = FEATURE_DIM,
    filters: tuple[int, ...] = ENCODER_FILTERS,
    name: str = "encoder",
) -> keras.Model:
    """Builds the encoder shared by the four self-supervised models.

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
    x = keras.layers.BatchNormalization(synchronized=True, name="batch_norm")(x)
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
    (x_train, _), _ = digits.load_data()
    return math.ceil(len(x_train) / batch_size)


def build_self_supervised(
    name: str, seed: int = 0, total_steps: int | None = None
) -> SelfSupervisedModel:
    """Builds one of the four self-supervised models, untrained.

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
      `BARLOW_TWINS_REDUNDANCY_WEIGHT`.

    Args:
        name: One of `MODEL_NAMES`.
        seed: Seed of the initialization and of the augmentation.
        total_steps: Number of optimizer steps of the training, the length
            of BYOL's decay schedule; `None` means `EPOCHS` epochs of
            `BATCH_SIZE`.

    Returns:
        The model, not compiled, without an online probe; `model.encoder`
        is the `build_encoder()` network.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"Unknown model {name!r}. Available: {MODEL_NAMES}.")
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
    return BarlowTwins(
        encoder,
        build_projector(),
        augmenter,
        redundancy_weight=BARLOW_TWINS_REDUNDANCY_WEIGHT,
        name=name,
    )


# ----------------------------------------------------------------------
# Recipe
# ----------------------------------------------------------------------


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
        name: One of `MODEL_NAMES`: `"simclr"`, `"simsiam"`, `"byol"` or
            `"barlow_twins"`.
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


# ----------------------------------------------------------------------
# Scores of frozen features (NumPy)
# ----------------------------------------------------------------------


def _l2_normalize(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2:
        raise ValueError(f"Features must be 2D (count, d); got {features.shape}.")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def embedding_std(features: np.ndarray) -> dict[str, float]:
    """Per-dimension standard deviation of the l2-normalized features.

    Each feature vector is divided by its l2 norm, then the standard
    deviation of each of the `d` dimensions is taken over the examples. A
    representation that collapsed to one point has 0 in every dimension;
    unit vectors spread like an isotropic Gaussian have about `1 / sqrt(d)`.
    The collapse criterion is on the **mean** over the dimensions (as in the
    SimSiam paper's collapse figure, section 4.1): at least
    `COLLAPSE_STD_FACTOR / sqrt(d)`. The minimum is reported too, to show
    dead or constant dimensions. The mean detects a collapse to a point, not
    a collapse to a subspace (a line of centered features has a mean near
    `0.8 / sqrt(d)`); the k-nearest-neighbour and few-shot scores catch
    the rest.

    Args:
        features: Array `(count, d)` of features.

    Returns:
        Dict of floats: `"mean"` and `"min"`, the mean and the minimum over
        the dimensions of the standard deviations, and `"threshold"`,
        `COLLAPSE_STD_FACTOR / sqrt(d)`.

    Example:

    ```python
    import numpy as np
    from keras_custom.demo.self_supervised_recipes import embedding_std

    rng = np.random.default_rng(0)
    embedding_std(rng.normal(size=(1000, 16)))["mean"]  # about 1 / 4
    embedding_std(np.ones((1000, 16)))["mean"]  # 0.0
    ```
    """
    stds = np.std(_l2_normalize(features), axis=0)
    return {
        "mean": float(np.mean(stds)),
        "min": float(np.min(stds)),
        "threshold": COLLAPSE_STD_FACTOR / math.sqrt(stds.shape[0]),
    }


def knn_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    k: int = KNN_NEIGHBORS,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier with cosine similarity.

    Each test example gets the majority class of its `k` most
    cosine-similar training examples; a tie between classes goes to the one
    with the larger sum of similarities.

    Args:
        train_features: Array `(n, d)` of the labeled examples' features.
        train_labels: Integer class ids `(n,)`.
        test_features: Array `(m, d)` of the features to classify.
        test_labels: Their true class ids `(m,)`.
        k: Number of neighbours.

    Returns:
        The fraction of test examples classified correctly.
    """
    train = _l2_normalize(train_features)
    test = _l2_normalize(test_features)
    train_labels = np.asarray(train_labels).astype("int64").reshape(-1)
    test_labels = np.asarray(test_labels).astype("int64").reshape(-1)
    if not 1 <= k <= len(train):
        raise ValueError(f"`k` must be in [1, {len(train)}]; got {k}.")
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    correct = 0
    for start in range(0, len(test), 1024):
        similarity = test[start : start + 1024] @ train.T
        rows = np.arange(len(similarity))[:, None]
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(similarity), num_classes))
        sums = np.zeros((len(similarity), num_classes))
        np.add.at(votes, (rows, train_labels[nearest]), 1.0)
        np.add.at(sums, (rows, train_labels[nearest]), similarity[rows, nearest])
        # Counts are integers and sums are in [-k, k]: votes decide first.
        predictions = np.argmax(votes * (2 * k + 1) + sums, axis=1)
        correct += int(np.sum(predictions == test_labels[start : start + 1024]))
    return correct / len(test)


def _fit_softmax_regression(
    x: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    l2: float,
    tolerance: float = 1e-6,
    max_iterations: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by accelerated gradient descent.

    Minimizes the mean cross-entropy plus `l2 / 2 * ||kernel||^2` (the bias
    is not penalized) with Nesterov's method and adaptive restart, until
    the largest gradient entry is below `tolerance`.
    """
    count, dim = x.shape
    inputs = np.concatenate([x, np.ones((count, 1))], axis=1)
    onehot = np.eye(num_classes)[labels]
    penalty = np.ones((dim + 1, 1))
    penalty[-1] = 0.0
    # The softmax cross-entropy's Hessian is at most 1/2 X^T X / n.
    step = 1.0 / (0.5 * np.linalg.norm(inputs, 2) ** 2 / count + l2)
    weights = np.zeros((dim + 1, num_classes))
    previous, momentum = weights, 1.0

    def gradient(w):
        logits = inputs @ w
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return inputs.T @ (probabilities - onehot) / count + l2 * penalty * w

    point = weights
    for _ in range(max_iterations):
        if np.max(np.abs(gradient(weights))) < tolerance:
            break
        grad = gradient(point)
        weights, previous = point - step * grad, weights
        if np.sum(grad * (weights - previous)) > 0:  # restart the momentum
            momentum = 1.0
        next_momentum = (1.0 + math.sqrt(1.0 + 4.0 * momentum**2)) / 2.0
        point = weights + (momentum - 1.0) / next_momentum * (weights - previous)
        momentum = next_momentum
    return weights[:-1], weights[-1]


def few_shot_linear_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    per_class: int = FEW_SHOT_PER_CLASS,
    seed: int = 0,
    l2: float = 0.01,
) -> float:
    """Accuracy of a linear classifier fit on a few labeled examples per class.

    Picks `per_class` training examples of each class at random (NumPy
    generator seeded with `seed`), standardizes the features with the mean
    and standard deviation of those examples, fits a multinomial logistic
    regression to convergence (mean cross-entropy plus `l2 / 2` times the
    squared kernel norm: with 100 examples, `l2=0.01` is scikit-learn's
    default `C=1`), and scores it on the test features, standardized the
    same way.

    Args:
        train_features: Array `(n, d)` to pick the labeled examples from.
        train_labels: Their integer class ids `(n,)`; every class needs
            `per_class` examples.
        test_features: Array `(m, d)` of the features to classify.
        test_labels: Their true class ids `(m,)`.
        per_class: Labeled examples per class.
        seed: Seed of the choice of the labeled examples.
        l2: Weight of the l2 penalty on the kernel.

    Returns:
        The fraction of test examples classified correctly.
    """
    train_features = np.asarray(train_features, dtype="float64")
    test_features = np.asarray(test_features, dtype="float64")
    train_labels = np.asarray(train_labels).astype("int64").reshape(-1)
    test_labels = np.asarray(test_labels).astype("int64").reshape(-1)
    classes = np.unique(train_labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in classes:
        candidates = np.flatnonzero(train_labels == label)
        if len(candidates) < per_class:
            raise ValueError(
                f"Class {label} has {len(candidates)} examples; {per_class} needed."
            )
        chosen.append(rng.choice(candidates, per_class, replace=False))
    chosen = np.concatenate(chosen)
    x, labels = train_features[chosen], np.searchsorted(classes, train_labels[chosen])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    kernel, bias = _fit_softmax_regression((x - mean) / std, labels, len(classes), l2)
    predictions = classes[np.argmax((test_features - mean) / std @ kernel + bias, 1)]
    return float(np.mean(predictions == test_labels))


def encoder_features(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Features of `images`, from an encoder or a self-supervised model.

    Args:
        model: An encoder, or a self-supervised model (whose `predict`
            returns its encoder's features).
        images: Images `(count, 8, 8, 1)` in [0, 1].

    Returns:
        Array `(count, d)` of features, in inference mode.
    """
    return np.asarray(model.predict(images, batch_size=512, verbose=0))


def evaluate_encoder(model: keras.Model, few_shot_seed: int = 0) -> dict[str, float]:
    """The three scores of a frozen encoder on the digits.

    Features of the 1,437 training and 360 test digits, then
    `embedding_std` of the training features, `knn_accuracy` (5 cosine
    neighbours among the training digits, all labeled) and
    `few_shot_linear_accuracy` (10 labeled training digits per class, chosen
    with `few_shot_seed`), both on the test digits.

    Args:
        model: An encoder, or a self-supervised model.
        few_shot_seed: Seed of the choice of the few labeled digits.

    Returns:
        Dict of floats: `"embedding_std"` (mean over dimensions),
        `"min_embedding_std"`, `"collapse_threshold"` (`0.5 / sqrt(d)`),
        `"knn_accuracy"` and `"few_shot_accuracy"`.
    """
    (x_train, y_train), (x_test, y_test) = load_digits()
    features = encoder_features(model, np.concatenate([x_train, x_test]))
    train, test = features[: len(x_train)], features[len(x_train) :]
    spread = embedding_std(train)
    return {
        "embedding_std": spread["mean"],
        "min_embedding_std": spread["min"],
        "collapse_threshold": spread["threshold"],
        "knn_accuracy": knn_accuracy(train, y_train, test, y_test),
        "few_shot_accuracy": few_shot_linear_accuracy(
            train, y_train, test, y_test, seed=few_shot_seed
        ),
    }
