"""The self-supervised models learn useful representations of the digits.

Each model is trained on the 1,437 training images, without their labels, by
its recipe in `keras_custom.recipes.self_supervised` (the one the demos and
notebooks use), with a fixed seed. Then, with the encoder frozen:

- no collapse: the per-dimension standard deviation of the l2-normalized
  features of the training digits, averaged over the `d` dimensions, is at
  least `0.5 / sqrt(d)`;
- the 5-nearest-neighbour (cosine) accuracy on the test digits, with all
  training digits as neighbours, is at least 0.92;
- a linear classifier fit on 10 labeled training digits per class (chosen
  with a fixed seed, features standardized) reaches at least 0.80 test
  accuracy, and at least 15 points more than the same encoder at random
  initialization (the same architecture and seed, untrained).

VICReg, added later, has higher bars (`STRICTER`), set from its recipe over
seeds 0 to 6 (2-core CPU, Keras 3.15.1, TensorFlow 2.21): 5-NN accuracy
0.981 to 0.994 (bar 0.95), few-shot accuracy 0.958 to 0.969 (bar 0.90), 21
to 29 points above the untrained encoder's 0.675 to 0.753 (bar 15), mean
embedding std 0.163 to 0.167 and smallest std of a dimension 0.094 to 0.123
for a collapse threshold of 0.088 (bar: every dimension at least half the
threshold, 0.044); 42 to 49 s of training under a load average of 4 to 6.
"""

import numpy as np
import pytest

from keras_custom.recipes import self_supervised as recipes
from keras_custom.recipes import self_supervised_scores as scores

SEED = 0
FEW_SHOT_SEED = 0

COLLAPSE_STD_FACTOR = 0.5
MIN_KNN_ACCURACY = 0.92
MIN_FEW_SHOT_ACCURACY = 0.80
MIN_FEW_SHOT_GAIN = 0.15
#: Higher bars of one model, where its seeds clear them with a margin (see
#: above); `min_std_factor`: every dimension's std at least that over sqrt(d).
STRICTER = {
    "vicreg": {"knn": 0.95, "few_shot": 0.90, "min_std_factor": 0.25},
}

# ----------------------------------------------------------------------
# The scores themselves (fast)
# ----------------------------------------------------------------------


def test_embedding_std_of_collapsed_and_spread_features():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, 16))
    spread = scores.embedding_std(features)
    assert spread["threshold"] == pytest.approx(0.5 / 4)
    assert spread["mean"] == pytest.approx(1 / 4, rel=0.05)
    # The minimum over the dimensions, against NumPy on the unit vectors.
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    assert spread["min"] == pytest.approx(np.min(np.std(unit, axis=0)), rel=1e-5)
    # A dead dimension (always 0) is the minimum.
    dead = np.concatenate([features[:, :15], np.zeros((4000, 1))], axis=1)
    assert scores.embedding_std(dead)["min"] == 0.0
    # A point (any scale) and a constant offset with tiny noise collapse.
    assert scores.embedding_std(np.full((100, 16), 3.0))["mean"] == 0.0
    offset = 10.0 + 0.01 * rng.normal(size=(1000, 16))
    assert scores.embedding_std(offset)["mean"] < 0.01 * spread["threshold"]


def test_knn_accuracy_on_clusters():
    rng = np.random.default_rng(0)
    centers = 5.0 * np.eye(4)
    train_labels, test_labels = rng.integers(0, 4, 200), rng.integers(0, 4, 50)
    train = centers[train_labels] + rng.normal(size=(200, 4))
    test = centers[test_labels] + rng.normal(size=(50, 4))
    assert scores.knn_accuracy(train, train_labels, test, test_labels) >= 0.95
    shuffled = rng.permutation(train_labels)
    assert scores.knn_accuracy(train, shuffled, test, test_labels) < 0.6
    # k = 1 with the test points among the training points is exact.
    assert scores.knn_accuracy(train, train_labels, train, train_labels, k=1) == 1


def test_few_shot_linear_accuracy_on_clusters():
    rng = np.random.default_rng(0)
    centers = 3.0 * rng.normal(size=(10, 8))
    train_labels = np.repeat(np.arange(10), 30)
    test_labels = rng.integers(0, 10, 200)
    train = centers[train_labels] + rng.normal(size=(300, 8))
    test = centers[test_labels] + rng.normal(size=(200, 8))
    accuracy = scores.few_shot_linear_accuracy(train, train_labels, test, test_labels)
    assert accuracy >= 0.9
    again = scores.few_shot_linear_accuracy(train, train_labels, test, test_labels)
    assert again == accuracy
    noise = rng.normal(size=(300, 8))
    chance = scores.few_shot_linear_accuracy(noise, train_labels, test, test_labels)
    assert chance < 0.3
    with pytest.raises(ValueError, match="examples"):
        scores.few_shot_linear_accuracy(
            train, train_labels, test, test_labels, per_class=31
        )


def test_untrained_encoder_is_the_same_for_every_model():
    """The random-initialization baseline depends on the seed alone."""
    weights = [
        recipes.build_self_supervised(name, seed=SEED).encoder.get_weights()
        for name in recipes.ALL_MODEL_NAMES
    ]
    for other in weights[1:]:
        for first, second in zip(weights[0], other, strict=True):
            np.testing.assert_array_equal(first, second)


# ----------------------------------------------------------------------
# Trained models (slow)
# ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "simclr",
        "simsiam",
        "byol",
        "barlow_twins",
        "vicreg",
    ],
)
def test_representation_quality(name):
    model = recipes.train_self_supervised(name, seed=SEED)
    assert np.all(np.isfinite(model.history.history["loss"]))
    trained = scores.evaluate_encoder(model, few_shot_seed=FEW_SHOT_SEED)
    untrained = recipes.build_self_supervised(name, seed=SEED)
    baseline = scores.evaluate_encoder(untrained, few_shot_seed=FEW_SHOT_SEED)
    report = {
        "trained": {key: round(value, 4) for key, value in trained.items()},
        "untrained": {key: round(value, 4) for key, value in baseline.items()},
    }

    dims = model.encoder.outputs[0].shape[-1]
    assert trained["collapse_threshold"] == pytest.approx(
        COLLAPSE_STD_FACTOR / np.sqrt(dims)
    )
    assert trained["embedding_std"] >= COLLAPSE_STD_FACTOR / np.sqrt(dims), report
    bars = STRICTER.get(name, {})
    assert trained["knn_accuracy"] >= bars.get("knn", MIN_KNN_ACCURACY), report
    assert trained["few_shot_accuracy"] >= bars.get(
        "few_shot", MIN_FEW_SHOT_ACCURACY
    ), report
    if "min_std_factor" in bars:
        minimum = bars["min_std_factor"] / np.sqrt(dims)
        assert trained["min_embedding_std"] >= minimum, report
    assert (
        trained["few_shot_accuracy"]
        >= baseline["few_shot_accuracy"] + MIN_FEW_SHOT_GAIN
    ), report
