"""DiffusionModel's mathematics against NumPy written from the papers.

Each reference below is written directly from a paper's equation, not from
`keras_custom.generative.diffusion_schedule`: the forward process and the
ancestral sampler from Ho et al. 2020 (eq. 4, eqs. 6-7, Algorithm 2), the
cosine schedule from Nichol and Dhariwal 2021 (eq. 17), DDIM from Song et
al. 2021 (eqs. 12 and 16), `v` from Salimans and Ho 2022 (section 4),
classifier-free guidance from Ho and Salimans 2022 (eq. 6) and the Min-SNR
weighting from Hang et al. 2023.

The samplers are checked through `generate` on a network whose output is
known in NumPy (one dense layer of the noisy sample and the time step);
`generate` draws its starting noise, then one noise array per stochastic
step, from `np.random.default_rng(seed)`, as the references do.
"""

import keras
import numpy as np
import pytest

from keras_custom import DiffusionModel
from keras_custom.generative import diffusion_schedule
from keras_custom.layers import TimestepEmbedding

T = 100
DIM = 6
NUM_CLASSES = 3


# ----------------------------------------------------------------------
# References, from the papers
# ----------------------------------------------------------------------


def linear_alpha_bars(timesteps):
    """Ho et al., section 4: β from 1e-4 to 0.02 (for T = 1000)."""
    betas = np.linspace(1e-4 * 1000 / timesteps, 0.02 * 1000 / timesteps, timesteps)
    return np.cumprod(1.0 - betas)


def cosine_alpha_bar(t, timesteps, s=0.008):
    """Nichol and Dhariwal, eq. 17: ᾱ(t) = f(t) / f(0), t = 1 .. T."""

    def f(step):
        return np.cos((step / timesteps + s) / (1 + s) * np.pi / 2) ** 2

    return f(t) / f(0)


def cosine_alpha_bars(timesteps):
    """Eq. 17 with each β_t = 1 - ᾱ_t / ᾱ_{t-1} clipped to 0.999 (section 3.2)."""
    alpha_bar = cosine_alpha_bar(np.arange(timesteps + 1.0), timesteps)
    betas = np.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], 0.999)
    return np.cumprod(1 - betas)


def ddim_reference(x_t, eps, a_t, a_prev, eta, z):
    """Song et al., eq. 12, with σ of eq. 16."""
    sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t)) * np.sqrt(1 - a_t / a_prev)
    predicted_x0 = (x_t - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
    direction = np.sqrt(1 - a_prev - sigma**2) * eps
    return np.sqrt(a_prev) * predicted_x0 + direction + sigma * z


def ddpm_reference(x_t, eps, a_t, a_prev, z):
    """Ho et al., eqs. 6-7: the posterior q(x_{t-1} | x_t, x_0) at x̂_0."""
    beta = 1 - a_t / a_prev
    x0 = (x_t - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)  # eq. 4 inverted
    mean = (np.sqrt(a_prev) * beta / (1 - a_t)) * x0 + (
        np.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t)
    ) * x_t
    variance = (1 - a_prev) / (1 - a_t) * beta
    return mean + np.sqrt(variance) * z


def algorithm_2_step(x_t, eps, alpha, alpha_bar, sigma, z):
    """Ho et al., Algorithm 2, line 4."""
    return (x_t - (1 - alpha) / np.sqrt(1 - alpha_bar) * eps) / np.sqrt(
        alpha
    ) + sigma * z


# ----------------------------------------------------------------------
# A network whose output NumPy computes
# ----------------------------------------------------------------------


def linear_network(num_classes=None, seed=0):
    """`Dense` of `[x_t, t / T, onehot(label)]`, with random weights."""
    samples = keras.Input((DIM,))
    timesteps = keras.Input((), dtype="int32")
    inputs = [samples, timesteps]
    scaled = keras.layers.Rescaling(1.0 / T)(keras.layers.Reshape((1,))(timesteps))
    parts = [samples, scaled]
    if num_classes is not None:
        labels = keras.Input((), dtype="int32")
        inputs.append(labels)
        parts.append(
            keras.layers.CategoryEncoding(num_classes + 1, output_mode="one_hot")(
                labels
            )
        )
    dense = keras.layers.Dense(DIM)
    network = keras.Model(inputs, dense(keras.layers.Concatenate()(parts)))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(scale=0.3, size=dense.kernel.shape).astype("float32")
    bias = rng.normal(scale=0.1, size=(DIM,)).astype("float32")
    dense.set_weights([kernel, bias])
    return network, kernel, bias


def numpy_network(kernel, bias, x, t, labels=None):
    parts = [x, np.full((len(x), 1), t / T)]
    if labels is not None:
        parts.append(np.eye(NUM_CLASSES + 1)[labels])
    return np.concatenate(parts, axis=1) @ kernel + bias


def model_of(network, **kwargs):
    return DiffusionModel(network, timesteps=T, **kwargs)


# ----------------------------------------------------------------------
# Schedules, the forward process, v
# ----------------------------------------------------------------------


@pytest.mark.parametrize("timesteps", [1000, 250])
def test_linear_schedule(timesteps):
    np.testing.assert_allclose(
        diffusion_schedule.alpha_bars(timesteps, "linear"),
        linear_alpha_bars(timesteps),
        rtol=1e-12,
    )


def test_cosine_schedule():
    alpha_bar = diffusion_schedule.alpha_bars(1000, "cosine")
    expected = cosine_alpha_bar(np.arange(1, 1001), 1000)
    # Equal but at the end, where β is clipped to 0.999 (f(T) = 0).
    np.testing.assert_allclose(alpha_bar[:-1], expected[:-1], rtol=1e-9)
    assert alpha_bar[-1] == pytest.approx(alpha_bar[-2] * 0.001)
    assert np.all(np.diff(alpha_bar) < 0) and alpha_bar[0] < 1


def test_unknown_schedule():
    with pytest.raises(ValueError, match=r"`schedule` must be one of"):
        diffusion_schedule.alpha_bars(10, "quadratic")


def test_sampling_timesteps():
    np.testing.assert_array_equal(
        diffusion_schedule.sampling_timesteps(1000, 5), [999, 749, 500, 250, 0]
    )
    np.testing.assert_array_equal(
        diffusion_schedule.sampling_timesteps(4, 4), [3, 2, 1, 0]
    )


def test_forward_noising_velocity_and_recovery():
    rng = np.random.default_rng(0)
    x0, eps = rng.normal(size=(2, 5, DIM))
    a = np.array([0.9, 0.5, 0.1, 0.01, 0.999]).reshape(-1, 1)
    x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * eps  # Ho et al., eq. 4
    v = np.sqrt(a) * eps - np.sqrt(1 - a) * x0  # Salimans and Ho, section 4
    as_f32 = [np.float32(value) for value in (x0, eps, a)]
    np.testing.assert_allclose(
        diffusion_schedule.noisy_samples(*as_f32), x_t, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        diffusion_schedule.velocity(*as_f32), v, rtol=1e-5, atol=1e-6
    )
    # x_0 and ε back from the network's v, and from its ε.
    for prediction, output in (("v", v), ("epsilon", eps)):
        x0_hat, eps_hat = diffusion_schedule.denoised_and_noise(
            np.float32(x_t), np.float32(output), np.float32(a), prediction
        )
        np.testing.assert_allclose(x0_hat, x0, atol=5e-4)
        np.testing.assert_allclose(eps_hat, eps, atol=5e-5)


def test_guidance_combination():
    conditional, unconditional = np.float32([[1.0, 2.0]]), np.float32([[3.0, -1.0]])
    for w in (0.0, 0.5, 3.0):
        # Ho and Salimans, eq. 6: ε̃ = (1 + w) ε(z, c) - w ε(z).
        expected = (1 + w) * conditional - w * unconditional
        np.testing.assert_allclose(
            diffusion_schedule.guided(conditional, unconditional, w), expected
        )


# ----------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------


class FixedDraws(DiffusionModel):
    """Time steps and noise given by the test."""

    draws = None

    def sample_timesteps_and_noise(self, batch_size, sample_shape):
        return self.draws


@pytest.mark.parametrize("gamma", [None, 5.0])
@pytest.mark.parametrize("prediction", ["epsilon", "v"])
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_loss_against_numpy(prediction, schedule, gamma):
    network, kernel, bias = linear_network()
    model = FixedDraws(
        network,
        timesteps=T,
        schedule=schedule,
        prediction=prediction,
        min_snr_gamma=gamma,
    )
    rng = np.random.default_rng(1)
    x0 = rng.uniform(size=(4, DIM)).astype("float32")
    timesteps = np.array([0, 30, 70, 99], "int32")
    eps = rng.normal(size=(4, DIM)).astype("float32")
    weights = np.array([1.0, 0.5, 2.0, 0.0], "float32")
    model.draws = (timesteps, eps)

    a_bar = linear_alpha_bars(T) if schedule == "linear" else cosine_alpha_bars(T)
    a = a_bar[timesteps].reshape(-1, 1)
    x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * eps
    output = np.concatenate([x_t, timesteps[:, None] / T], axis=1) @ kernel + bias
    target = eps if prediction == "epsilon" else np.sqrt(a) * eps - np.sqrt(1 - a) * x0
    errors = np.mean((output - target) ** 2, axis=1)
    if gamma is not None:  # Hang et al., section 3.4
        snr = (a / (1 - a)).reshape(-1)
        errors *= np.minimum(snr, gamma) / (snr if prediction == "epsilon" else snr + 1)

    loss = model.compute_loss(x=x0, training=False)["loss"]
    np.testing.assert_allclose(float(loss), errors.mean(), rtol=1e-5)
    weighted = model.compute_loss(x=x0, sample_weight=weights, training=False)
    np.testing.assert_allclose(
        float(weighted["loss"]), np.mean(errors * weights), rtol=1e-5
    )


def test_guidance_dropout_replaces_labels_with_the_null_class():
    network, _, _ = linear_network(NUM_CLASSES)
    model = model_of(network, num_classes=NUM_CLASSES, guidance_dropout=0.5, seed=0)
    labels = np.zeros(4000, "int32")
    dropped = keras.ops.convert_to_numpy(model.drop_labels(labels))
    assert set(np.unique(dropped)) == {0, NUM_CLASSES}
    assert np.mean(dropped == NUM_CLASSES) == pytest.approx(0.5, abs=0.03)
    never = model_of(network, num_classes=NUM_CLASSES, guidance_dropout=0.0)
    np.testing.assert_array_equal(never.drop_labels(labels), labels)


# ----------------------------------------------------------------------
# The moving average
# ----------------------------------------------------------------------


def test_ema_update_against_numpy():
    network, _, _ = linear_network()
    model = model_of(network, ema_decay=0.9, optimizer=keras.optimizers.SGD(0.1))
    model.compile()
    before = [np.array(w) for w in network.get_weights()]
    x = np.random.default_rng(0).uniform(size=(8, DIM)).astype("float32")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    after = network.get_weights()
    assert not np.allclose(after[0], before[0])
    for ema, old, new in zip(
        model.ema_network.get_weights(), before, after, strict=True
    ):
        np.testing.assert_allclose(ema, 0.9 * old + 0.1 * new, rtol=1e-6, atol=1e-7)
    # A second step moves the average from where it was.
    ema_1 = model.ema_network.get_weights()
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    for ema, old, new in zip(
        model.ema_network.get_weights(), ema_1, network.get_weights(), strict=True
    ):
        np.testing.assert_allclose(ema, 0.9 * old + 0.1 * new, rtol=1e-6, atol=1e-7)


def test_ema_decay_schedule_is_evaluated_at_the_optimizer_step():
    network, _, _ = linear_network()
    decay = keras.optimizers.schedules.PolynomialDecay(0.0, 4, 0.8)  # 0.2 at step 1
    model = model_of(network, ema_decay=decay, optimizer=keras.optimizers.SGD(0.1))
    model.compile()
    before = network.get_weights()
    x = np.random.default_rng(0).uniform(size=(8, DIM)).astype("float32")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    for ema, old, new in zip(
        model.ema_network.get_weights(), before, network.get_weights(), strict=True
    ):
        np.testing.assert_allclose(ema, 0.2 * old + 0.8 * new, rtol=1e-5, atol=1e-6)


def test_generate_uses_the_moving_average():
    network, kernel, bias = linear_network()
    model = model_of(network, schedule="linear")
    # The online network changes; the average, not updated, does not.
    network.layers[-1].kernel.assign(np.zeros_like(kernel))
    x = model.generate(3, steps=1, seed=0)
    x_t = np.random.default_rng(0).standard_normal((3, DIM))
    eps = numpy_network(kernel, bias, x_t, T - 1)
    a = linear_alpha_bars(T)[T - 1]
    np.testing.assert_allclose(
        x, (x_t - np.sqrt(1 - a) * eps) / np.sqrt(a), rtol=1e-3, atol=1e-3
    )


# ----------------------------------------------------------------------
# The samplers
# ----------------------------------------------------------------------


def _alpha_bar_pairs(alpha_bar, visited):
    previous = [alpha_bar[t] for t in visited[1:]] + [1.0]
    return [(alpha_bar[t], p) for t, p in zip(visited, previous, strict=True)]


@pytest.mark.parametrize("eta", [0.0, 0.7])
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_ddim_against_numpy(schedule, eta):
    network, kernel, bias = linear_network()
    model = model_of(network, schedule=schedule)
    samples = model.generate(5, steps=4, sampler="ddim", seed=3, eta=eta)

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, DIM))
    visited = [99, 66, 33, 0]  # `steps` evenly spaced over [0, T)
    a_bar = linear_alpha_bars(T) if schedule == "linear" else cosine_alpha_bars(T)
    for t, (a_t, a_prev) in zip(visited, _alpha_bar_pairs(a_bar, visited), strict=True):
        z = rng.standard_normal(x.shape) if eta else np.zeros_like(x)
        eps = numpy_network(kernel, bias, x, t)
        x = ddim_reference(x, eps, a_t, a_prev, eta, z)
    np.testing.assert_allclose(samples, x, rtol=2e-3, atol=2e-3)


def test_ddim_is_deterministic_given_the_seed():
    network, _, _ = linear_network()
    model = model_of(network)
    first = model.generate(7, steps=5, seed=11)
    assert first.shape == (7, DIM) and first.dtype == np.float32
    np.testing.assert_array_equal(model.generate(7, steps=5, seed=11), first)
    assert not np.allclose(model.generate(7, steps=5, seed=12), first)
    # Denoised in batches of 3, the same samples.
    np.testing.assert_allclose(
        model.generate(7, steps=5, seed=11, batch_size=3), first, atol=1e-5
    )


def test_ddpm_respaced_against_numpy():
    network, kernel, bias = linear_network()
    model = model_of(network, schedule="linear")
    samples = model.generate(5, steps=4, sampler="ddpm", seed=4)

    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, DIM))
    visited = [99, 66, 33, 0]
    a_bar = linear_alpha_bars(T)
    for t, (a_t, a_prev) in zip(visited, _alpha_bar_pairs(a_bar, visited), strict=True):
        z = rng.standard_normal(x.shape)
        x = ddpm_reference(x, numpy_network(kernel, bias, x, t), a_t, a_prev, z)
    np.testing.assert_allclose(samples, x, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(
        model.generate(5, steps=4, sampler="ddpm", seed=4), samples
    )


def test_ddpm_full_chain_is_algorithm_2():
    network, kernel, bias = linear_network()
    model = model_of(network, schedule="linear")
    samples = model.generate(5, steps=T, sampler="ddpm", seed=5)

    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, DIM))
    betas = np.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T)
    alphas = 1 - betas
    alpha_bars = np.cumprod(alphas)
    for t in reversed(range(T)):
        z = rng.standard_normal(x.shape)
        # σ_t² = β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) β_t, and z = 0 at the end.
        previous = alpha_bars[t - 1] if t > 0 else 1.0
        sigma = np.sqrt((1 - previous) / (1 - alpha_bars[t]) * betas[t])
        eps = numpy_network(kernel, bias, x, t)
        x = algorithm_2_step(x, eps, alphas[t], alpha_bars[t], sigma, z)
    np.testing.assert_allclose(samples, x, rtol=2e-3, atol=2e-3)


def test_v_prediction_sampling_against_numpy():
    network, kernel, bias = linear_network()
    model = model_of(network, schedule="linear", prediction="v")
    samples = model.generate(4, steps=3, seed=6)

    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, DIM))
    visited = [99, 50, 0]
    for t, (a_t, a_prev) in zip(
        visited, _alpha_bar_pairs(linear_alpha_bars(T), visited), strict=True
    ):
        v = numpy_network(kernel, bias, x, t)
        eps = np.sqrt(1 - a_t) * x + np.sqrt(a_t) * v  # Salimans and Ho
        x = ddim_reference(x, eps, a_t, a_prev, 0.0, 0.0)
    np.testing.assert_allclose(samples, x, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("w", [0.0, 2.0])
def test_classifier_free_guidance_against_numpy(w):
    network, kernel, bias = linear_network(NUM_CLASSES)
    model = model_of(network, schedule="linear", num_classes=NUM_CLASSES)
    labels = np.array([0, 1, 2, 1])
    samples = model.generate(4, steps=2, labels=labels, guidance_scale=w, seed=7)

    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, DIM))
    null = np.full(4, NUM_CLASSES)
    for t, (a_t, a_prev) in zip(
        [99, 0], _alpha_bar_pairs(linear_alpha_bars(T), [99, 0]), strict=True
    ):
        conditional = numpy_network(kernel, bias, x, t, labels)
        unconditional = numpy_network(kernel, bias, x, t, null)
        eps = (1 + w) * conditional - w * unconditional  # Ho and Salimans, eq. 6
        x = ddim_reference(x, eps, a_t, a_prev, 0.0, 0.0)
    np.testing.assert_allclose(samples, x, rtol=2e-3, atol=2e-3)
    # One label for every sample.
    np.testing.assert_allclose(
        model.generate(2, steps=2, labels=1, guidance_scale=w, seed=0),
        model.generate(2, steps=2, labels=[1, 1], guidance_scale=w, seed=0),
    )


def test_sample_range_clips_the_estimates_of_x0():
    network, kernel, bias = linear_network()
    model = model_of(network, schedule="linear", sample_range=(0.0, 1.0))
    samples = model.generate(6, steps=2, seed=8)
    assert samples.min() >= 0.0 and samples.max() <= 1.0

    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, DIM))
    for t, (a_t, a_prev) in zip(
        [99, 0], _alpha_bar_pairs(linear_alpha_bars(T), [99, 0]), strict=True
    ):
        eps = numpy_network(kernel, bias, x, t)
        x0 = np.clip((x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t), 0.0, 1.0)
        eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
    np.testing.assert_allclose(samples, x, rtol=2e-3, atol=2e-3)


# ----------------------------------------------------------------------
# Bad arguments
# ----------------------------------------------------------------------


def test_bad_constructor_arguments():
    network, _, _ = linear_network()
    conditional, _, _ = linear_network(NUM_CLASSES)
    cases = [
        (dict(network=network, schedule="quadratic"), r"`schedule` must be one of"),
        (dict(network=network, prediction="x0"), r"`prediction` must be one of"),
        (dict(network=network, timesteps=0), r"`timesteps` must be a positive"),
        (dict(network=network, ema_decay="high"), r"`ema_decay` must be a float"),
        (dict(network=network, guidance_dropout=1.0), r"`guidance_dropout` must"),
        (dict(network=network, sample_range=(1.0, 0.0)), r"low < high"),
        (dict(network=network, min_snr_gamma=0.0), r"`min_snr_gamma` must be"),
        (dict(network="network"), r"`network` must be a built Keras model"),
        (
            dict(network=network, num_classes=NUM_CLASSES),
            r"must take 3 inputs, \[x_t, t, labels\] \(num_classes is set\)\. "
            r"It takes 2",
        ),
        (dict(network=conditional), r"must take 2 inputs, \[x_t, t\]\. It takes 3"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            DiffusionModel(**kwargs)


def test_bad_generate_arguments():
    network, _, _ = linear_network()
    model = model_of(network)
    conditional_network, _, _ = linear_network(NUM_CLASSES)
    conditional = model_of(conditional_network, num_classes=NUM_CLASSES)
    cases = [
        (model, dict(count=0), r"`count` must be a positive integer"),
        (model, dict(count=2, steps=T + 1), r"`steps` must be at most .* \(100\)"),
        (model, dict(count=2, steps=2, sampler="euler"), r"`sampler` must be one of"),
        (model, dict(count=2, eta=-1.0), r"`eta` must be a float >= 0"),
        (model, dict(count=2, sampler="ddpm", eta=0.5), r"`'ddim'` sampler only"),
        (model, dict(count=2, labels=[0, 1]), r"is unconditional .* takes no `labels`"),
        (model, dict(count=2, guidance_scale=1.0), r"`guidance_scale` needs a cond"),
        (conditional, dict(count=2), r"is conditional: give `generate` the class"),
        (conditional, dict(count=2, labels=[0, 3]), r"must be in \[0, 3\)\. Got"),
        (conditional, dict(count=2, labels=[0, -1]), r"must be in \[0, 3\)"),
        (conditional, dict(count=2, labels=[0, 1, 2]), r"one class id per sample: 2"),
        (conditional, dict(count=2, labels=[0.0, 1.0]), r"must be integer class ids"),
        (
            conditional,
            dict(count=2, labels=[0, 1], guidance_scale=float("nan")),
            r"`guidance_scale` must be finite",
        ),
    ]
    for target, kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            target.generate(**kwargs)


def test_network_of_the_wrong_output_shape():
    samples = keras.Input((DIM,))
    timesteps = keras.Input((), dtype="int32")
    hidden = keras.layers.Concatenate()([samples, TimestepEmbedding(4)(timesteps)])
    network = keras.Model([samples, timesteps], keras.layers.Dense(DIM + 1)(hidden))
    model = model_of(network)
    model.compile()
    x = np.zeros((8, DIM), "float32")
    with pytest.raises(ValueError, match=r"returns shape \(7,\) per sample, but the"):
        model.fit(x, batch_size=4, verbose=0)


def test_timestep_embedding():
    embedding = TimestepEmbedding(4, max_period=100.0)
    features = keras.ops.convert_to_numpy(embedding(np.array([0, 3], "int32")))
    frequencies = 100.0 ** (-np.arange(2) / 2)
    angles = np.array([0, 3])[:, None] * frequencies
    np.testing.assert_allclose(
        features, np.concatenate([np.sin(angles), np.cos(angles)], 1), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"`dim` must be a positive even integer"):
        TimestepEmbedding(3)
    config = embedding.get_config()
    assert TimestepEmbedding.from_config(config).get_config() == config
