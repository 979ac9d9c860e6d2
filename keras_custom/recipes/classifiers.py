"""The digits classifier of the distillation, semi-supervised and robust recipes.

`build_classifier` is the small convolutional network that every recipe of
`keras_custom.recipes.distillation`, `keras_custom.recipes.semi_supervised`
and `keras_custom.recipes.robust` trains (the teacher, the semi-supervised
classifier and its baselines, the robust classifiers), so that their scores
can be compared; `compile_and_fit` and `train_classifier` are their
supervised training (Adam and the cross-entropy, with the learning rate,
batch size and epochs of a `SupervisedRecipe`), and `accuracy` their score on
the test digits. The digits are images of shape
`(8, 8, 1)` with pixels in [0, 1] (`keras_custom.recipes.data.load_digits()`).

Example:

```python
from keras_custom.recipes import classifiers, data

recipe = classifiers.SupervisedRecipe(learning_rate=2e-3, batch_size=64, epochs=5)
model = classifiers.train_classifier(classifiers.build_classifier, 0, recipe)
_, (x_test, y_test) = data.load_digits()
classifiers.accuracy(model, x_test, y_test)  # about 0.97
```
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import keras
import numpy as np

from keras_custom.recipes.data import IMAGE_SHAPE, NUM_CLASSES, load_digits


def build_classifier(
    filters: tuple[int, int] = (16, 32), units: int = 64, name: str = "classifier"
) -> keras.Model:
    """Builds the small convolutional digits classifier.

    Two 3x3 ReLU convolutions of `filters` (same padding), a 2x2 max
    pooling, a dense ReLU layer of `units` and 10 logits.

    Args:
        filters: Filters of the two convolutions.
        units: Width of the dense hidden layer.
        name: Name of the model.

    Returns:
        A functional `keras.Model` mapping `(batch, 8, 8, 1)` images to
        `(batch, 10)` logits.
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = keras.layers.Conv2D(
        filters[0], 3, padding="same", activation="relu", name="conv_1"
    )(images)
    x = keras.layers.Conv2D(
        filters[1], 3, padding="same", activation="relu", name="conv_2"
    )(x)
    return keras.Model(images, classifier_head(x, units), name=name)


def classifier_head(x, units: int) -> keras.KerasTensor:
    """Pools and flattens feature maps, then a dense ReLU layer and 10 logits.

    The head of `build_classifier` and of the distillation's student: a 2x2
    max pooling, a dense ReLU layer of `units` and `NUM_CLASSES` logits.

    Args:
        x: Feature maps `(batch, height, width, channels)`.
        units: Width of the dense hidden layer.

    Returns:
        The logits, `(batch, 10)`.
    """
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="dense")(x)
    return keras.layers.Dense(NUM_CLASSES, name="logits")(x)


class SupervisedRecipe(NamedTuple):
    """How `compile_and_fit` trains a classifier: Adam, batches and epochs.

    Attributes:
        learning_rate: Adam's learning rate.
        batch_size: Batch size of `fit()`.
        epochs: Number of epochs.
    """

    learning_rate: float
    batch_size: int
    epochs: int


def compile_and_fit(
    model: keras.Model,
    recipe: SupervisedRecipe,
    x: np.ndarray,
    y: np.ndarray,
    verbose: int = 0,
    shuffle: bool = True,
    metrics: Sequence[str] | None = ("accuracy",),
) -> keras.Model:
    """Compiles a classifier of logits and fits it on `(x, y)`.

    Adam with `recipe.learning_rate`, the sparse categorical cross-entropy
    from logits and `metrics`, then `fit(x, y)` for `recipe.epochs` epochs
    of `recipe.batch_size`.

    Args:
        model: A model mapping images to logits (or a model that trains one,
            such as `keras_custom.AdversarialModel`).
        recipe: The learning rate, batch size and epochs.
        x: Training images.
        y: Their integer class ids.
        verbose: Verbosity of `fit()`.
        shuffle: Whether `fit()` shuffles the examples every epoch.
        metrics: Metrics of `compile()`, or `None`.

    Returns:
        `model`, trained; `model.history` holds its `fit()` history.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=None if metrics is None else list(metrics),
    )
    model.fit(
        x,
        y,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        shuffle=shuffle,
        verbose=verbose,
    )
    return model


def train_classifier(
    build: Callable[[], keras.Model],
    seed: int,
    recipe: SupervisedRecipe,
    verbose: int = 0,
    metrics: Sequence[str] | None = ("accuracy",),
) -> keras.Model:
    """Trains a classifier on every training digit and its label.

    Seeds Keras (`keras.utils.set_random_seed(seed)`), builds the model with
    `build()`, then `compile_and_fit` on the training digits.

    Args:
        build: Function of no arguments returning the model to train.
        seed: Random seed of the initialization and the shuffling.
        recipe: The learning rate, batch size and epochs.
        verbose: Verbosity of `fit()`.
        metrics: Metrics of `compile()`, or `None`.

    Returns:
        The trained model.
    """
    keras.utils.set_random_seed(seed)
    model = build()
    (x_train, y_train), _ = load_digits()
    return compile_and_fit(
        model, recipe, x_train, y_train, verbose=verbose, metrics=metrics
    )


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Classification accuracy of a model on `(x, y)`.

    Args:
        model: A model mapping images to class scores (logits or
            probabilities), in inference mode.
        x: Images, `(count, 8, 8, 1)`.
        y: Integer class ids, `(count,)`.

    Returns:
        The fraction of the images whose highest score is their class.
    """
    scores = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(scores, axis=-1) == np.asarray(y).reshape(-1)))
