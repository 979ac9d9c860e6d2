"""SharpnessAwareModel and AdversarialModel against NumPy computations."""

import keras
import numpy as np
import pytest

from keras_custom import AdversarialModel, SharpnessAwareModel
from tests.models import digit_data


def linear(input_dim, units, use_bias=True):
    return keras.Sequential(
        [keras.Input((input_dim,)), keras.layers.Dense(units, use_bias=use_bias)]
    )


def test_sharpness_aware_step_equals_numpy_on_a_quadratic():
    # loss(w) = mean((X w - y)^2): gradient 2/N X^T (X w - y).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3))
    y = rng.normal(size=(16, 1))
    keras.utils.set_random_seed(0)
    network = linear(3, 1, use_bias=False)
    w = network.get_weights()[0].astype("float64")
    rho, rate = 0.3, 0.1
    model = SharpnessAwareModel(network, rho=rho)
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    history = model.fit(x, y, batch_size=16, shuffle=False, verbose=0)

    def gradient(weights):
        return 2.0 / len(x) * x.T @ (x @ weights - y)

    g = gradient(w)
    perturbed = w + rho * g / np.linalg.norm(g)
    expected = w - rate * gradient(perturbed)
    np.testing.assert_allclose(network.get_weights()[0], expected, rtol=1e-5)
    # The logged loss is the loss at w, not at the perturbed weights.
    np.testing.assert_allclose(
        history.history["loss"][0], np.mean((x @ w - y) ** 2), rtol=1e-5
    )


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def cross_entropy(logits, labels):
    return float(np.mean(-np.log(softmax(logits)[np.arange(len(labels)), labels])))


def adversarial(attack="fgsm", **kwargs):
    keras.utils.set_random_seed(0)
    network = linear(64, 10)
    model = AdversarialModel(
        network,
        epsilon=0.1,
        attack=attack,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **kwargs,
    )
    model.compile(optimizer="sgd")
    return model, network


def numpy_fgsm(weights, bias, x, y, epsilon):
    # d CE / d x = (softmax(x W + b) - onehot(y)) W^T (per example, up to 1/N).
    grad = (softmax(x @ weights + bias) - np.eye(10)[y]) @ weights.T
    return np.clip(x + epsilon * np.sign(grad), 0.0, 1.0)


def test_fgsm_examples_and_logged_losses_equal_numpy():
    model, network = adversarial(adversarial_weight=0.25)
    x, y = digit_data(32)
    weights, bias = (w.astype("float64") for w in network.get_weights())
    expected = numpy_fgsm(weights, bias, x.astype("float64"), y, 0.1)
    np.testing.assert_allclose(model.adversarial_examples(x, y), expected, atol=1e-6)

    result = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    clean = cross_entropy(x @ weights + bias, y)
    attacked = cross_entropy(expected @ weights + bias, y)
    np.testing.assert_allclose(result["clean_loss"], clean, rtol=1e-5)
    np.testing.assert_allclose(result["adversarial_loss"], attacked, rtol=1e-5)
    np.testing.assert_allclose(
        result["loss"], 0.75 * clean + 0.25 * attacked, rtol=1e-5
    )
    accuracy = np.mean((expected @ weights + bias).argmax(axis=1) == y)
    np.testing.assert_allclose(result["adversarial_accuracy"], accuracy, rtol=1e-6)
    assert attacked > clean


def test_fgsm_training_step_follows_the_gradient_of_the_weighted_loss():
    # Only the total is differentiated, not the terms logged beside it.
    model, network = adversarial(adversarial_weight=0.25)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = digit_data(32)
    weights, bias = (w.astype("float64") for w in network.get_weights())
    x = x.astype("float64")
    x_adv = numpy_fgsm(weights, bias, x, y, 0.1)
    model.fit(x, y, batch_size=32, verbose=0)

    def logit_gradient(inputs):  # of the mean cross-entropy
        return (softmax(inputs @ weights + bias) - np.eye(10)[y]) / len(y)

    clean, attacked = logit_gradient(x), logit_gradient(x_adv)
    gradient = 0.75 * x.T @ clean + 0.25 * x_adv.T @ attacked
    new_weights, new_bias = network.get_weights()
    np.testing.assert_allclose(new_weights, weights - 0.5 * gradient, atol=1e-6)
    np.testing.assert_allclose(
        new_bias, bias - 0.5 * (0.75 * clean + 0.25 * attacked).sum(axis=0), atol=1e-6
    )


def test_pgd_stays_in_the_ball_and_is_at_least_as_strong_as_fgsm():
    model, network = adversarial("pgd", steps=10, seed=1)
    x, y = digit_data(64)
    x_pgd = np.asarray(model.adversarial_examples(x, y))
    assert np.all(np.abs(x_pgd - x) <= 0.1 + 1e-6)
    assert x_pgd.min() >= 0.0 and x_pgd.max() <= 1.0
    weights, bias = network.get_weights()
    x_fgsm = numpy_fgsm(weights, bias, x, y, 0.1)
    pgd_loss = cross_entropy(x_pgd @ weights + bias, y)
    assert pgd_loss >= cross_entropy(x_fgsm @ weights + bias, y) - 1e-3
    assert pgd_loss > cross_entropy(x @ weights + bias, y)


def test_bad_arguments_raise_clear_errors():
    network = linear(4, 3)
    with pytest.raises(ValueError, match="attack"):
        AdversarialModel(network, attack="cw")
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialModel(network, epsilon=0.0)
    with pytest.raises(ValueError, match="input_range"):
        AdversarialModel(network, input_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="rho"):
        SharpnessAwareModel(network, rho=0.0)
    model = SharpnessAwareModel(network)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="labels"):
        model.fit(np.zeros((8, 4)), verbose=0)
