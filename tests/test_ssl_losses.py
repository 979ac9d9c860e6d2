"""The self-supervised losses against plain NumPy references (to 1e-5)."""

import keras
import numpy as np
import pytest

from keras_custom.losses import BarlowTwinsLoss, NegativeCosineSimilarity, NTXent


def views(count=12, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(count, dim))
    return z1, z1 + 0.5 * rng.normal(size=(count, dim))


def numpy_nt_xent(z1, z2, temperature):
    """SimCLR's algorithm 1, one anchor at a time."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        similarities = np.array(
            [z[i] @ z[k] / temperature for k in range(2 * n) if k != i]
        )
        others = [k for k in range(2 * n) if k != i]
        target = similarities[others.index(positive)]
        losses.append(-target + np.log(np.sum(np.exp(similarities))))
    return np.mean(losses)


def numpy_barlow_twins(z1, z2, redundancy_weight):
    """The paper's pseudo-code (torch's std is unbiased)."""
    n = len(z1)
    z1 = (z1 - z1.mean(0)) / z1.std(0, ddof=1)
    z2 = (z2 - z2.mean(0)) / z2.std(0, ddof=1)
    c = z1.T @ z2 / n
    on = np.sum((np.diag(c) - 1) ** 2)
    off = np.sum(c**2) - np.sum(np.diag(c) ** 2)
    return on + redundancy_weight * off


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_equals_numpy(temperature):
    z1, z2 = views()
    expected = numpy_nt_xent(z1, z2, temperature)
    np.testing.assert_allclose(
        float(NTXent(temperature)(z1, z2)), expected, rtol=1e-5, atol=1e-5
    )


def test_nt_xent_per_example_weights():
    z1, z2 = views(count=4)
    per_example = NTXent(0.5, reduction="none")(z1, z2)
    assert per_example.shape == (4,)
    np.testing.assert_allclose(
        float(np.mean(per_example)), numpy_nt_xent(z1, z2, 0.5), rtol=1e-5
    )


@pytest.mark.parametrize("redundancy_weight", [0.0, 5e-3, 1.0])
def test_barlow_twins_equals_numpy(redundancy_weight):
    z1, z2 = views(count=32, dim=6)
    expected = numpy_barlow_twins(z1, z2, redundancy_weight)
    np.testing.assert_allclose(
        float(BarlowTwinsLoss(redundancy_weight)(z1, z2)), expected, rtol=1e-5
    )


def test_negative_cosine_similarity_equals_numpy():
    p, z = views()
    cosine = (
        np.sum(p * z, axis=1) / np.linalg.norm(p, axis=1) / np.linalg.norm(z, axis=1)
    )
    np.testing.assert_allclose(
        float(NegativeCosineSimilarity()(z, p)), -np.mean(cosine), rtol=1e-5
    )


@pytest.mark.parametrize(
    "loss",
    [NTXent(0.2), BarlowTwinsLoss(0.01), NegativeCosineSimilarity()],
    ids=lambda loss: type(loss).__name__,
)
def test_losses_serialize(loss):
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    z1, z2 = views()
    np.testing.assert_allclose(float(clone(z1, z2)), float(loss(z1, z2)), rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        NTXent(0.0)
    with pytest.raises(ValueError, match="redundancy_weight"):
        BarlowTwinsLoss(-1.0)
