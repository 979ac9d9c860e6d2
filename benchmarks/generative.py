"""`GAN` and `VAE` `fit()` against hand-written `tf.function` training loops.

Trains each generative model of keras_custom on the bundled 8x8 digits
(flattened, divided by 16 to [0, 1], tiled to `--samples` samples) with the
same networks, the same initial weights and batches of the same size, in
four forms:

- ``loop``: the custom training loop of the TensorFlow DCGAN tutorial and of
  the Keras guide "Writing a training loop from scratch": a ``@tf.function``
  train step with ``tf.GradientTape`` and ``apply_gradients``, called once
  per batch of a ``tf.data.Dataset`` (``shuffle`` then ``batch``), latents
  and noise drawn with ``tf.random.normal`` inside the step, and a
  ``keras.metrics.Mean`` per logged loss updated in the step and read at the
  end of each epoch. This is the baseline.
- ``fit``: ``keras_custom.GAN`` / ``keras_custom.VAE``, ``compile()`` and
  ``fit(x, batch_size=..., verbose=0)``.
- ``fit_spe16``: the same with ``compile(steps_per_execution=16)``.
- ``keras_fit`` (unless ``--no-reference``): a plain ``keras.Model``
  subclass in the style of the Keras guide "Customizing what happens in
  `fit()`" (own optimizers and trackers, ``train_step`` overridden, noise
  from a ``keras.random.SeedGenerator``), trained by the same ``fit()``. It
  tells what Keras's ``fit()`` costs whatever the model, so that
  ``fit / keras_fit`` is what keras_custom itself adds.

All forms do the same mathematics per batch. GAN: generator 32 -> 128 relu
-> 64 sigmoid, discriminator 64 -> 128 relu -> 1 logit; one discriminator
step (real against 1, fake against 0, ``BinaryCrossentropy(from_logits=
True)``, the fake generated from latents drawn before and outside the
discriminator's tape), then one generator step on fresh latents (fake logits
against 1), each network with its own Adam (learning rate 2e-4,
``beta_1=0.5``). VAE: encoder 64 -> 128 relu -> [z_mean, z_log_var] (16
each), decoder 16 -> 128 relu -> 64 sigmoid; reparameterized sample, binary
cross-entropy summed over the 64 pixels and averaged over the batch, plus
the KL divergence to the standard normal prior (``kl_weight=1``), one Adam
(Keras defaults) on every variable.

Every run clears the Keras session, seeds every generator with a seed that
is the same for every run of a round, builds fresh networks, copies in the
initial weights (made once from a fixed seed) and trains one warm-up epoch
(tracing, not timed). It then times a call training one epoch, and a call
training ``--epochs`` epochs with ``time.perf_counter`` (wall clock) and
``time.process_time`` (CPU time of the process, all threads). The runs
alternate in one process, one run per form in each round, for ``--rounds``
rounds; the order of the forms of a model is reversed every other round, so
that none is always first.

Reported per model and form, all medians over the rounds: time per step of
the ``--epochs`` call; its ratio to the loop of the same round in wall-clock
time (the figure the target applies to) and in CPU time; the fixed cost of
one call and the steady time per step, from the one-epoch and the
``--epochs`` calls (a call costs ``fixed + epochs * per-epoch``: ``fit()``
rebuilds its input pipeline at every call), and the steady ratio to the
loop; the setup time (build, compile, warm-up epoch); and the final losses
(a check that the forms train alike; the random draws differ, so the losses
agree only roughly). The target is a median wall-clock ratio ``fit / loop``
of at most 1.05. Also reported per model: the speed-up of
``steps_per_execution=16``, time per step with 1 / time per step with 16,
and ``fit / keras_fit``. ``--fit-input dataset`` gives ``fit()`` the loop's
``tf.data.Dataset`` instead of the NumPy array. The exit code is 0 whatever
the result: this is a report, not a test. ``main()`` returns the results as
a dict (what ``--json`` writes).

Usage::

    .venv/bin/python -m benchmarks.generative [--rounds 7] [--epochs 8]
        [--batch-size 64] [--samples 4096] [--models gan,vae]
        [--fit-input numpy|dataset] [--no-reference] [--json results.json]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import keras_custom
from benchmarks import common

PIXELS = 64
HIDDEN_UNITS = 128
GAN_LATENT_DIM = 32
VAE_LATENT_DIM = 16
GAN_LEARNING_RATE = 2e-4
GAN_BETA_1 = 0.5
MODELS = common.GENERATIVE_MODELS
REFERENCE = "keras.Model subclass, own train_step (Keras guide), fit()"


# ----------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------


def gan_networks() -> tuple[keras.Model, keras.Model]:
    """A fresh `(generator, discriminator)`."""
    generator = keras.Sequential(
        [
            keras.Input((GAN_LATENT_DIM,)),
            keras.layers.Dense(HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(PIXELS, activation="sigmoid"),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((PIXELS,)),
            keras.layers.Dense(HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(1),
        ],
        name="discriminator",
    )
    return generator, discriminator


def vae_networks() -> tuple[keras.Model, keras.Model]:
    """A fresh `(encoder, decoder)`; the encoder returns `[z_mean, z_log_var]`."""
    inputs = keras.Input((PIXELS,))
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(inputs)
    z_mean = keras.layers.Dense(VAE_LATENT_DIM, name="z_mean")(hidden)
    z_log_var = keras.layers.Dense(VAE_LATENT_DIM, name="z_log_var")(hidden)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    decoder = keras.Sequential(
        [
            keras.Input((VAE_LATENT_DIM,)),
            keras.layers.Dense(HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(PIXELS, activation="sigmoid"),
        ],
        name="decoder",
    )
    return encoder, decoder


NETWORKS: dict[str, Callable[[], tuple[keras.Model, keras.Model]]] = {
    "gan": gan_networks,
    "vae": vae_networks,
}


def gan_adam() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=GAN_LEARNING_RATE, beta_1=GAN_BETA_1)


def initial_weights() -> dict[str, list[list[np.ndarray]]]:
    """The initial weights of both networks of each model, made once."""
    return common.initial_weights(MODELS, lambda model: NETWORKS[model]())


def fresh_networks(model: str, weights: dict) -> tuple[keras.Model, keras.Model]:
    """The networks of `model` with the shared initial weights."""
    networks = NETWORKS[model]()
    common.set_weights(networks, weights[model])
    return networks


# ----------------------------------------------------------------------
# The mathematics of one step, shared by the loop and the Keras reference
# ----------------------------------------------------------------------


def gan_step(generator, discriminator, d_optimizer, g_optimizer, real, normal):
    """A discriminator step, then a generator step on fresh latents.

    `normal(shape)` draws the latents. Returns `(d_loss, g_loss)`.
    """
    batch_size = tf.shape(real)[0]

    fake = generator(normal([batch_size, GAN_LATENT_DIM]), training=True)
    with tf.GradientTape() as tape:
        d_loss = common.discriminator_loss(
            discriminator(real, training=True), discriminator(fake, training=True)
        )
    common.apply_gradients(d_optimizer, tape, d_loss, discriminator.trainable_variables)

    latents = normal([batch_size, GAN_LATENT_DIM])
    with tf.GradientTape() as tape:
        fake_logits = discriminator(generator(latents, training=True), training=True)
        g_loss = common.generator_loss(fake_logits)
    common.apply_gradients(g_optimizer, tape, g_loss, generator.trainable_variables)
    return d_loss, g_loss


def vae_step(encoder, decoder, optimizer, x, normal):
    """One step on the negative ELBO; returns `(loss, reconstruction, kl)`."""
    with tf.GradientTape() as tape:
        z_mean, z_log_var = encoder(x, training=True)
        z = z_mean + tf.exp(0.5 * z_log_var) * normal(tf.shape(z_mean))
        reconstruction = decoder(z, training=True)
        # A trailing axis of 1: Keras's last-axis mean is element-wise.
        reconstruction_loss = tf.reduce_mean(
            tf.reduce_sum(
                keras.losses.binary_crossentropy(
                    x[..., None], reconstruction[..., None]
                ),
                axis=1,
            )
        )
        kl_loss = tf.reduce_mean(
            -0.5
            * tf.reduce_sum(
                1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1
            )
        )
        loss = reconstruction_loss + kl_loss
    variables = encoder.trainable_variables + decoder.trainable_variables
    common.apply_gradients(optimizer, tape, loss, variables)
    return loss, reconstruction_loss, kl_loss


LOSS_NAMES = {
    "gan": ("d_loss", "g_loss"),
    "vae": ("loss", "reconstruction_loss", "kl_loss"),
}


# ----------------------------------------------------------------------
# The baselines: hand-written tf.function loops
# ----------------------------------------------------------------------


class GanLoop:
    """The DCGAN tutorial's loop, in the order of `keras_custom.GAN`'s step."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model):
        self.generator = generator
        self.discriminator = discriminator
        self.d_optimizer = gan_adam()
        self.g_optimizer = gan_adam()
        self.trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES["gan"]]

    @tf.function
    def train_step(self, real):
        losses = gan_step(
            self.generator,
            self.discriminator,
            self.d_optimizer,
            self.g_optimizer,
            real,
            tf.random.normal,
        )
        for tracker, value in zip(self.trackers, losses, strict=True):
            tracker.update_state(value)
        return losses


class VaeLoop:
    """The Keras VAE example's mathematics in a hand-written loop."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model):
        self.encoder = encoder
        self.decoder = decoder
        self.optimizer = keras.optimizers.Adam()
        self.trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES["vae"]]

    @tf.function
    def train_step(self, x):
        losses = vae_step(
            self.encoder, self.decoder, self.optimizer, x, tf.random.normal
        )
        for tracker, value in zip(self.trackers, losses, strict=True):
            tracker.update_state(value)
        return losses


LOOPS = {"gan": GanLoop, "vae": VaeLoop}


# ----------------------------------------------------------------------
# The reference: plain keras.Model subclasses overriding train_step
# ----------------------------------------------------------------------


class KerasReference(keras.Model):
    """The Keras guide "Customizing what happens in `fit()`" on plain Keras:
    own optimizers and `Mean` trackers, `train_step` overridden, noise from a
    `keras.random.SeedGenerator`. It separates what Keras's `fit()` costs
    from what keras_custom adds."""

    def __init__(self, model: str, networks: tuple[keras.Model, keras.Model]):
        super().__init__()
        self.kind = model
        self.first, self.second = networks
        self.seed_generator = keras.random.SeedGenerator(common.SEED)
        if model == "gan":
            self.d_optimizer = gan_adam()
            self.g_optimizer = gan_adam()
        else:
            self.vae_optimizer = keras.optimizers.Adam()
        self.trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES[model]]

    @property
    def metrics(self) -> list:
        return self.trackers

    def normal(self, shape):
        return keras.random.normal(shape, seed=self.seed_generator)

    def train_step(self, data):
        if self.kind == "gan":
            losses = gan_step(
                self.first,
                self.second,
                self.d_optimizer,
                self.g_optimizer,
                data,
                self.normal,
            )
        else:
            losses = vae_step(
                self.first, self.second, self.vae_optimizer, data, self.normal
            )
        for tracker, value in zip(self.trackers, losses, strict=True):
            tracker.update_state(value)
        return {tracker.name: tracker.result() for tracker in self.trackers}


# ----------------------------------------------------------------------
# The contenders: keras_custom models trained by fit()
# ----------------------------------------------------------------------


def library_model(model: str, networks: tuple[keras.Model, keras.Model]):
    """The `GAN` or `VAE` on `networks`, not compiled."""
    first, second = networks
    if model == "gan":
        return keras_custom.GAN(
            first,
            second,
            latent_dim=GAN_LATENT_DIM,
            d_optimizer=gan_adam(),
            g_optimizer=gan_adam(),
        )
    return keras_custom.VAE(first, second, optimizer=keras.optimizers.Adam())


BUILDERS = common.Builders(
    loop=lambda model, networks: LOOPS[model](*networks),
    library_model=library_model,
    reference=KerasReference,
)


# ----------------------------------------------------------------------
# Forms and runs
# ----------------------------------------------------------------------


def forms_of(model: str, reference: bool = True) -> tuple[common.Form, ...]:
    return common.forms_of(model, REFERENCE if reference else None)


def run_once(
    form: common.Form,
    round_index: int,
    weights: dict,
    x: np.ndarray,
    epochs: int,
    batch_size: int,
    fit_input: str = "numpy",
) -> common.Run:
    """Builds, warms up and times one form, in a fresh session."""
    common.fresh_round(round_index)
    prepared = BUILDERS.prepare_arrays(
        form, lambda: fresh_networks(form.model, weights), x, batch_size, fit_input
    )
    return common.time_run(prepared, round_index, epochs)


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None):
    parser = common.timing_parser(
        __doc__, rounds=7, epochs=8, samples=4096, models=MODELS
    )
    common.add_fit_options(parser, fit_input="numpy")
    return common.parse(parser, argv, MODELS)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Times GAN and VAE against their loops; returns what ``--json`` writes.

    `argv` `None` reads the command line, `[]` takes the defaults.
    """
    args = parse_args(argv)
    x, _ = common.tiled_digits(common.whole_batches(args.samples, args.batch_size))
    steps_per_epoch = len(x) // args.batch_size
    forms = {model: forms_of(model, args.reference) for model in args.models}
    load_before = common.print_environment()
    common.print_plan(
        args,
        f"{len(x)} samples, batch {args.batch_size}, ",
        steps_per_epoch,
        f" of {sum(map(len, forms.values()))} runs, fit() on {args.fit_input} input",
    )
    weights = initial_weights()
    started = time.perf_counter()
    runs = common.alternate(
        args.rounds,
        list(forms.values()),
        lambda form, round_index: run_once(
            form, round_index, weights, x, args.epochs, args.batch_size, args.fit_input
        ),
    )
    return common.finish(
        args, forms, runs, started, load_before, len(x), steps_per_epoch
    )


if __name__ == "__main__":
    main()
