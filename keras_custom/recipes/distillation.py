"""Recipes of knowledge distillation on the 8x8 digits: teacher and student.

The quality tests of `Distiller` and the notebook that shows it share this
module, so that they train exactly the same models the same way. The digits
are images of shape `(8, 8, 1)` with pixels in [0, 1]
(`keras_custom.recipes.data.load_digits()`):

- `train_teacher`: `keras_custom.recipes.classifiers.build_classifier()`
  trained on all the training labels;
- `build_student`: the student, an eighth of the teacher's size;
- `train_distiller`: the teacher distilled into the student by a
  `Distiller`, and `train_student_alone`, its baseline: the same student,
  optimizer and epochs on the labels alone.

Example:

```python
from keras_custom.recipes import classifiers, data, distillation

teacher = distillation.train_teacher(seed=0)
distilled = distillation.train_distiller(seed=0, teacher=teacher)
alone = distillation.train_student_alone(seed=0)
_, test_digits = data.load_digits()
[classifiers.accuracy(model, *test_digits) for model in (distilled, alone)]
```
"""

import functools

import keras

from keras_custom.recipes.cache import cached_training
from keras_custom.recipes.classifiers import (
    SupervisedRecipe,
    build_classifier,
    classifier_head,
    train_classifier,
)
from keras_custom.recipes.data import IMAGE_SHAPE, load_digits
from keras_custom.semi_supervised import Distiller

#: Recipe of `train_teacher` (the `build_classifier` network, all labels).
TEACHER_EPOCHS = 30
TEACHER_BATCH_SIZE = 64
TEACHER_LEARNING_RATE = 2e-3
TEACHER_RECIPE = SupervisedRecipe(
    TEACHER_LEARNING_RATE, TEACHER_BATCH_SIZE, TEACHER_EPOCHS
)

#: Recipe of `train_student_alone` and `train_distiller` (same for both).
STUDENT_FILTERS = 8
STUDENT_UNITS = 32
STUDENT_EPOCHS = 30
STUDENT_BATCH_SIZE = 64
STUDENT_LEARNING_RATE = 2e-3
DISTILLER_TEMPERATURE = 4.0
DISTILLER_ALPHA = 0.1
STUDENT_RECIPE = SupervisedRecipe(
    STUDENT_LEARNING_RATE, STUDENT_BATCH_SIZE, STUDENT_EPOCHS
)


def build_student(
    filters: int = STUDENT_FILTERS, units: int = STUDENT_UNITS, name: str = "student"
) -> keras.Model:
    """Builds the small student of the `Distiller`.

    One 3x3 ReLU convolution of `filters` (same padding), a 2x2 max
    pooling, a dense ReLU layer of `units` and 10 logits: 4,538 weights,
    an eighth of those of `build_classifier()`, the teacher.

    Args:
        filters: Filters of the convolution.
        units: Width of the dense hidden layer.
        name: Name of the model.

    Returns:
        The student, a functional `keras.Model` of images `(batch, 8, 8, 1)`
        to `(batch, 10)` logits.
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv")(
        images
    )
    return keras.Model(images, classifier_head(x, units), name=name)


@cached_training
def train_teacher(seed: int = 0, verbose: int = 0) -> keras.Model:
    """Trains `build_classifier()` on all the training digits: the teacher.

    `TEACHER_RECIPE`: Adam with learning rate `TEACHER_LEARNING_RATE`,
    batches of `TEACHER_BATCH_SIZE`, `TEACHER_EPOCHS` epochs.

    Args:
        seed: Random seed of the teacher's initialization and the shuffling.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained teacher, a classifier named `"teacher"` (logits).
    """
    teacher = functools.partial(build_classifier, name="teacher")
    return train_classifier(teacher, seed, TEACHER_RECIPE, verbose)


@cached_training
def train_student_alone(seed: int = 0, verbose: int = 0) -> keras.Model:
    """Trains `build_student()` on the training digits' labels alone.

    The baseline of `train_distiller`, with the same `STUDENT_RECIPE`:
    optimizer (Adam, `STUDENT_LEARNING_RATE`), batches
    (`STUDENT_BATCH_SIZE`) and epochs (`STUDENT_EPOCHS`).

    Args:
        seed: Random seed of the student's initialization and the shuffling.
        verbose: Verbosity of `fit()`.

    Returns:
        The student, trained on the labels alone (logits).
    """
    return train_classifier(build_student, seed, STUDENT_RECIPE, verbose)


@cached_training
def train_distiller(
    seed: int = 0, teacher: keras.Model | None = None, verbose: int = 0
) -> Distiller:
    """Distills a teacher into `build_student()` on the training digits.

    A `Distiller` with temperature `DISTILLER_TEMPERATURE` and alpha
    `DISTILLER_ALPHA`, trained as `train_student_alone` trains the student
    alone: Adam with `STUDENT_LEARNING_RATE`, batches of
    `STUDENT_BATCH_SIZE`, `STUDENT_EPOCHS` epochs.

    Args:
        seed: Random seed of the student's initialization and the
            shuffling (and of the teacher, when it is trained here).
        teacher: A trained classifier returning logits; `None` trains one
            with `train_teacher(seed)`.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `Distiller`; `distiller.student` (or `distiller` itself)
        is the distilled student.
    """
    if teacher is None:
        teacher = train_teacher(seed)
    keras.utils.set_random_seed(seed)
    (x_train, y_train), _ = load_digits()
    distiller = Distiller(
        teacher=teacher,
        student=build_student(),
        temperature=DISTILLER_TEMPERATURE,
        alpha=DISTILLER_ALPHA,
        optimizer=keras.optimizers.Adam(STUDENT_LEARNING_RATE),
        name="distiller",
    )
    distiller.compile(metrics=["accuracy"])
    distiller.fit(
        x_train,
        y_train,
        batch_size=STUDENT_BATCH_SIZE,
        epochs=STUDENT_EPOCHS,
        verbose=verbose,
    )
    return distiller
