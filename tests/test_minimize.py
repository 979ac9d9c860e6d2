"""`CustomModel.minimize`, the one gradient step, against NumPy."""

import keras
import numpy as np
import pytest

from keras_custom import CustomModel
from keras_custom.core import input_gradients

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype("float32")
Y = RNG.normal(size=(8, 1)).astype("float32")


class TwoWeights(CustomModel):
    """y = x @ a + x @ b: two variables, so one can be left out."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = self.add_weight(shape=(3, 1), initializer="ones", name="a")
        self.b = self.add_weight(shape=(3, 1), initializer="zeros", name="b")

    def call(self, x):
        return keras.ops.matmul(x, self.a) + keras.ops.matmul(x, self.b)


def mse_and_gradient(a, b):
    """NumPy: mean squared error of x @ (a + b) and its gradient in a (= in b)."""
    error = X @ (a + b) - Y
    return float(np.mean(error**2)), 2 * X.T @ error / error.size


def model_loss(model):
    return lambda: keras.losses.MeanSquaredError()(Y, model(X))


def test_updates_only_the_given_variables():
    model = TwoWeights(optimizer=keras.optimizers.SGD(0.1))
    model.compile()
    a, b = np.ones((3, 1)), np.zeros((3, 1))
    expected_loss, gradient = mse_and_gradient(a, b)
    loss = model.minimize(model_loss(model), variables=[model.a])
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(model.a.numpy(), a - 0.1 * gradient, rtol=1e-5)
    np.testing.assert_array_equal(model.b.numpy(), b)


def test_loss_scaling_returns_unscaled_loss_and_unscaled_update():
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.1), initial_scale=1024.0
    )
    model = TwoWeights(optimizer=optimizer)
    model.compile()
    expected_loss, gradient = mse_and_gradient(np.ones((3, 1)), np.zeros((3, 1)))
    loss = model.minimize(model_loss(model))
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(
        model.a.numpy(), np.ones((3, 1)) - 0.1 * gradient, rtol=1e-5
    )


def test_clipping_comes_from_the_optimizer():
    model = TwoWeights(optimizer=keras.optimizers.SGD(1.0, global_clipnorm=0.01))
    model.compile()
    _, gradient = mse_and_gradient(np.ones((3, 1)), np.zeros((3, 1)))
    model.minimize(model_loss(model))
    # Global norm over a and b, whose gradients are equal.
    clipped = gradient * 0.01 / np.sqrt(2 * np.sum(gradient**2))
    np.testing.assert_allclose(model.a.numpy(), 1.0 - clipped, rtol=1e-4)


def test_gradient_accumulation_comes_from_the_optimizer():
    optimizer = keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)
    model = TwoWeights(optimizer=optimizer)
    model.compile()
    _, gradient = mse_and_gradient(np.ones((3, 1)), np.zeros((3, 1)))
    model.minimize(model_loss(model), variables=[model.a])
    np.testing.assert_array_equal(model.a.numpy(), np.ones((3, 1)))
    model.minimize(model_loss(model), variables=[model.a])
    # The mean of two equal gradients, applied once.
    np.testing.assert_allclose(model.a.numpy(), 1.0 - 0.1 * gradient, rtol=1e-5)


def test_returns_auxiliary_outputs():
    model = TwoWeights(optimizer="sgd")
    model.compile()

    def loss_and_prediction():
        prediction = model(X)
        return keras.losses.MeanSquaredError()(Y, prediction), prediction

    loss, prediction = model.minimize(loss_and_prediction)
    np.testing.assert_allclose(prediction.numpy(), X @ np.ones((3, 1)), rtol=1e-5)
    assert loss.shape == ()


def test_optimizer_instance_needs_variables():
    model = TwoWeights(optimizer="sgd")
    model.compile()
    with pytest.raises(ValueError, match="needs `variables`"):
        model.minimize(model_loss(model), optimizer=keras.optimizers.SGD())


def test_unknown_optimizer_name_is_named_in_the_error():
    model = TwoWeights(optimizer="sgd")
    model.compile()
    with pytest.raises(ValueError, match="no optimizer named 'g_optimizer'"):
        model.minimize(model_loss(model), optimizer="g_optimizer")


def test_input_gradients_against_the_analytic_gradient():
    x = RNG.normal(size=(4, 3)).astype("float32")
    outputs, gradients = input_gradients(lambda t: keras.ops.sum(t**3), x)
    np.testing.assert_allclose(float(outputs), np.sum(x**3), rtol=1e-5)
    np.testing.assert_allclose(gradients.numpy(), 3 * x**2, rtol=1e-5)
