"""The Keras guide's custom-step models, with `CustomModel` as their base.

The classes are those of the guide "Customizing what happens in `fit()`"
(keras-io, `guides/custom_train_step_in_tensorflow.py`), written out with
only their base class changed. `tests/test_tutorial_pattern.py` covers the
guide's low-level pattern with the optimizer set inside the model; this file
adds the others: `compute_loss` with compiled metrics, a `metrics` property
with `compile(optimizer=...)` only, `sample_weight`, a `test_step` of its
own, and the GAN, whose two optimizers are plain attributes set by a
`compile` of its own and which has no `call()`. Each is run on `keras.Model`
too, for reference or for contrast.
"""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_custom import CustomModel
from keras_custom.testing import assert_weights_close, logical_cpus, mirrored_strategy

RNG = np.random.default_rng(0)
X = RNG.random((64, 8)).astype("float32")
Y = RNG.random((64, 1)).astype("float32")
SAMPLE_WEIGHT = RNG.random((64, 1)).astype("float32")
IMAGES = RNG.random((64, 8, 8, 1)).astype("float32")
LATENT_DIM = 4


# ----------------------------------------------------------------------
# The guide's classes, on a base class of choice
# ----------------------------------------------------------------------


def compute_loss_class(base):
    """The guide's first example: `compute_loss` and the compiled metrics."""

    class CustomModel(base):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    return CustomModel


def own_metrics_class(base):
    """The guide's "going lower-level": own loss, trackers and `metrics`."""

    class CustomModel(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.loss_fn(y, y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {
                "loss": self.loss_tracker.result(),
                "mae": self.mae_metric.result(),
            }

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    return CustomModel


def sample_weight_class(base):
    """The guide's "supporting `sample_weight` & `class_weight`"."""

    class CustomModel(base):
        def train_step(self, data):
            if len(data) == 3:
                x, y, sample_weight = data
            else:
                sample_weight = None
                x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(
                    y=y,
                    y_pred=y_pred,
                    sample_weight=sample_weight,
                )
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sample_weight)
            return {m.name: m.result() for m in self.metrics}

    return CustomModel


def own_test_step_class(base):
    """The guide's "providing your own evaluation step"."""

    class CustomModel(base):
        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    return CustomModel


def gan_class(base):
    """The guide's end-to-end GAN."""

    class GAN(base):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
            self.seed_generator = keras.random.SeedGenerator(1337)

        @property
        def metrics(self):
            return [self.d_loss_tracker, self.g_loss_tracker]

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.loss_fn = loss_fn

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            batch_size = tf.shape(real_images)[0]
            random_latent_vectors = keras.random.normal(
                shape=(batch_size, self.latent_dim), seed=self.seed_generator
            )
            generated_images = self.generator(random_latent_vectors)
            combined_images = tf.concat([generated_images, real_images], axis=0)
            labels = tf.concat(
                [tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0
            )
            labels += 0.05 * keras.random.uniform(
                tf.shape(labels), seed=self.seed_generator
            )
            with tf.GradientTape() as tape:
                predictions = self.discriminator(combined_images)
                d_loss = self.loss_fn(labels, predictions)
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply(grads, self.discriminator.trainable_weights)
            random_latent_vectors = keras.random.normal(
                shape=(batch_size, self.latent_dim), seed=self.seed_generator
            )
            misleading_labels = tf.zeros((batch_size, 1))
            with tf.GradientTape() as tape:
                predictions = self.discriminator(self.generator(random_latent_vectors))
                g_loss = self.loss_fn(misleading_labels, predictions)
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply(grads, self.generator.trainable_weights)
            self.d_loss_tracker.update_state(d_loss)
            self.g_loss_tracker.update_state(g_loss)
            return {
                "d_loss": self.d_loss_tracker.result(),
                "g_loss": self.g_loss_tracker.result(),
            }

        # Not in the guide: what a user adds to save the model. Keras saves
        # neither base class without them (its constructor takes models:
        # "must override `get_config()`"), and `load_model` calls
        # `from_config`, which must not pass `name`, `trainable`... to
        # this constructor.
        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "discriminator": keras.saving.serialize_keras_object(
                        self.discriminator
                    ),
                    "generator": keras.saving.serialize_keras_object(self.generator),
                    "latent_dim": self.latent_dim,
                }
            )
            return config

        @classmethod
        def from_config(cls, config):
            return cls(
                discriminator=keras.saving.deserialize_keras_object(
                    config["discriminator"]
                ),
                generator=keras.saving.deserialize_keras_object(config["generator"]),
                latent_dim=config["latent_dim"],
            )

    return GAN


GAN = gan_class(CustomModel)
KerasGAN = gan_class(keras.Model)


def make_gan(cls=GAN, learning_rate: float = 3e-3, built: bool = True):
    """A small guide GAN on 8x8 images, compiled as in the guide.

    With `built=False` its networks have no `keras.Input`: they are built
    when the step first calls them.
    """
    keras.utils.set_random_seed(0)
    discriminator = keras.Sequential(
        [
            *([keras.Input(shape=(8, 8, 1))] if built else []),
            layers.Conv2D(4, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.GlobalMaxPooling2D(),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            *([keras.Input(shape=(LATENT_DIM,))] if built else []),
            layers.Dense(4 * 4 * 4),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Reshape((4, 4, 4)),
            layers.Conv2DTranspose(4, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, (3, 3), padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    gan = cls(discriminator=discriminator, generator=generator, latent_dim=LATENT_DIM)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        g_optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return gan


def gan_weights(gan) -> list:
    return gan.discriminator.get_weights() + gan.generator.get_weights()


def fit_gan(gan, images=IMAGES, batch_size: int = 16, **kwargs) -> dict:
    return gan.fit(
        images, batch_size=batch_size, shuffle=False, verbose=0, **kwargs
    ).history


# ----------------------------------------------------------------------
# The supervised examples: as on `keras.Model`
# ----------------------------------------------------------------------


def functional(cls):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8,))
    return cls(inputs, keras.layers.Dense(1)(inputs))


def _flat(logs: dict) -> dict:
    """`logs` with nested results (`{"compile_metrics": {"mae": ...}}`)
    flattened, as Keras 3.15 returns them (3.12 returns them nested from
    `evaluate(return_dict=True)`; `CustomModel` flattens them on both)."""
    flat = {}
    for key, value in logs.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


def assert_same_logs(actual: dict, expected: dict) -> None:
    expected = _flat(expected)
    assert set(actual) == set(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(actual[key], values, rtol=1e-5, err_msg=key)


@pytest.mark.parametrize(
    "make_class, fit_kwargs",
    [
        pytest.param(compute_loss_class, {}, id="compute_loss"),
        pytest.param(
            sample_weight_class, {"sample_weight": SAMPLE_WEIGHT}, id="sample_weight"
        ),
    ],
)
def test_compiled_loss_examples_train_and_evaluate_as_on_keras_model(
    make_class, fit_kwargs
):
    results = {}
    for base in (keras.Model, CustomModel):
        model = functional(make_class(base))
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        history = model.fit(
            X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0, **fit_kwargs
        ).history
        evaluation = model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
        results[base] = history, evaluation, model.get_weights()
    history, evaluation, weights = results[CustomModel]
    assert_same_logs(history, results[keras.Model][0])
    assert_same_logs(evaluation, results[keras.Model][1])
    assert_weights_close(weights, results[keras.Model][2], 1e-6)


def test_own_metrics_example_trains_as_on_keras_model_and_evaluates():
    results = {}
    for base in (keras.Model, CustomModel):
        model = functional(own_metrics_class(base))
        model.compile(optimizer="adam")
        history = model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results[base] = model, history.history
    model, history = results[CustomModel]
    assert_same_logs(history, results[keras.Model][1])
    assert_weights_close(model.get_weights(), results[keras.Model][0].get_weights())
    # Keras's default `test_step` has no loss here ("No loss to compute");
    # the core's evaluates the model's `loss_fn` and its `mae` tracker.
    with pytest.raises(ValueError, match="No loss to compute"):
        results[keras.Model][0].evaluate(X, Y, verbose=0)
    evaluation = model.evaluate(X, Y, batch_size=64, verbose=0, return_dict=True)
    error = model.predict(X, verbose=0) - Y
    np.testing.assert_allclose(evaluation["loss"], np.mean(error**2), rtol=1e-5)
    np.testing.assert_allclose(evaluation["mae"], np.mean(np.abs(error)), rtol=1e-5)


def test_own_test_step_example_evaluates_as_on_keras_model():
    results = []
    for base in (keras.Model, CustomModel):
        model = functional(own_test_step_class(base))
        model.compile(loss="mse", metrics=["mae"])
        results.append(model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True))
    assert_same_logs(results[1], results[0])


# ----------------------------------------------------------------------
# The GAN
# ----------------------------------------------------------------------


def test_gan_trains_on_one_device_as_on_keras_model():
    reference, gan = make_gan(KerasGAN), make_gan(GAN)
    assert_weights_close(gan_weights(gan), gan_weights(reference), 0, "initial")
    expected = fit_gan(reference, epochs=2)
    history = fit_gan(gan, epochs=2)
    assert_same_logs(history, expected)
    assert_weights_close(gan_weights(gan), gan_weights(reference), 1e-6)
    for name in ("d_optimizer", "g_optimizer"):
        optimizer = getattr(gan, name)
        assert int(optimizer.iterations) == 8
        assert_weights_close(
            optimizer.variables, getattr(reference, name).variables, 1e-6, name
        )
    # As on `keras.Model`, the `optimizer` that `super().compile()` sets is
    # never used, so never built: the two attribute optimizers own every
    # trainable variable.
    assert not gan.optimizer.built and gan.built


def test_keras_model_gan_cannot_train_under_mirrored_strategy():
    with mirrored_strategy(tuple(logical_cpus()[:2])).scope():
        gan = make_gan(KerasGAN)
    with pytest.raises(RuntimeError, match="Unable to automatically build the model"):
        fit_gan(gan)


class OptimizersBuilt(keras.callbacks.Callback):
    """Records whether the GAN's optimizers are built when `fit()` starts."""

    def on_train_begin(self, logs=None):
        self.built = (self.model.d_optimizer.built, self.model.g_optimizer.built)


def test_gan_trains_under_mirrored_strategy_as_on_one_device():
    """Two replicas against one device, on data where they must agree.

    The guide draws its latent vectors and label noise from one
    `SeedGenerator`, whose state is mirrored: both replicas draw the same
    numbers, where one device draws a batch twice as large. Runs on the
    same data differ for that reason alone. So the two replicas get each
    global batch as one device's batch of 8 images, twice: each replica then
    computes what the one device computes, and the summed gradients (Keras
    losses divide by the replica count) are the one device's.
    """
    strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
    assert strategy.num_replicas_in_sync == 2
    one_device = make_gan(GAN)
    with strategy.scope():
        replicated = make_gan(GAN)
    images = IMAGES[:32]
    doubled = np.concatenate([np.concatenate([b, b]) for b in np.split(images, 4)])
    callback = OptimizersBuilt()
    expected = fit_gan(one_device, images, batch_size=8)
    history = fit_gan(replicated, doubled, batch_size=16, callbacks=[callback])
    # Built before the first step, under the strategy, on their variables;
    # the unused `optimizer` of `super().compile()` on none.
    assert callback.built == (True, True)
    assert not replicated.optimizer.built
    assert_weights_close(gan_weights(replicated), gan_weights(one_device), 1e-5)
    for name in ("d_optimizer", "g_optimizer"):
        assert getattr(replicated, name).iterations.numpy() == 4
    np.testing.assert_array_equal(
        replicated.seed_generator.state.numpy(), one_device.seed_generator.state.numpy()
    )
    # The guide's trackers average `loss_fn` values, which Keras's losses
    # divide by the replica count under a strategy: its logs are halved.
    # The core does not rewrite a user's step; its own `minimize` and
    # trackers log unscaled losses.
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(
            np.array(history[key]) * 2, expected[key], rtol=1e-4, err_msg=key
        )


@pytest.mark.parametrize("distributed", [False, True], ids=["one_device", "mirrored"])
def test_gan_with_networks_built_by_its_step_trains(distributed):
    """Under a strategy Keras would build them by calling the model; the
    core runs the step symbolically instead, in the strategy's scope, so
    their weights are mirrored."""
    strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
    with strategy.scope() if distributed else contextlib.nullcontext():
        gan = make_gan(GAN, built=False)
    assert not gan.discriminator.built
    history = fit_gan(gan)
    assert all(np.isfinite(history[key]).all() for key in ("d_loss", "g_loss"))
    for network in (gan.discriminator, gan.generator):
        for weight in network.trainable_weights:
            mirrored = isinstance(weight.value, tf.distribute.DistributedValues)
            assert mirrored == distributed
    assert not gan.optimizer.built
    for name in ("d_optimizer", "g_optimizer"):
        assert getattr(gan, name).iterations.numpy() == 4


def test_gan_keras_file_restores_both_optimizers_and_trains_on(tmp_path):
    gan = make_gan(GAN)
    fit_gan(gan)
    # The guide's `compile(d_optimizer, g_optimizer, loss_fn)` call is what a
    # loaded model is compiled with, and the attribute optimizers' variables
    # are saved by path, so that they can be built before their state loads.
    config = gan.get_compile_config()
    assert set(config["compile_call"]) == {"d_optimizer", "g_optimizer", "loss_fn"}
    # By position in `trainable_variables`: the discriminator's come first.
    assert config["attribute_optimizer_variables"] == {
        "d_optimizer": [0, 1, 2, 3],
        "g_optimizer": [4, 5, 6, 7, 8, 9],
    }
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.models.load_model(path, custom_objects={"GAN": GAN})
    assert isinstance(loaded.loss_fn, keras.losses.BinaryCrossentropy)
    for name in ("d_optimizer", "g_optimizer"):
        optimizer, restored = getattr(gan, name), getattr(loaded, name)
        assert int(restored.iterations) == int(optimizer.iterations) == 4
        assert_weights_close(restored.variables, optimizer.variables, 0, name)
    # Weights, optimizer states and the seed generator's state are those of
    # the saved model: one more epoch of each gives the same weights.
    expected = fit_gan(gan)
    history = fit_gan(loaded)
    assert_same_logs(history, expected)
    assert_weights_close(gan_weights(loaded), gan_weights(gan), 1e-6)
    assert int(loaded.d_optimizer.iterations) == 8


@pytest.mark.filterwarnings("ignore:You are saving a model that has not yet been built")
def test_keras_model_gan_loads_without_its_optimizers(tmp_path):
    """The contrast: Keras does not call a custom `compile()` when loading."""
    gan = make_gan(KerasGAN)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    with pytest.warns(UserWarning, match="`compile\\(\\)` was not called"):
        loaded = keras.models.load_model(path, custom_objects={"GAN": KerasGAN})
    assert not hasattr(loaded, "d_optimizer")


def test_evaluate_without_test_step_says_what_to_add():
    with pytest.raises(NotImplementedError, match="GAN does not have a `call"):
        make_gan(KerasGAN).evaluate(IMAGES, verbose=0)
    with pytest.raises(
        NotImplementedError,
        match=r"\(GAN\) cannot be evaluated: it has no `test_step` and no "
        r"`call\(\)`\. Add to GAN a `test_step\(self, data\)`",
    ):
        make_gan(GAN).evaluate(IMAGES, verbose=0)


def test_evaluate_without_test_step_or_loss_says_what_to_add():
    class InlineLoss(CustomModel):
        """A `call`, and a loss written in `train_step` only."""

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(gradients, self.trainable_variables)
            return {"loss": loss}

    model = functional(InlineLoss)
    model.compile(optimizer="adam")
    model.fit(X, Y, batch_size=16, verbose=0)
    with pytest.raises(
        ValueError, match=r"\(InlineLoss\) has nothing to evaluate.*add to InlineLoss"
    ):
        model.evaluate(X, Y, verbose=0)
