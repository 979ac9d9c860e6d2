"""Robust training works on the digits.

Each model is trained on the 1,437 training digits by its recipe in
`keras_custom.recipes.robust` (the one the notebook uses), with a fixed
seed, and scored on the 360 test digits (pixels in [0, 1]):

- AdversarialModel: its accuracy under FGSM at epsilon 0.1 is at least 20
  points above that of the same network trained normally, and its clean
  accuracy is at least 0.90. The attack is `robust.fgsm_examples`, a plain
  `tf.GradientTape` FGSM, independent of the library's own attack.
- SharpnessAwareModel: clean test accuracy at least 0.95.
"""

import keras
import numpy as np
import pytest

from keras_custom.recipes import classifiers, data, robust
from keras_custom.robust import AdversarialModel, SharpnessAwareModel

SEED = 0
EPSILON = 0.1

ADVERSARIAL_MIN_FGSM_GAIN = 0.20
ADVERSARIAL_MIN_CLEAN_ACCURACY = 0.90
SHARPNESS_AWARE_MIN_ACCURACY = 0.95
#: Accuracies are multiples of 1/360: compare them up to rounding.
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def test_digits():
    """`(x_test, y_test)`: the 360 test digits, `(360, 8, 8, 1)` in [0, 1]."""
    _, (x_test, y_test) = data.load_digits()
    return x_test, y_test


# ----------------------------------------------------------------------
# The independent attack (fast)
# ----------------------------------------------------------------------


def test_fgsm_examples_stay_in_the_ball_and_raise_the_loss(test_digits):
    x_test, y_test = test_digits
    keras.utils.set_random_seed(0)
    model = classifiers.build_classifier()
    x_adv = robust.fgsm_examples(model, x_test, y_test, EPSILON)
    assert x_adv.shape == x_test.shape and x_adv.dtype == np.float32
    assert np.all(np.abs(x_adv - x_test) <= EPSILON + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    # Pixels move by epsilon unless clipped at 0 or 1.
    moved = np.isclose(np.abs(x_adv - x_test), EPSILON, atol=1e-6)
    clipped = (x_adv == 0.0) | (x_adv == 1.0)
    assert np.all(moved | clipped)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(loss(y_test, model(x_adv))) > float(loss(y_test, model(x_test)))


# ----------------------------------------------------------------------
# Trained models (slow)
# ----------------------------------------------------------------------


@pytest.mark.slow
def test_adversarial_training_resists_fgsm(test_digits):
    normal = robust.train_normal(SEED)
    adversarial = robust.train_adversarial(SEED)
    assert isinstance(adversarial, AdversarialModel)
    classifier = adversarial.model
    scores = {
        "normal_clean": classifiers.accuracy(normal, *test_digits),
        "normal_fgsm": robust.fgsm_accuracy(normal, *test_digits, EPSILON),
        "adversarial_clean": classifiers.accuracy(classifier, *test_digits),
        "adversarial_fgsm": robust.fgsm_accuracy(classifier, *test_digits, EPSILON),
    }
    report = {name: round(value, 4) for name, value in scores.items()}
    assert (
        scores["adversarial_fgsm"] - scores["normal_fgsm"]
        >= ADVERSARIAL_MIN_FGSM_GAIN - TOLERANCE
    ), report
    assert scores["adversarial_clean"] >= ADVERSARIAL_MIN_CLEAN_ACCURACY, report
    # The library's own FGSM, in `evaluate()`, agrees with the independent one.
    x_test, y_test = test_digits
    logs = adversarial.evaluate(
        x_test, y_test, batch_size=len(x_test), return_dict=True, verbose=0
    )
    assert logs["adversarial_accuracy"] == pytest.approx(
        scores["adversarial_fgsm"], abs=0.01
    ), report
    assert logs["clean_accuracy"] == pytest.approx(
        scores["adversarial_clean"], abs=1e-6
    ), report


@pytest.mark.slow
def test_sharpness_aware_model_classifies_the_test_digits(test_digits):
    model = robust.train_sharpness_aware(SEED)
    assert isinstance(model, SharpnessAwareModel)
    accuracy = classifiers.accuracy(model.model, *test_digits)
    assert accuracy >= SHARPNESS_AWARE_MIN_ACCURACY, f"accuracy {accuracy:.4f}"
