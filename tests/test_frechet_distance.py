"""FrechetDistance against a NumPy/SciPy reference."""

import keras
import numpy as np
import pytest
import scipy.linalg

from keras_custom.metrics import FrechetDistance


def scipy_frechet_distance(real, generated):
    """The FID formula as the reference implementations write it."""
    mu_r, mu_g = real.mean(axis=0), generated.mean(axis=0)
    cov_r = np.cov(real, rowvar=False)
    cov_g = np.cov(generated, rowvar=False)
    root = scipy.linalg.sqrtm(cov_r @ cov_g).real
    return float(
        np.sum((mu_r - mu_g) ** 2)
        + np.trace(cov_r)
        + np.trace(cov_g)
        - 2 * np.trace(root)
    )


def feature_model(dim=6):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(dim, activation="tanh")]
    )


def test_streamed_batches_equal_scipy_on_all_features():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 10)).astype("float32")
    generated = (rng.normal(size=(250, 10)) * 1.5 + 0.3).astype("float32")
    model = feature_model()
    metric = FrechetDistance(model)
    for start in range(0, 300, 64):  # uneven batches, real and generated apart
        metric.update_state(real=real[start : start + 64])
    for start in range(0, 250, 100):
        metric.update_state(generated=generated[start : start + 100])
    expected = scipy_frechet_distance(
        np.asarray(model(real), "float64"), np.asarray(model(generated), "float64")
    )
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-6)


def test_known_gaussians_and_reset():
    # N(0, I) against N(m, 4 I) in d dimensions: |m|^2 + d (1 + 4 - 2 * 2).
    rng = np.random.default_rng(1)
    dim, count = 3, 200_000
    identity = keras.Sequential([keras.Input((dim,)), keras.layers.Identity()])
    metric = FrechetDistance(identity)
    shift = np.array([1.0, -2.0, 0.5])
    metric.update_state(
        real=rng.normal(size=(count, dim)),
        generated=2 * rng.normal(size=(count, dim)) + shift,
    )
    np.testing.assert_allclose(float(metric.result()), shift @ shift + dim, rtol=0.02)
    metric.reset_state()
    same = rng.normal(size=(500, dim))
    metric.update_state(real=same, generated=same)
    assert abs(float(metric.result())) < 1e-8


def test_config_round_trip():
    metric = FrechetDistance(feature_model(), name="fd")
    clone = FrechetDistance.from_config(metric.get_config())
    assert clone.name == "fd" and clone.feature_dim == 6


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="feature_dim"):
        FrechetDistance(keras.layers.Dense(3))
    metric = FrechetDistance(feature_model())
    with pytest.raises(ValueError, match="real.*generated"):
        metric.update_state()
    with pytest.raises(ValueError, match="sample_weight"):
        metric.update_state(np.zeros((2, 10)), np.zeros((2, 10)), np.ones(2))
    wrong = FrechetDistance(feature_model(), feature_dim=4)
    with pytest.raises(ValueError, match="6 features"):
        wrong.update_state(real=np.zeros((2, 10)))
