"""GAN and ConditionalGAN steps against a hand-written GradientTape loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_custom import GAN, ConditionalGAN
from tests.models import digit_data
from tests.test_generative_conformance import LATENT_DIM, conditioned_net, dense_net

BATCH = 16
SMOOTHING = 0.1


def bce_with_logits(target, logits):
    """Binary cross-entropy on logits, written out (not Keras's)."""
    logits = tf.cast(logits, "float64")
    per_sample = (
        tf.maximum(logits, 0.0)
        - logits * target
        + tf.math.log1p(tf.exp(-tf.abs(logits)))
    )
    return tf.reduce_mean(per_sample)


class FixedLatents:
    """Mixin: the D step gets `latents[0]`, the G step `latents[1]`."""

    def sample_latents(self, batch_size):
        self.calls = getattr(self, "calls", 0) + 1
        return keras.ops.convert_to_tensor(self.fixed_latents[(self.calls - 1) % 2])


class FixedGAN(FixedLatents, GAN):
    pass


class FixedConditionalGAN(FixedLatents, ConditionalGAN):
    pass


def reference_step(generator, discriminator, real, latents, labels, learning_rates):
    """One D step then one G step, the tutorial's custom-loop way, with SGD."""
    d_rate, g_rate = learning_rates
    labels = None if labels is None else tf.constant(labels)
    real, latents = tf.constant(real), tf.constant(latents)

    def generate(z):
        return generator(z if labels is None else [z, labels], training=True)

    def discriminate(x):
        return discriminator(x if labels is None else [x, labels], training=True)

    fake = generate(latents[0])
    with tf.GradientTape() as tape:
        d_loss = bce_with_logits(1.0 - SMOOTHING, discriminate(real)) + bce_with_logits(
            0.0, discriminate(fake)
        )
    gradients = tape.gradient(d_loss, discriminator.trainable_variables)
    for variable, gradient in zip(
        discriminator.trainable_variables, gradients, strict=True
    ):
        variable.assign_sub(d_rate * gradient)
    with tf.GradientTape() as tape:
        g_loss = bce_with_logits(1.0, discriminate(generate(latents[1])))
    gradients = tape.gradient(g_loss, generator.trainable_variables)
    for variable, gradient in zip(
        generator.trainable_variables, gradients, strict=True
    ):
        variable.assign_sub(g_rate * gradient)
    return float(d_loss), float(g_loss)


@pytest.mark.parametrize("conditional", [False, True], ids=["GAN", "ConditionalGAN"])
def test_one_step_equals_hand_written_loop(conditional):
    keras.utils.set_random_seed(0)
    if conditional:
        generator = conditioned_net(LATENT_DIM, 64, "sigmoid")
        discriminator = conditioned_net(64, 1)
        make = FixedConditionalGAN
        extra = {"num_classes": 10}
    else:
        generator = dense_net(LATENT_DIM, 64, "sigmoid")
        discriminator = dense_net(64, 1)
        make = FixedGAN
        extra = {}
    initial = [generator.get_weights(), discriminator.get_weights()]
    rng = np.random.default_rng(1)
    latents = rng.normal(size=(2, BATCH, LATENT_DIM)).astype("float32")
    real, labels = digit_data(BATCH)

    gan = make(
        generator,
        discriminator,
        latent_dim=LATENT_DIM,
        label_smoothing=SMOOTHING,
        **extra,
    )
    gan.fixed_latents = latents
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer="sgd")
    logs = gan.fit(
        real,
        labels if conditional else None,
        batch_size=BATCH,
        shuffle=False,
        verbose=0,
    ).history

    reference_generator = keras.models.clone_model(generator)
    reference_discriminator = keras.models.clone_model(discriminator)
    reference_generator.set_weights(initial[0])
    reference_discriminator.set_weights(initial[1])
    d_loss, g_loss = reference_step(
        reference_generator,
        reference_discriminator,
        real,
        latents,
        labels if conditional else None,
        learning_rates=(0.1, 0.01),  # "sgd" is SGD(0.01)
    )
    np.testing.assert_allclose(logs["d_loss"][0], d_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["g_loss"][0], g_loss, rtol=1e-5)
    for model, reference in (
        (generator, reference_generator),
        (discriminator, reference_discriminator),
    ):
        for actual, expected in zip(
            model.get_weights(), reference.get_weights(), strict=True
        ):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_compile_replaces_only_the_optimizers_it_is_given():
    gan = GAN(dense_net(4, 64), dense_net(64, 1), latent_dim=4, g_optimizer="sgd")
    gan.compile(d_optimizer="rmsprop")
    assert isinstance(gan.d_optimizer, keras.optimizers.RMSprop)
    assert isinstance(gan.g_optimizer, keras.optimizers.SGD)
    default = GAN(dense_net(4, 64), dense_net(64, 1), latent_dim=4)
    default.compile()
    for optimizer in (default.d_optimizer, default.g_optimizer):
        assert isinstance(optimizer, keras.optimizers.Adam)
        assert optimizer.beta_1 == 0.5
        np.testing.assert_allclose(float(optimizer.learning_rate), 2e-4)
    assert default.optimizer is None  # no third optimizer


def test_generate_and_call_use_the_generator():
    keras.utils.set_random_seed(0)
    gan = GAN(dense_net(4, 64, "sigmoid"), dense_net(64, 1), latent_dim=4)
    samples = gan.generate(5, seed=7)
    assert samples.shape == (5, 64)
    np.testing.assert_array_equal(samples, gan.generate(5, seed=7))
    z = np.random.default_rng(7).standard_normal((5, 4)).astype("float32")
    np.testing.assert_allclose(samples, gan.generator(z), atol=1e-6)
    np.testing.assert_allclose(gan(z), gan.generator(z), atol=1e-6)


def test_conditional_generate_passes_the_labels():
    # A generator that writes its label as a one-hot row and ignores z.
    latents = keras.Input((4,))
    labels = keras.Input((), dtype="int32")
    onehot = keras.layers.CategoryEncoding(10, output_mode="one_hot")(labels)
    generator = keras.Model([latents, labels], onehot)
    cgan = ConditionalGAN(
        generator, conditioned_net(10, 1), latent_dim=4, num_classes=10
    )
    samples = cgan.generate([3, 5, 3])
    np.testing.assert_array_equal(samples.argmax(axis=1), [3, 5, 3])
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        cgan.generate([10])
    with pytest.raises(ValueError, match="integer class ids"):
        cgan.generate([0.5])


def test_bad_arguments_raise_clear_errors():
    generator, discriminator = dense_net(4, 64), dense_net(64, 1)
    with pytest.raises(ValueError, match="latent_dim"):
        GAN(generator, discriminator, latent_dim=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        GAN(generator, discriminator, latent_dim=4, label_smoothing=1.0)
    with pytest.raises(ValueError, match="discriminator"):
        GAN(generator, "not a model", latent_dim=4)
    with pytest.raises(ValueError, match="adversarial_loss"):
        GAN(generator, discriminator, latent_dim=4).compile(loss="mse")
    with pytest.raises(ValueError, match="optimizer"):
        GAN(generator, discriminator, latent_dim=4).compile(c_optimizer="adam")
