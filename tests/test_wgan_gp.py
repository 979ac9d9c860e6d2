"""WGANGP against the analytic step of a linear critic, in NumPy.

For a linear critic `D(x) = x @ w + b` the gradient with respect to every
interpolate is `w`, so the penalty is `(||w|| - 1)^2` whatever the random
interpolation weights, and its gradient `2 (||w|| - 1) w / ||w||` only comes
out right if the penalty is differentiated through the input gradient
(double backpropagation).
"""

import keras
import numpy as np
import pytest

from keras_custom import WGANGP
from tests.models import digit_data

BATCH, LATENT_DIM, RATE, GP_WEIGHT = 16, 4, 0.05, 10.0


class FixedLatentsWGANGP(WGANGP):
    def sample_latents(self, batch_size):
        return keras.ops.convert_to_tensor(self.fixed_latents)


def linear(input_dim, output_dim, activation=None):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(output_dim, activation=activation),
        ]
    )


def numpy_critic_step(w, b, real, fake):
    """One SGD step of the critic; returns new (w, b), loss and penalty."""
    norm = np.linalg.norm(w)
    penalty = (norm - 1.0) ** 2
    loss = np.mean(fake @ w + b) - np.mean(real @ w + b) + GP_WEIGHT * penalty
    grad_w = (
        fake.mean(axis=0)[:, None]
        - real.mean(axis=0)[:, None]
        + GP_WEIGHT * 2.0 * (norm - 1.0) * w / norm
    )
    return w - RATE * grad_w, b, loss, penalty


@pytest.mark.parametrize("critic_steps", [1, 3])
def test_step_equals_numpy(critic_steps):
    keras.utils.set_random_seed(0)
    generator = linear(LATENT_DIM, 64, "sigmoid")
    critic = linear(64, 1)
    latents = np.random.default_rng(1).normal(size=(BATCH, LATENT_DIM))
    latents = latents.astype("float32")
    real, _ = digit_data(BATCH)
    g_kernel, g_bias = (w.astype("float64") for w in generator.get_weights())
    w, b = (v.astype("float64") for v in critic.get_weights())

    model = FixedLatentsWGANGP(
        generator, critic, LATENT_DIM, critic_steps=critic_steps, gp_weight=GP_WEIGHT
    )
    model.fixed_latents = latents
    model.compile(
        d_optimizer=keras.optimizers.SGD(RATE), g_optimizer=keras.optimizers.SGD(RATE)
    )
    logs = model.fit(real, batch_size=BATCH, verbose=0).history

    pre_activation = latents @ g_kernel + g_bias
    fake = 1.0 / (1.0 + np.exp(-pre_activation))
    losses, penalties = [], []
    for _ in range(critic_steps):
        w, b, loss, penalty = numpy_critic_step(w, b, real.astype("float64"), fake)
        losses.append(loss)
        penalties.append(penalty)
    # Generator: minimize -mean(D(G(z))) through the sigmoid.
    g_loss = -np.mean(fake @ w + b)
    upstream = -(np.ones((BATCH, 1)) / BATCH) @ w.T * fake * (1.0 - fake)
    g_kernel_new = g_kernel - RATE * latents.T @ upstream

    np.testing.assert_allclose(logs["d_loss"][0], np.mean(losses), rtol=1e-5)
    np.testing.assert_allclose(
        logs["gradient_penalty"][0], np.mean(penalties), rtol=1e-4, atol=1e-7
    )
    np.testing.assert_allclose(logs["g_loss"][0], g_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(critic.get_weights()[0], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        generator.get_weights()[0], g_kernel_new, rtol=1e-4, atol=1e-6
    )


def test_evaluate_reports_the_penalty_of_the_current_critic():
    keras.utils.set_random_seed(0)
    model = WGANGP(linear(LATENT_DIM, 64, "sigmoid"), linear(64, 1), LATENT_DIM)
    model.compile()
    real, _ = digit_data(32)
    result = model.evaluate(real, batch_size=BATCH, verbose=0, return_dict=True)
    w = model.discriminator.get_weights()[0]
    np.testing.assert_allclose(
        result["gradient_penalty"], (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-4
    )


def test_defaults_follow_the_paper():
    model = WGANGP(linear(LATENT_DIM, 64), linear(64, 1), LATENT_DIM)
    model.compile()
    assert model.critic_steps == 5 and model.gp_weight == 10.0
    for optimizer in (model.d_optimizer, model.g_optimizer):
        np.testing.assert_allclose(float(optimizer.learning_rate), 1e-4)
        assert (optimizer.beta_1, optimizer.beta_2) == (0.0, 0.9)


def test_bad_arguments_raise_clear_errors():
    generator, critic = linear(LATENT_DIM, 64), linear(64, 1)
    with pytest.raises(ValueError, match="critic_steps"):
        WGANGP(generator, critic, LATENT_DIM, critic_steps=0)
    with pytest.raises(ValueError, match="gp_weight"):
        WGANGP(generator, critic, LATENT_DIM, gp_weight=-1.0)
