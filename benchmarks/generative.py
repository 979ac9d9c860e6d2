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

    .venv/bin/python benchmarks/generative.py [--rounds 7] [--epochs 8]
        [--batch-size 64] [--samples 4096] [--models gan,vae]
        [--fit-input numpy|dataset] [--no-reference] [--json results.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import keras_custom
from keras_custom.datasets import digits

TARGET_RATIO = 1.05
SEED = 1234
PIXELS = 64
HIDDEN_UNITS = 128
GAN_LATENT_DIM = 32
VAE_LATENT_DIM = 16
GAN_LEARNING_RATE = 2e-4
GAN_BETA_1 = 0.5
SPEEDUP_SPE = 16
MODELS = ("gan", "vae")


# ----------------------------------------------------------------------
# Data and networks
# ----------------------------------------------------------------------


def load_data(samples: int, batch_size: int) -> np.ndarray:
    """The digits training images, flattened, /16, tiled to whole batches.

    The sample count is rounded down to a multiple of `batch_size` so every
    batch has the same shape and each step is traced only once.
    """
    (x_train, _), _ = digits.load_data()
    x = x_train.reshape(len(x_train), -1).astype("float32") / 16.0
    samples = max(batch_size, samples - samples % batch_size)
    repeats = -(-samples // len(x))
    return np.tile(x, (repeats, 1))[:samples]


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


def initial_weights() -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """The initial weights of both networks of each model, made once."""
    keras.utils.set_random_seed(SEED)
    weights = {
        model: tuple(network.get_weights() for network in build())
        for model, build in NETWORKS.items()
    }
    keras.backend.clear_session()
    return weights


def fresh_networks(model: str, weights: dict) -> tuple[keras.Model, keras.Model]:
    """The networks of `model` with the shared initial weights."""
    first, second = NETWORKS[model]()
    first.set_weights(weights[model][0])
    second.set_weights(weights[model][1])
    return first, second


# ----------------------------------------------------------------------
# The mathematics of one step, shared by the loop and the Keras reference
# ----------------------------------------------------------------------

cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)


def discriminator_loss(real_logits, fake_logits):
    """The DCGAN tutorial's: real logits against 1, fake logits against 0."""
    real_loss = cross_entropy(tf.ones_like(real_logits), real_logits)
    fake_loss = cross_entropy(tf.zeros_like(fake_logits), fake_logits)
    return real_loss + fake_loss


def generator_loss(fake_logits):
    """The non-saturating loss: fake logits against 1."""
    return cross_entropy(tf.ones_like(fake_logits), fake_logits)


def gan_step(generator, discriminator, d_optimizer, g_optimizer, real, normal):
    """A discriminator step, then a generator step on fresh latents.

    `normal(shape)` draws the latents. Returns `(d_loss, g_loss)`.
    """
    batch_size = tf.shape(real)[0]

    fake = generator(normal([batch_size, GAN_LATENT_DIM]), training=True)
    with tf.GradientTape() as tape:
        d_loss = discriminator_loss(
            discriminator(real, training=True), discriminator(fake, training=True)
        )
    variables = discriminator.trainable_variables
    gradients = tape.gradient(d_loss, variables)
    d_optimizer.apply_gradients(zip(gradients, variables, strict=True))

    latents = normal([batch_size, GAN_LATENT_DIM])
    with tf.GradientTape() as tape:
        fake_logits = discriminator(generator(latents, training=True), training=True)
        g_loss = generator_loss(fake_logits)
    variables = generator.trainable_variables
    gradients = tape.gradient(g_loss, variables)
    g_optimizer.apply_gradients(zip(gradients, variables, strict=True))
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
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))
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


def make_dataset(x: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """The tutorial's input pipeline: shuffle the whole set, then batch."""
    return tf.data.Dataset.from_tensor_slices(x).shuffle(len(x)).batch(batch_size)


def train_loop(loop, dataset: tf.data.Dataset, epochs: int) -> dict[str, float]:
    """The tutorial's outer loop; returns the last epoch's mean losses."""
    logs: dict[str, float] = {}
    for _ in range(epochs):
        for tracker in loop.trackers:
            tracker.reset_state()
        for batch in dataset:
            loop.train_step(batch)
        logs = {tracker.name: float(tracker.result()) for tracker in loop.trackers}
    return logs


# ----------------------------------------------------------------------
# The reference: plain keras.Model subclasses overriding train_step
# ----------------------------------------------------------------------


class KerasReference(keras.Model):
    """The Keras guide "Customizing what happens in `fit()`" on plain Keras:
    own optimizers and `Mean` trackers, `train_step` overridden, noise from a
    `keras.random.SeedGenerator`. It separates what Keras's `fit()` costs
    from what keras_custom adds."""

    def __init__(self, model: str, first: keras.Model, second: keras.Model):
        super().__init__()
        self.kind = model
        self.first = first
        self.second = second
        self.seed_generator = keras.random.SeedGenerator(SEED)
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


def build_model(model: str, weights: dict, steps_per_execution: int) -> keras.Model:
    """A compiled `GAN` or `VAE` on fresh networks with the initial weights."""
    first, second = fresh_networks(model, weights)
    if model == "gan":
        built = keras_custom.GAN(
            first,
            second,
            latent_dim=GAN_LATENT_DIM,
            d_optimizer=gan_adam(),
            g_optimizer=gan_adam(),
        )
    else:
        built = keras_custom.VAE(first, second, optimizer=keras.optimizers.Adam())
    built.compile(steps_per_execution=steps_per_execution)
    return built


def build_reference(model: str, weights: dict) -> keras.Model:
    """A compiled `KerasReference` on fresh networks with the initial weights."""
    built = KerasReference(model, *fresh_networks(model, weights))
    built.compile()
    return built


# ----------------------------------------------------------------------
# Forms and runs
# ----------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """One way of training one model.

    `kind` is ``"loop"``, ``"keras_custom"`` or ``"keras"`` (the reference).
    """

    model: str
    name: str
    description: str
    kind: str
    steps_per_execution: int = 1

    @property
    def key(self) -> str:
        return f"{self.model}_{self.name}"


def forms_of(model: str, reference: bool = True) -> tuple[Form, ...]:
    label = model.upper()
    forms = [
        Form(model, "loop", "hand-written @tf.function loop over tf.data", "loop"),
        Form(model, "fit", f"keras_custom.{label}, compile(), fit()", "keras_custom"),
        Form(
            model,
            f"fit_spe{SPEEDUP_SPE}",
            f"keras_custom.{label}, compile(steps_per_execution={SPEEDUP_SPE}), fit()",
            "keras_custom",
            SPEEDUP_SPE,
        ),
    ]
    if reference:
        forms.append(
            Form(
                model,
                "keras_fit",
                "keras.Model subclass, own train_step (Keras guide), fit()",
                "keras",
            )
        )
    return tuple(forms)


@dataclass
class Run:
    """Measurements of one run of one form.

    `train_seconds` and `cpu_seconds` time one call training `epochs`
    epochs; `one_epoch_seconds` times a call training one epoch, made just
    before. From the two, a call costs `fixed_seconds` once (for `fit()`:
    its input pipeline and callbacks) plus `epoch_seconds` per epoch.
    """

    form: str
    round: int
    setup_seconds: float
    one_epoch_seconds: float
    train_seconds: float
    cpu_seconds: float
    epochs: int
    steps: int
    final_losses: dict[str, float]

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.train_seconds / self.steps

    @property
    def epoch_seconds(self) -> float | None:
        if self.epochs < 2:
            return None
        return (self.train_seconds - self.one_epoch_seconds) / (self.epochs - 1)

    @property
    def fixed_seconds(self) -> float | None:
        if self.epochs < 2:
            return None
        return self.one_epoch_seconds - self.epoch_seconds

    @property
    def steady_ms_per_step(self) -> float | None:
        if self.epochs < 2:
            return None
        return 1000.0 * self.epoch_seconds * self.epochs / self.steps


def run_once(
    form: Form,
    round_index: int,
    weights: dict,
    x: np.ndarray,
    epochs: int,
    batch_size: int,
    fit_input: str = "numpy",
) -> Run:
    """Builds, warms up and times one form."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(SEED + round_index)
    start = time.perf_counter()
    if form.kind == "loop":
        loop = LOOPS[form.model](*fresh_networks(form.model, weights))
        dataset = make_dataset(x, batch_size)

        def train(epochs: int) -> dict[str, float]:
            return train_loop(loop, dataset, epochs)

    else:
        if form.kind == "keras":
            model = build_reference(form.model, weights)
        else:
            model = build_model(form.model, weights, form.steps_per_execution)
        if fit_input == "dataset":
            # Already shuffled: `fit` would warn that it ignores `shuffle`.
            data = {"x": make_dataset(x, batch_size), "shuffle": False}
        else:
            data = {"x": x, "batch_size": batch_size}

        def train(epochs: int) -> dict[str, float]:
            history = model.fit(epochs=epochs, verbose=0, **data)
            return {name: float(values[-1]) for name, values in history.history.items()}

    train(1)  # the warm-up epoch: tracing
    setup_seconds = time.perf_counter() - start
    gc.collect()
    start = time.perf_counter()
    train(1)
    one_epoch_seconds = time.perf_counter() - start
    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    final_losses = train(epochs)
    train_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return Run(
        form=form.key,
        round=round_index,
        setup_seconds=setup_seconds,
        one_epoch_seconds=one_epoch_seconds,
        train_seconds=train_seconds,
        cpu_seconds=cpu_seconds,
        epochs=epochs,
        steps=epochs * (len(x) // batch_size),
        final_losses=final_losses,
    )


# ----------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------


def _ratios(by_key: dict, form: str, baseline: str, rounds: int, attribute: str):
    values = [getattr(by_key[(form, r)], attribute) for r in range(rounds)]
    bases = [getattr(by_key[(baseline, r)], attribute) for r in range(rounds)]
    return [value / base for value, base in zip(values, bases, strict=True)]


def _median_or_none(values) -> float | None:
    values = list(values)
    return None if None in values else statistics.median(values)


def _paired(by_key: dict, form: str, baseline: str, rounds: int) -> dict[str, Any]:
    """Median, range and CPU median of time(form) / time(baseline) per round."""
    wall = _ratios(by_key, form, baseline, rounds, "train_seconds")
    cpu = _ratios(by_key, form, baseline, rounds, "cpu_seconds")
    return {
        "median": statistics.median(wall),
        "min": min(wall),
        "max": max(wall),
        "ratios": wall,
        "cpu_median": statistics.median(cpu),
        "cpu_ratios": cpu,
    }


def form_summary(
    model: str, form, own: list, to_loop: dict, by_key: dict, loop_key: str
) -> dict[str, Any]:
    """The medians of one form's runs and its ratios to the loop's."""
    return {
        "model": model,
        "form": form.name,
        "description": form.description,
        "kind": form.kind,
        "steps_per_execution": (
            None if form.kind == "loop" else form.steps_per_execution
        ),
        "ratio_median": to_loop["median"],
        "ratio_min": to_loop["min"],
        "ratio_max": to_loop["max"],
        "ratios": to_loop["ratios"],
        "cpu_ratio_median": to_loop["cpu_median"],
        "cpu_ratios": to_loop["cpu_ratios"],
        "ms_per_step_median": statistics.median(run.ms_per_step for run in own),
        "cpu_ms_per_step_median": statistics.median(
            1000.0 * run.cpu_seconds / run.steps for run in own
        ),
        "setup_seconds_median": statistics.median(run.setup_seconds for run in own),
        "fixed_ms_median": _median_or_none(
            run.fixed_seconds and 1000.0 * run.fixed_seconds for run in own
        ),
        "steady_ms_per_step_median": _median_or_none(
            run.steady_ms_per_step for run in own
        ),
        "steady_ratio_median": _median_or_none(
            run.epoch_seconds
            and run.epoch_seconds / by_key[(loop_key, run.round)].epoch_seconds
            for run in own
        ),
        "final_losses_median": {
            name: statistics.median(run.final_losses[name] for run in own)
            for name in sorted(own[0].final_losses)
        },
    }


def environment(load_before, load_after) -> dict[str, Any]:
    """Versions, CPU count and load averages, for a benchmark's JSON."""
    return {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "keras_custom": keras_custom.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
    }


def summarize(
    runs: list[Run], models: list[str], rounds: int, reference: bool
) -> dict[str, Any]:
    """Per-form medians with ratios to the loop, and per-model comparisons."""
    by_key = {(run.form, run.round): run for run in runs}
    forms, comparisons = [], []
    for model in models:
        model_forms = forms_of(model, reference)
        loop, fit, fit_spe = model_forms[:3]
        for form in model_forms:
            own = [by_key[(form.key, r)] for r in range(rounds)]
            to_loop = _paired(by_key, form.key, loop.key, rounds)
            forms.append(
                {
                    **form_summary(model, form, own, to_loop, by_key, loop.key),
                    "meets_target": (
                        to_loop["median"] <= TARGET_RATIO
                        if form.name == "fit"
                        else None
                    ),
                }
            )
        comparison = {
            "model": model,
            "speedup_steps_per_execution": SPEEDUP_SPE,
            # time per step with 1 / time per step with SPEEDUP_SPE
            "speedup": _paired(by_key, fit.key, fit_spe.key, rounds),
        }
        if reference:
            comparison["fit_vs_keras_fit"] = _paired(
                by_key, fit.key, model_forms[3].key, rounds
            )
        comparisons.append(comparison)
    return {"forms": forms, "comparisons": comparisons}


def format_tables(summary: dict[str, Any]) -> str:
    """Markdown tables of the summary: ratios to the loop, then comparisons."""
    header = (
        "| model | form | ms/step | ratio to loop (median) | ratio range "
        "| CPU ratio | per-call ms | steady ms/step | steady ratio | setup s "
        "| final losses | within 1.05 |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in summary["forms"]:
        losses = ", ".join(
            f"{name} {value:.3f}" for name, value in row["final_losses_median"].items()
        )
        if row["form"] == "loop":
            ratio, spread, cpu = "1.000", "-", "1.000"
        else:
            ratio = f"{row['ratio_median']:.3f}"
            spread = f"{row['ratio_min']:.3f}-{row['ratio_max']:.3f}"
            cpu = f"{row['cpu_ratio_median']:.3f}"
        fixed, steady, steady_ratio = (
            "-" if row[key] is None else f"{row[key]:{spec}}"
            for key, spec in (
                ("fixed_ms_median", ".0f"),
                ("steady_ms_per_step_median", ".3f"),
                ("steady_ratio_median", ".3f"),
            )
        )
        if row["meets_target"] is None:
            meets = "(baseline)" if row["form"] == "loop" else "-"
        else:
            meets = "yes" if row["meets_target"] else "NO"
        lines.append(
            f"| {row['model']} | {row['form']} | {row['ms_per_step_median']:.3f} "
            f"| {ratio} | {spread} | {cpu} | {fixed} | {steady} | {steady_ratio} "
            f"| {row['setup_seconds_median']:.2f} "
            f"| {losses} | {meets} |"
        )
    lines += [
        "",
        "| model | comparison | ratio (median) | range | CPU ratio |",
        "|---|---|---|---|---|",
    ]
    for row in summary["comparisons"]:
        entries = [
            (
                f"speed-up of steps_per_execution={SPEEDUP_SPE} "
                "(time/step with 1 / with "
                f"{SPEEDUP_SPE})",
                row["speedup"],
            )
        ]
        if "fit_vs_keras_fit" in row:
            entries.append(
                ("fit / keras_fit (keras_custom's own cost)", row["fit_vs_keras_fit"])
            )
        for label, values in entries:
            lines.append(
                f"| {row['model']} | {label} | {values['median']:.3f} "
                f"| {values['min']:.3f}-{values['max']:.3f} "
                f"| {values['cpu_median']:.3f} |"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="rounds; use at least 5 for a meaningful median",
    )
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per run")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size")
    parser.add_argument(
        "--samples",
        type=int,
        default=4096,
        help="training samples (digits tiled, rounded down to whole batches)",
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated models to run, of: " + ", ".join(MODELS),
    )
    parser.add_argument(
        "--fit-input",
        choices=("numpy", "dataset"),
        default="numpy",
        help="what fit() gets: the NumPy array with batch_size, or the loop's "
        "tf.data.Dataset",
    )
    parser.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run keras_fit, a plain keras.Model subclass trained by fit()",
    )
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    for name in ("rounds", "epochs", "batch_size", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown or not args.models:
        parser.error(f"--models takes some of {', '.join(MODELS)}; got {unknown}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark and prints the tables; returns the results as a dict.

    Args:
        argv: Command-line arguments; `None` reads `sys.argv`, `[]` takes the
            defaults.
    """
    args = parse_args(argv)
    x = load_data(args.samples, args.batch_size)
    steps_per_epoch = len(x) // args.batch_size
    forms = [form for model in args.models for form in forms_of(model, args.reference)]
    load_before = os.getloadavg()
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"keras_custom {keras_custom.__version__}, python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.2f}"
    )
    print(
        f"{len(x)} samples, batch {args.batch_size}, {steps_per_epoch} steps/epoch, "
        f"{args.epochs} timed epochs per run, {args.rounds} rounds "
        f"of {len(forms)} runs, fit() on {args.fit_input} input"
    )
    weights = initial_weights()
    runs: list[Run] = []
    started = time.perf_counter()
    for round_index in range(args.rounds):
        done = []
        for model in args.models:
            order = forms_of(model, args.reference)
            if round_index % 2:
                order = order[::-1]
            for form in order:
                run = run_once(
                    form,
                    round_index,
                    weights,
                    x,
                    args.epochs,
                    args.batch_size,
                    args.fit_input,
                )
                runs.append(run)
                done.append(f"{run.form} {run.train_seconds:.2f}s")
        print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(done), flush=True)
    total_seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    summary = summarize(runs, args.models, args.rounds, args.reference)

    print()
    print(format_tables(summary))
    print()
    print(
        f"Target: median time ratio fit / loop <= {TARGET_RATIO:.2f} "
        "(ratio = time(form) / time(loop in the same round))."
    )
    for row in summary["forms"]:
        if row["meets_target"] is not None:
            verdict = "meets" if row["meets_target"] else "does NOT meet"
            print(
                f"  {row['model']} fit: {row['ratio_median']:.3f} vs loop "
                f"-> {verdict} the target"
            )
    print(
        f"Total {total_seconds:.0f}s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (other processes add noise)."
    )

    result = {
        "config": {
            "rounds": args.rounds,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "samples": len(x),
            "steps_per_epoch": steps_per_epoch,
            "models": args.models,
            "fit_input": args.fit_input,
            "reference": args.reference,
            "speedup_steps_per_execution": SPEEDUP_SPE,
            "target_ratio": TARGET_RATIO,
        },
        "environment": environment(load_before, load_after),
        "total_seconds": total_seconds,
        "summary": summary,
        "runs": [
            {
                **asdict(run),
                "ms_per_step": run.ms_per_step,
                "epoch_seconds": run.epoch_seconds,
                "fixed_seconds": run.fixed_seconds,
                "steady_ms_per_step": run.steady_ms_per_step,
            }
            for run in runs
        ],
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
            file.write("\n")
        print(f"Wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
