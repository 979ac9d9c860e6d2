"""The judge of generated digits: a digits classifier and the scores it gives.

The generative quality tests, the demos and the notebooks judge generated
digits the same way: a small classifier trained on the real digits (the
judge, `train_judge`) and its feature layer score a set of generated digits
(`judge_scores`): are they recognizable digits (`mean_max_probability`), are
all ten there (`class_entropy`), and how far are they from the real ones in
the judge's feature space (`frechet_distance`, next to that of
`uniform_noise`)? `reconstruction_errors` measures a VAE's reconstructions.
The digits are flat vectors of 64 pixels, as in
`keras_custom.recipes.generative`.

Example:

```python
from keras_custom.recipes import generative, generative_scores

classifier, features = generative_scores.train_judge(seed=0)
generative_scores.judge_accuracy(classifier)  # 0.97 to 0.98
(x_train, _), _ = generative.load_digits()
noise = generative_scores.uniform_noise(1000)
generative_scores.judge_scores(classifier, features, noise, real=x_train)
```
"""

import math

import keras
import numpy as np

from keras_custom.generative import VAE
from keras_custom.metrics import FrechetDistance
from keras_custom.recipes.cache import cached_training
from keras_custom.recipes.data import NUM_CLASSES, NUM_PIXELS
from keras_custom.recipes.generative import load_digits

#: Recipe of the judge classifier.
JUDGE_EPOCHS = 40
JUDGE_BATCH_SIZE = 32
JUDGE_LEARNING_RATE = 1e-3


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


@cached_training
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
