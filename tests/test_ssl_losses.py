"""The self-supervised losses against plain NumPy references (to 1e-5)."""

import keras
import numpy as np
import pytest

from keras_custom.core import all_gather, input_gradients
from keras_custom.losses import (
    BarlowTwinsLoss,
    NegativeCosineSimilarity,
    NTXent,
    VICRegLoss,
)
from keras_custom.testing import logical_cpus, mirrored_strategy


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


def numpy_vicreg(z1, z2, lam, mu, nu, epsilon=1e-4):
    """Section 3 of the paper, one dimension and one pair at a time.

    The variance term (the hinge on each dimension's regularized standard
    deviation) and the covariance term (the squared off-diagonal covariances
    over d) of each view, with unbiased statistics; the invariance term is
    the mean squared error over all entries (the authors' `F.mse_loss`). As
    in the authors' code, the two views' variance terms are averaged and
    their covariance terms added. Returns the three terms and the total.
    """
    n, d = z1.shape

    def variance(z):
        hinges = [
            max(0.0, 1.0 - np.sqrt(np.var(z[:, j], ddof=1) + epsilon)) for j in range(d)
        ]
        return sum(hinges) / d

    def covariance(z):
        c = np.cov(z, rowvar=False)  # (d, d), divided by n - 1
        return sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d

    invariance = sum(np.sum((z1[i] - z2[i]) ** 2) for i in range(n)) / (n * d)
    v = (variance(z1) + variance(z2)) / 2
    c = covariance(z1) + covariance(z2)
    return {
        "loss": lam * invariance + mu * v + nu * c,
        "invariance_loss": invariance,
        "variance_loss": v,
        "covariance_loss": c,
    }


def vicreg_views(count, dim, scale, seed):
    """Two correlated views whose dimensions have standard deviations `scale`."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(dim) + 0.3 * rng.normal(size=(dim, dim))  # correlated dims
    z1 = rng.normal(size=(count, dim)) @ mixing
    z1 = z1 / z1.std(axis=0, ddof=1) * scale + rng.normal(size=dim)
    return z1, z1 + 0.3 * np.mean(scale) * rng.normal(size=(count, dim))


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


#: (count, dim, per-dimension scale of the views): the variance hinge inactive
#: (every std above 1), active (every std below 1), mixed, and more
#: dimensions than examples.
VICREG_CASES = {
    "inactive": (32, 6, 3.0),
    "active": (16, 4, 0.2),
    "mixed": (64, 8, np.linspace(0.1, 2.5, 8)),
    "wide": (5, 12, np.linspace(0.5, 1.5, 12)),
}


@pytest.mark.parametrize("case", sorted(VICREG_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_vicreg_equals_numpy(case, seed):
    count, dim, scale = VICREG_CASES[case]
    z1, z2 = vicreg_views(count, dim, scale, seed)
    stds = np.concatenate([z1.std(axis=0, ddof=1), z2.std(axis=0, ddof=1)])
    if case == "inactive":
        assert np.all(stds > 1.0)
    elif case == "active":
        assert np.all(stds < 1.0)
    else:
        assert np.any(stds < 1.0) and np.any(stds > 1.0)
    weights = {"invariance_weight": 25.0, "variance_weight": 25.0}
    for loss, (lam, mu, nu) in (
        (VICRegLoss(), (25.0, 25.0, 1.0)),
        (VICRegLoss(2.0, 3.0, 0.5, name="other"), (2.0, 3.0, 0.5)),
        (VICRegLoss(**weights, covariance_weight=0.0), (25.0, 25.0, 0.0)),
    ):
        expected = numpy_vicreg(z1, z2, lam, mu, nu)
        assert (expected["variance_loss"] == 0.0) == (case == "inactive")
        np.testing.assert_allclose(float(loss(z1, z2)), expected["loss"], rtol=1e-5)
        terms = loss.terms(z1, z2)
        assert set(terms) == set(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(
                float(terms[key]), value, rtol=1e-5, atol=1e-7, err_msg=key
            )
    per_batch = VICRegLoss(reduction="none")(z1, z2)
    assert tuple(per_batch.shape) == (1,)


def test_vicreg_epsilon_and_collapse():
    # A collapsed batch: no invariance or covariance loss, the full hinge
    # 1 - sqrt(epsilon) in every dimension, and finite gradients.
    z = np.ones((8, 4), "float32")
    terms = VICRegLoss(epsilon=1e-2).terms(z, z)
    np.testing.assert_allclose(float(terms["variance_loss"]), 0.9, rtol=1e-6)
    assert float(terms["invariance_loss"]) == float(terms["covariance_loss"]) == 0.0
    _, gradients = input_gradients(lambda t: VICRegLoss()(t, t + 1.0), z)
    assert np.all(np.isfinite(np.asarray(gradients)))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="on JAX a step sees the global batch (`all_gather` is the identity); "
    "the conformance harness checks DataParallel against one device",
)
@pytest.mark.parametrize(
    "loss",
    [VICRegLoss(), BarlowTwinsLoss(0.01)],
    ids=lambda loss: type(loss).__name__,
)
def test_gathered_loss_on_two_replicas_equals_one_device(loss):
    """Projections gathered from two replicas: the loss and gradients of one.

    The models gather their projections with `all_gather` before these
    losses. Keras divides a `Loss` by the replica count under a strategy, so
    the replicas' values add up to the one-device value, and the gradient
    that reaches each replica's own rows is the one-device gradient of them.
    """
    import tensorflow as tf

    devices = logical_cpus()
    # tests/conftest.py splits the CPU in two: a missing device is a failure.
    assert len(devices) >= 2, "needs two logical CPUs: split_cpu(2) in conftest.py"
    strategy = mirrored_strategy(tuple(devices[:2]))
    count, dim = 16, 6
    z1, z2 = vicreg_views(count, dim, np.linspace(0.2, 2.0, dim), seed=3)
    pair = np.concatenate([z1, z2], axis=1).astype("float32")

    def gathered_loss(both):
        return loss(all_gather(both[:, :dim]), all_gather(both[:, dim:]))

    expected, expected_gradient = input_gradients(gathered_loss, pair)
    batch = next(
        iter(
            strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices(pair).batch(count)
            )
        )
    )
    values, gradients = strategy.run(
        tf.function(lambda both: input_gradients(gathered_loss, both)), args=(batch,)
    )
    values = [float(v) for v in strategy.experimental_local_results(values)]
    assert len(values) == 2
    np.testing.assert_allclose(values, [float(expected) / 2] * 2, rtol=1e-5)
    local = [np.asarray(g) for g in strategy.experimental_local_results(gradients)]
    assert [len(g) for g in local] == [count // 2] * 2
    np.testing.assert_allclose(
        np.concatenate(local), np.asarray(expected_gradient), rtol=1e-4, atol=1e-6
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
    [
        NTXent(0.2),
        BarlowTwinsLoss(0.01),
        NegativeCosineSimilarity(),
        VICRegLoss(20.0, 30.0, 0.5, epsilon=1e-3),
    ],
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
    for key in ("invariance_weight", "variance_weight", "covariance_weight"):
        with pytest.raises(ValueError, match=key):
            VICRegLoss(**{key: -1.0})
    with pytest.raises(ValueError, match="epsilon"):
        VICRegLoss(epsilon=0.0)
