"""The generative models learn the digits, as judged by a digits classifier.

Each model is trained on the 1,437 training digits by its recipe in
`keras_custom.recipes.generative` (the one the demos and notebooks use), with
a fixed seed, and judged by a small classifier trained on the real digits (the
judge of `keras_custom.recipes.generative_scores`, at least 0.95 test
accuracy), on 1,000 generated digits:

- GAN, WGANGP and ConditionalGAN: the judge's mean maximum class probability
  is at least 0.8; its predicted classes cover all 10 digits, with a
  normalized entropy (entropy of the class histogram over log(10)) of at
  least 0.9; the Fréchet distance from the training digits in the judge's
  feature space is at most a quarter of that of uniform-noise images. The
  ConditionalGAN's samples are the judge's class for at least 80% of the
  requested labels.
- VAE: the mean squared error of its reconstructions of the test digits is
  at most half that of predicting the mean training image; digits decoded
  from the prior reach a mean maximum class probability of at least 0.7.
"""

import numpy as np
import pytest

from keras_custom import GAN, VAE, WGANGP, ConditionalGAN
from keras_custom.recipes import data, generative, generative_scores

SEED = 0
SAMPLES = 1000
SAMPLE_SEED = 1

JUDGE_MIN_ACCURACY = 0.95
GAN_MIN_MEAN_MAX_PROBABILITY = 0.8
MIN_CLASS_ENTROPY = 0.9
MAX_FRECHET_RATIO = 0.25
MIN_LABEL_AGREEMENT = 0.8
VAE_MAX_ERROR_RATIO = 0.5
VAE_MIN_MEAN_MAX_PROBABILITY = 0.7


@pytest.fixture(scope="module")
def judge():
    """The digits classifier and its feature model, trained once per module."""
    classifier, feature_model = generative_scores.train_judge(seed=SEED)
    accuracy = generative_scores.judge_accuracy(classifier)
    assert accuracy >= JUDGE_MIN_ACCURACY, f"judge test accuracy {accuracy:.4f}"
    return classifier, feature_model


@pytest.fixture(scope="module")
def digit_images():
    """`(x_train, x_test)`: flat training and test digits in [0, 1]."""
    (x_train, _), (x_test, _) = generative.load_digits()
    return x_train, x_test


def _judge(judge, samples, real, labels=None):
    classifier, feature_model = judge
    assert samples.shape == (SAMPLES, data.NUM_PIXELS)
    assert np.all(np.isfinite(samples))
    return generative_scores.judge_scores(
        classifier, feature_model, samples, real=real, labels=labels
    )


def _assert_digits_like(scores):
    report = {name: round(value, 4) for name, value in scores.items()}
    assert scores["mean_max_probability"] >= GAN_MIN_MEAN_MAX_PROBABILITY, report
    assert scores["classes_covered"] == data.NUM_CLASSES, report
    assert scores["class_entropy"] >= MIN_CLASS_ENTROPY, report
    assert (
        scores["frechet_distance"]
        <= MAX_FRECHET_RATIO * scores["noise_frechet_distance"]
    ), report


# ----------------------------------------------------------------------
# The scores themselves (fast)
# ----------------------------------------------------------------------


def test_class_entropy_is_normalized():
    assert generative_scores.class_entropy(np.arange(1000) % 10) == pytest.approx(1.0)
    assert generative_scores.class_entropy(np.full(1000, 3)) == pytest.approx(0.0)
    # Half the samples in each of two classes: log(2) / log(10).
    assert generative_scores.class_entropy(np.arange(1000) % 2) == pytest.approx(
        np.log(2) / np.log(10)
    )


def test_mean_max_probability():
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7]])
    assert generative_scores.mean_max_probability(probabilities) == pytest.approx(0.8)


def test_uniform_noise_images():
    noise = generative_scores.uniform_noise(SAMPLES, seed=0)
    assert noise.shape == (SAMPLES, 64)
    assert noise.min() >= 0.0 and noise.max() <= 1.0
    assert 0.45 < noise.mean() < 0.55


# ----------------------------------------------------------------------
# Trained models (slow)
# ----------------------------------------------------------------------


@pytest.mark.slow
def test_judge_classifies_the_test_digits(judge, digit_images):
    classifier, feature_model = judge
    assert generative_scores.judge_accuracy(classifier) >= JUDGE_MIN_ACCURACY
    # The real test digits themselves pass every check the GANs must pass.
    x_train, x_test = digit_images
    scores = generative_scores.judge_scores(
        classifier, feature_model, x_test, real=x_train
    )
    assert scores["mean_max_probability"] >= 0.9
    assert scores["class_entropy"] >= 0.99
    assert scores["frechet_distance"] <= 0.05 * scores["noise_frechet_distance"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe, model_class",
    [(generative.train_gan, GAN), (generative.train_wgan_gp, WGANGP)],
    ids=["gan", "wgan_gp"],
)
def test_gan_generates_all_ten_digits(recipe, model_class, judge, digit_images):
    model = recipe(seed=SEED)
    assert type(model) is model_class
    samples = model.generate(SAMPLES, seed=SAMPLE_SEED)
    _assert_digits_like(_judge(judge, samples, real=digit_images[0]))


@pytest.mark.slow
def test_conditional_gan_generates_the_requested_digits(judge, digit_images):
    model = generative.train_conditional_gan(seed=SEED)
    assert type(model) is ConditionalGAN
    labels = np.arange(SAMPLES) % data.NUM_CLASSES  # 100 of each digit
    samples = model.generate(labels, seed=SAMPLE_SEED)
    scores = _judge(judge, samples, real=digit_images[0], labels=labels)
    _assert_digits_like(scores)
    assert scores["label_agreement"] >= MIN_LABEL_AGREEMENT, scores


@pytest.mark.slow
def test_vae_reconstructs_and_generates_digits(judge, digit_images):
    x_train, x_test = digit_images
    model = generative.train_vae(seed=SEED)
    assert type(model) is VAE

    error, mean_image_error = generative_scores.reconstruction_errors(
        model, x_train, x_test
    )
    assert error <= VAE_MAX_ERROR_RATIO * mean_image_error, (error, mean_image_error)

    samples = model.generate(SAMPLES, seed=SAMPLE_SEED)
    scores = _judge(judge, samples, real=x_train)
    assert scores["mean_max_probability"] >= VAE_MIN_MEAN_MAX_PROBABILITY, scores
