"""GAN, WGANGP, ConditionalGAN, VAE and DiffusionModel pass the conformance harness."""

import keras
import numpy as np

from keras_custom import GAN, VAE, WGANGP, ConditionalGAN, DiffusionModel
from keras_custom.layers import TimestepEmbedding
from keras_custom.schedules import CosineIncrease
from keras_custom.testing import ConformanceTests
from tests.models import digit_data, wrong_width

LATENT_DIM = 4


def dense_net(input_dim, output_dim, activation=None, name=None, units=16):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(output_dim, activation=activation),
        ],
        name=name,
    )


def conditioned_net(input_dim, output_dim, activation=None, name=None):
    features = keras.Input((input_dim,))
    labels = keras.Input((), dtype="int32")
    onehot = keras.layers.CategoryEncoding(10, output_mode="one_hot")(labels)
    hidden = keras.layers.Dense(16, activation="relu")(
        keras.layers.Concatenate()([features, onehot])
    )
    outputs = keras.layers.Dense(output_dim, activation=activation)(hidden)
    return keras.Model([features, labels], outputs, name=name)


def images_only():
    return (digit_data()[0],)


def latents():
    return np.random.default_rng(0).normal(size=(16, LATENT_DIM)).astype("float32")


class GenerativeTests(ConformanceTests):
    draws_random_numbers = True
    deterministic_evaluation = False

    def bad_inputs(self):
        data = self.data()
        x = data[0]

        def with_x(inputs):
            return {**self._fit_args(data), "x": inputs}

        return [
            *super().bad_inputs(),
            (
                with_x(wrong_width(x)),
                r"expects samples of shape \(batch, 64\)\. Got samples of "
                r"shape \(16, 67\)",
            ),
            (
                with_x(x.reshape(-1, 8, 8)),
                r"expects samples of shape \(batch, 64\)\. Got samples of "
                r"shape \(16, 8, 8\)",
            ),
            (
                with_x((x, x, x)),
                r"takes its samples as one tensor of shape \(batch, 64\)\. Got "
                r"a tuple of 3 parts",
            ),
        ]


class TestGAN(GenerativeTests):
    log_keys = {"d_loss", "g_loss"}

    def build_model(self):
        return GAN(
            dense_net(LATENT_DIM, 64, "sigmoid", "generator"),
            dense_net(64, 1, name="discriminator"),
            latent_dim=LATENT_DIM,
            label_smoothing=0.1,
            seed=3,
        )

    def compile_kwargs(self):
        return {
            "d_optimizer": keras.optimizers.Adam(1e-3),
            "g_optimizer": keras.optimizers.SGD(0.05),
        }

    def data(self):
        return images_only()

    def predict_inputs(self):
        return latents()


class TestLeastSquaresGAN(TestGAN):
    """A different adversarial loss, given by name; default optimizers."""

    def build_model(self):
        return GAN(
            dense_net(LATENT_DIM, 64, "sigmoid", "generator"),
            dense_net(64, 1, name="discriminator"),
            latent_dim=LATENT_DIM,
            adversarial_loss="mean_squared_error",
            seed=3,
        )

    def compile_kwargs(self):
        return {}


class TestWGANGP(GenerativeTests):
    log_keys = {"d_loss", "g_loss", "gradient_penalty"}

    def build_model(self):
        return WGANGP(
            dense_net(LATENT_DIM, 64, "sigmoid", "generator"),
            dense_net(64, 1, name="critic"),
            latent_dim=LATENT_DIM,
            critic_steps=2,
            seed=3,
        )

    def data(self):
        return images_only()

    def predict_inputs(self):
        return latents()


class TestConditionalGAN(GenerativeTests):
    log_keys = {"d_loss", "g_loss"}

    def build_model(self):
        return ConditionalGAN(
            conditioned_net(LATENT_DIM, 64, "sigmoid", "generator"),
            conditioned_net(64, 1, name="discriminator"),
            latent_dim=LATENT_DIM,
            num_classes=10,
            seed=3,
        )

    def data(self):
        return digit_data()

    def predict_inputs(self):
        return [latents(), np.arange(16, dtype="int32") % 10]

    def bad_inputs(self):
        x, y = self.data()
        return [
            *super().bad_inputs(),
            ({"x": x}, r"was given no labels: it needs the class ids `y`"),
            (
                {"x": x, "y": np.eye(10)[y]},
                r"takes integer class ids of shape \(batch,\) or \(batch, 1\) "
                r"as labels\. Got labels of shape \(16, 10\)",
            ),
            (
                {"x": x, "y": y.astype("float32")},
                r"takes integer class ids as labels\. Got labels of dtype float32",
            ),
        ]


def vae(kl_weight=1.0):
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    encoder = keras.Model(
        inputs,
        [keras.layers.Dense(2)(hidden), keras.layers.Dense(2)(hidden)],
        name="encoder",
    )
    decoder = dense_net(2, 64, "sigmoid", "decoder")
    return VAE(encoder, decoder, kl_weight=kl_weight, seed=3)


class TestVAE(GenerativeTests):
    log_keys = {"loss", "reconstruction_loss", "kl_loss"}

    def build_model(self):
        return vae()

    def data(self):
        return images_only()


class TestVAEWithWarmUp(TestVAE):
    """A KL warm-up schedule resumes with the optimizer's iterations."""

    def build_model(self):
        return vae(kl_weight=keras.optimizers.schedules.PolynomialDecay(0.0, 6, 1.0))

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(0.01)}


def denoiser(num_classes=None):
    """`[x_t, t]` (and labels, with the "no label" id) to 64 outputs."""
    samples = keras.Input((64,))
    timesteps = keras.Input((), dtype="int32")
    inputs = [samples, timesteps]
    parts = [samples, TimestepEmbedding(8)(timesteps)]
    if num_classes is not None:
        labels = keras.Input((), dtype="int32")
        inputs.append(labels)
        parts.append(
            keras.layers.CategoryEncoding(num_classes + 1, output_mode="one_hot")(
                labels
            )
        )
    hidden = keras.layers.Dense(16, activation="relu")(
        keras.layers.Concatenate()(parts)
    )
    return keras.Model(inputs, keras.layers.Dense(64)(hidden), name="denoiser")


def timesteps_of(count=16):
    return (np.arange(count, dtype="int32") * 37) % 100


class TestDiffusionModel(GenerativeTests):
    """Unconditional, predicting the noise, cosine schedule."""

    log_keys = {"loss"}

    def build_model(self):
        return DiffusionModel(
            denoiser(), timesteps=100, ema_decay=0.9, sample_range=(0.0, 1.0), seed=3
        )

    def data(self):
        return images_only()

    def predict_inputs(self):
        return [digit_data()[0][:16], timesteps_of()]


class TestConditionalDiffusionModel(GenerativeTests):
    """Class-conditional with guidance dropout, predicting v, linear
    schedule, Min-SNR weighting, an EMA decay schedule."""

    log_keys = {"loss"}

    def build_model(self):
        return DiffusionModel(
            denoiser(num_classes=10),
            timesteps=100,
            schedule="linear",
            prediction="v",
            ema_decay=CosineIncrease(0.5, 0.99, steps=8),
            num_classes=10,
            guidance_dropout=0.25,
            min_snr_gamma=5.0,
            seed=3,
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(1e-3)}

    def data(self):
        return digit_data()

    def predict_inputs(self):
        x, y = digit_data(16)
        return [x, timesteps_of(), y]

    def bad_inputs(self):
        x, y = self.data()
        return [
            *super().bad_inputs(),
            ({"x": x}, r"was given no labels: it is conditional"),
            (
                {"x": x, "y": np.eye(10)[y]},
                r"takes integer class ids of shape \(batch,\) or \(batch, 1\) "
                r"as labels\. Got labels of shape \(16, 10\)",
            ),
            (
                {"x": x, "y": y.astype("float32")},
                r"takes integer class ids as labels\. Got labels of dtype float32",
            ),
        ]
