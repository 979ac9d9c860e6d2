"""DiffusionModel learns the digits, judged as the GAN is.

The models are trained by `keras_custom.recipes.diffusion` on the 1,437
training digits (scaled to [-1, 1]) with a fixed seed, and 1,000 digits
sampled with 50 DDIM steps are judged by the classifier of
`keras_custom.recipes.generative_scores` (the judge of the GAN's quality
test):

- the unconditional model: the judge's mean maximum class probability and
  the Fréchet distance to the training digits in the judge's feature space
  are at least as good as those of the GAN of
  `keras_custom.recipes.generative.train_gan` judged in the same run (the
  recipe cache shares it with the GAN's quality test), and within
  `MIN_MEAN_MAX_PROBABILITY` and `MAX_FRECHET_DISTANCE`;
- the class-conditional model with classifier-free guidance (`w = 1`): the
  judge's class is the requested one for at least 95% of the samples.

Thresholds are set from the recipe's seeds 0, 1 and 2 with a margin
(`SEED_SCORES`).
The sampling time of 1,000 digits and the time of one training epoch are
measured and printed (`-s` shows them).
"""

import time

import keras
import numpy as np
import pytest

from keras_custom import DiffusionModel
from keras_custom.recipes import diffusion, generative, generative_scores

SEED = 0
SAMPLES = 1000
SAMPLE_SEED = 1

#: Scores of the recipes' seeds 0, 1, 2 (sample seed 1), measured on this
#: project's 2-core machine (2026-12-01, TensorFlow 2.21, Keras 3.15):
#: the unconditional model's mean maximum class probability and Fréchet
#: distance, the conditional model's label agreement, and the GAN's scores.
SEED_SCORES = {
    "diffusion_mean_max_probability": (0.8939, 0.8989, 0.8932),
    "diffusion_frechet_distance": (0.4976, 0.5985, 0.5763),
    "conditional_label_agreement": (0.985, 0.990, 0.984),
    "gan_mean_max_probability": (0.8797, 0.8898, 0.8757),
    "gan_frechet_distance": (1.2001, 1.4707, 1.2469),
}
#: The unconditional model's thresholds: the seeds' worst with a margin.
MIN_MEAN_MAX_PROBABILITY = 0.87
MAX_FRECHET_DISTANCE = 0.8
#: The conditional model's agreement with the requested labels (the issue).
MIN_LABEL_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def judge():
    return generative_scores.train_judge(seed=SEED)


@pytest.fixture(scope="module")
def x_train():
    (x_train, _), _ = generative.load_digits()
    return x_train


def _scores(judge, samples, real, labels=None):
    assert samples.shape == (SAMPLES, 64)
    assert np.all(np.isfinite(samples))
    classifier, feature_model = judge
    scores = generative_scores.judge_scores(
        classifier, feature_model, samples, real=real, labels=labels
    )
    return {name: round(value, 4) for name, value in scores.items()}


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def _epoch_seconds() -> float:
    """Seconds of the recipe's second training epoch (the first traces)."""
    keras.utils.set_random_seed(SEED)
    model = diffusion.build_diffusion(SEED)
    model.compile()
    (x_train, _), _ = generative.load_digits()
    timer = _EpochTimer()
    model.fit(
        diffusion.to_model_range(x_train),
        batch_size=diffusion.DIFFUSION_BATCH_SIZE,
        epochs=2,
        verbose=0,
        callbacks=[timer],
    )
    return timer.seconds


@pytest.mark.slow
def test_diffusion_generates_digits_as_well_as_the_gan(judge, x_train):
    gan = generative.train_gan(seed=SEED)
    gan_scores = _scores(judge, gan.generate(SAMPLES, seed=SAMPLE_SEED), x_train)

    model = diffusion.train_diffusion(seed=SEED)
    assert type(model) is DiffusionModel
    diffusion.generate_digits(model, 10, seed=0)  # traces the sampler
    start = time.perf_counter()
    samples = diffusion.generate_digits(model, SAMPLES, seed=SAMPLE_SEED)
    sampling_seconds = time.perf_counter() - start
    scores = _scores(judge, samples, x_train)
    print(
        f"diffusion {scores}\ngan {gan_scores}\nsampling 1,000 digits with "
        f"50 DDIM steps: {sampling_seconds:.2f} s; one training epoch: "
        f"{_epoch_seconds():.2f} s"
    )
    report = {"diffusion": scores, "gan": gan_scores}
    assert scores["mean_max_probability"] >= MIN_MEAN_MAX_PROBABILITY, report
    assert scores["frechet_distance"] <= MAX_FRECHET_DISTANCE, report
    assert scores["classes_covered"] == 10, report
    # The criterion: at least as good as the GAN (per seed, the
    # diffusion model's probability is 0.009 to 0.018 higher and its
    # distance 0.67 to 0.87 lower).
    assert scores["mean_max_probability"] >= gan_scores["mean_max_probability"], report
    assert scores["frechet_distance"] <= gan_scores["frechet_distance"], report


@pytest.mark.slow
def test_conditional_diffusion_generates_the_requested_digits(judge, x_train):
    model = diffusion.train_conditional_diffusion(seed=SEED)
    labels = np.arange(SAMPLES) % 10  # 100 of each digit
    samples = diffusion.generate_digits(model, SAMPLES, seed=SAMPLE_SEED, labels=labels)
    scores = _scores(judge, samples, x_train, labels=labels)
    print(f"conditional diffusion {scores}")
    assert scores["label_agreement"] >= MIN_LABEL_AGREEMENT, scores
