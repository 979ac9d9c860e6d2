"""VAE losses against a NumPy computation of the negative ELBO."""

import keras
import numpy as np
import pytest

from keras_custom import VAE
from tests.models import digit_data
from tests.test_generative_conformance import dense_net

LATENT_DIM, SEED, EPSILON = 2, 5, 1e-7


def encoder_decoder():
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    encoder = keras.Model(
        inputs,
        [
            keras.layers.Dense(LATENT_DIM)(hidden),
            keras.layers.Dense(LATENT_DIM)(hidden),
        ],
    )
    return encoder, dense_net(LATENT_DIM, 64, "sigmoid")


def numpy_negative_elbo(encoder, decoder, x, noise, kl_weight, sample_weight=None):
    z_mean, z_log_var = (np.asarray(a, "float64") for a in encoder(x))
    z = z_mean + np.exp(0.5 * z_log_var) * noise
    p = np.clip(
        np.asarray(decoder(z.astype("float32")), "float64"), EPSILON, 1 - EPSILON
    )
    reconstruction = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = -0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=1)
    if sample_weight is not None:
        reconstruction, kl = reconstruction * sample_weight, kl * sample_weight
    reconstruction, kl = reconstruction.mean(), kl.mean()
    return reconstruction + kl_weight * kl, reconstruction, kl


def first_noise(count):
    """The first draw of a fresh seed generator with the model's seed."""
    generator = keras.random.SeedGenerator(SEED)
    return np.asarray(keras.random.normal((count, LATENT_DIM), seed=generator))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_evaluate_equals_numpy_elbo(weighted):
    keras.utils.set_random_seed(0)
    encoder, decoder = encoder_decoder()
    model = VAE(encoder, decoder, kl_weight=0.5, seed=SEED)
    model.compile()
    x, _ = digit_data(32)
    weights = np.linspace(0.5, 2.0, 32).astype("float32") if weighted else None
    # Keras drops `sample_weight` given without `y`; the VAE ignores `y`.
    result = model.evaluate(
        x, x, sample_weight=weights, batch_size=32, verbose=0, return_dict=True
    )
    loss, reconstruction, kl = numpy_negative_elbo(
        encoder, decoder, x.astype("float64"), first_noise(32), 0.5, weights
    )
    np.testing.assert_allclose(result["reconstruction_loss"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(result["kl_loss"], kl, rtol=1e-5)
    np.testing.assert_allclose(result["loss"], loss, rtol=1e-5)


def test_kl_warm_up_follows_the_optimizer_iterations():
    keras.utils.set_random_seed(0)
    encoder, decoder = encoder_decoder()
    warm_up = keras.optimizers.schedules.PolynomialDecay(0.0, 4, 1.0)
    model = VAE(encoder, decoder, kl_weight=warm_up, seed=SEED)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # weights stay put
    x, _ = digit_data(16)
    model.fit(x, batch_size=8, epochs=1, verbose=0)  # 2 steps
    assert int(model.optimizer.iterations) == 2
    result = model.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        result["loss"],
        result["reconstruction_loss"] + 0.5 * result["kl_loss"],
        rtol=1e-5,
    )


def test_train_step_is_one_adam_step_on_the_elbo():
    keras.utils.set_random_seed(0)
    encoder, decoder = encoder_decoder()
    model = VAE(encoder, decoder, kl_weight=1.0, seed=SEED)
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    x, _ = digit_data(16)
    before = [np.array(w) for w in model.get_weights()]
    logs = model.fit(x, batch_size=16, shuffle=False, verbose=0).history
    loss, reconstruction, kl = numpy_negative_elbo(
        _with_weights(encoder, before[: len(encoder.get_weights())]),
        _with_weights(decoder, before[len(encoder.get_weights()) :]),
        x.astype("float64"),
        first_noise(16),
        1.0,
    )
    np.testing.assert_allclose(logs["loss"][0], loss, rtol=1e-5)
    np.testing.assert_allclose(
        logs["reconstruction_loss"][0], reconstruction, rtol=1e-5
    )
    np.testing.assert_allclose(logs["kl_loss"][0], kl, rtol=1e-5)
    # Adam's first step moves every weight with a gradient by about the rate.
    for old, new in zip(before, model.get_weights(), strict=True):
        step = np.abs(new - old)
        assert np.all(step <= 1e-3 + 1e-7)
        assert np.max(step) > 0.9e-3


def _with_weights(model, weights):
    clone = keras.models.clone_model(model)
    clone.set_weights(weights)
    return clone


def test_encode_decode_generate():
    keras.utils.set_random_seed(0)
    encoder, decoder = encoder_decoder()
    model = VAE(encoder, decoder)
    x, _ = digit_data(8)
    z_mean, z_log_var = model.encode(x)
    assert z_mean.shape == z_log_var.shape == (8, LATENT_DIM)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), model.decode(z_mean), atol=1e-6
    )
    samples = model.generate(3, seed=1)
    z = np.random.default_rng(1).standard_normal((3, LATENT_DIM)).astype("float32")
    np.testing.assert_allclose(samples, model.decode(z), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    encoder, decoder = encoder_decoder()
    single_output = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2)])
    model = VAE(single_output, decoder)
    model.compile()
    x, _ = digit_data(16)
    with pytest.raises(ValueError, match=r"z_mean, z_log_var"):
        model.fit(x, batch_size=8, verbose=0)
    wrong_decoder = VAE(encoder, dense_net(LATENT_DIM, 32, "sigmoid"))
    wrong_decoder.compile()
    with pytest.raises(ValueError, match="decoder .* returns shape"):
        wrong_decoder.fit(x, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="kl_weight"):
        VAE(encoder, decoder, kl_weight="warm")
