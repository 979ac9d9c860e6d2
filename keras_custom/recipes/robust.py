"""Recipes of robust training on the 8x8 digits, and an FGSM attack to score them.

The quality tests of `AdversarialModel` and `SharpnessAwareModel` and the
notebook that shows them share this module, so that they all train exactly
the same models the same way. The digits are images of shape `(8, 8, 1)`
with pixels in [0, 1] (`keras_custom.recipes.data.load_digits()`), and every
recipe trains the classifier of
`keras_custom.recipes.classifiers.build_classifier`:

- `train_normal`: the baseline, trained normally;
- `train_adversarial`: an `AdversarialModel` trained on FGSM examples too
  (`build_adversarial`);
- `train_sharpness_aware`: a `SharpnessAwareModel`
  (`build_sharpness_aware`).

`fgsm_examples` is a plain `tf.GradientTape` FGSM attack, independent of
`AdversarialModel`'s own, and `fgsm_accuracy` a model's accuracy on them.

Example:

```python
from keras_custom.recipes import data, robust

_, (x_test, y_test) = data.load_digits()
normal = robust.train_normal(seed=0)
adversarial = robust.train_adversarial(seed=0)
epsilon = robust.ADVERSARIAL_EPSILON
gain = robust.fgsm_accuracy(adversarial, x_test, y_test, epsilon) - (
    robust.fgsm_accuracy(normal, x_test, y_test, epsilon)
)
```
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_custom.recipes.cache import cached_training
from keras_custom.recipes.classifiers import (
    SupervisedRecipe,
    accuracy,
    build_classifier,
    train_classifier,
)
from keras_custom.robust import AdversarialModel, SharpnessAwareModel

#: Recipe of `train_normal`, `train_adversarial`, `train_sharpness_aware`.
ROBUST_EPOCHS = 30
ROBUST_BATCH_SIZE = 64
ROBUST_LEARNING_RATE = 2e-3
ADVERSARIAL_EPSILON = 0.1
ADVERSARIAL_WEIGHT = 0.5
SHARPNESS_RHO = 0.05
ROBUST_RECIPE = SupervisedRecipe(ROBUST_LEARNING_RATE, ROBUST_BATCH_SIZE, ROBUST_EPOCHS)


def build_adversarial(seed: int = 0) -> AdversarialModel:
    """Builds the `AdversarialModel` of `train_adversarial`, not compiled.

    `build_classifier()` trained on FGSM examples at `ADVERSARIAL_EPSILON`
    (pixels in [0, 1]) too, with adversarial weight `ADVERSARIAL_WEIGHT`.

    Args:
        seed: Seed of the model's attacks.

    Returns:
        The `AdversarialModel`, named `"adversarial"`.
    """
    return AdversarialModel(
        build_classifier(),
        epsilon=ADVERSARIAL_EPSILON,
        attack="fgsm",
        adversarial_weight=ADVERSARIAL_WEIGHT,
        input_range=(0.0, 1.0),
        seed=seed,
        name="adversarial",
    )


def build_sharpness_aware() -> SharpnessAwareModel:
    """Builds the `SharpnessAwareModel` of `train_sharpness_aware`, not compiled.

    `build_classifier()` trained by sharpness-aware minimization with radius
    `SHARPNESS_RHO`.

    Returns:
        The `SharpnessAwareModel`, named `"sam"`.
    """
    return SharpnessAwareModel(build_classifier(), rho=SHARPNESS_RHO, name="sam")


@cached_training
def train_normal(seed: int = 0, verbose: int = 0) -> keras.Model:
    """Trains `build_classifier()` normally on the training digits.

    The baseline of `train_adversarial` and `train_sharpness_aware`:
    `ROBUST_RECIPE`, Adam with learning rate `ROBUST_LEARNING_RATE`, batches
    of `ROBUST_BATCH_SIZE`, `ROBUST_EPOCHS` epochs.

    Args:
        seed: Random seed of the initialization and the shuffling.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained classifier (logits).
    """
    return train_classifier(build_classifier, seed, ROBUST_RECIPE, verbose)


@cached_training
def train_adversarial(seed: int = 0, verbose: int = 0) -> AdversarialModel:
    """Trains `build_adversarial(seed)` on the training digits.

    Adversarial training with FGSM examples, otherwise as `train_normal`.

    Args:
        seed: Random seed of the initialization, the shuffling and the
            attacks.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `AdversarialModel`; `model.model` (or `model` itself) is
        the classifier.
    """
    build = functools.partial(build_adversarial, seed)
    return train_classifier(build, seed, ROBUST_RECIPE, verbose, metrics=None)


@cached_training
def train_sharpness_aware(seed: int = 0, verbose: int = 0) -> SharpnessAwareModel:
    """Trains `build_sharpness_aware()` on the training digits.

    Sharpness-aware minimization, otherwise as `train_normal`.

    Args:
        seed: Random seed of the initialization and the shuffling.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `SharpnessAwareModel`; `model.model` (or `model`
        itself) is the classifier.
    """
    return train_classifier(build_sharpness_aware, seed, ROBUST_RECIPE, verbose)


def fgsm_examples(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    epsilon: float,
    from_logits: bool = True,
    input_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Adversarial examples by the fast gradient sign method (FGSM).

    A plain `tf.GradientTape` implementation, independent of
    `AdversarialModel`'s: each image moves by `epsilon` along the sign of
    the gradient of its cross-entropy loss, with the model in inference
    mode, then is clipped to `input_range`.

    Args:
        model: A model mapping images to logits (or probabilities with
            `from_logits=False`).
        x: Images, `(count, 8, 8, 1)`.
        y: Integer class ids, `(count,)`.
        epsilon: Size of the perturbation of every pixel (L-infinity).
        from_logits: Whether the model returns logits.
        input_range: `(low, high)` bounds of the pixels.

    Returns:
        The adversarial images, a float32 array of the shape of `x`.
    """
    x = tf.convert_to_tensor(x, "float32")
    y = tf.convert_to_tensor(np.asarray(y).reshape(-1), "int32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = model(x, training=False)
        loss = tf.reduce_sum(
            keras.losses.sparse_categorical_crossentropy(
                y, outputs, from_logits=from_logits
            )
        )
    gradient = tape.gradient(loss, x)
    adversarial = tf.clip_by_value(x + epsilon * tf.sign(gradient), *input_range)
    return adversarial.numpy()


def fgsm_accuracy(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    epsilon: float,
    from_logits: bool = True,
) -> float:
    """Accuracy of a model on FGSM examples of `(x, y)` (`fgsm_examples`).

    Args:
        model: A model mapping images in [0, 1] to logits (or probabilities
            with `from_logits=False`).
        x: Images, `(count, 8, 8, 1)`.
        y: Integer class ids, `(count,)`.
        epsilon: Size of the perturbation of every pixel.
        from_logits: Whether the model returns logits.

    Returns:
        The fraction of the adversarial images classified as their class.
    """
    adversarial = fgsm_examples(model, x, y, epsilon, from_logits=from_logits)
    return accuracy(model, adversarial, y)
