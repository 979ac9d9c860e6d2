"""`SimCLR`, `SimSiam`, `BYOL` and `BarlowTwins` `fit()` against a hand-written
`tf.function` training loop.

Trains each self-supervised model of keras_custom on the bundled 8x8 digits
(images ``(N, 8, 8, 1)`` divided by 16 to [0, 1], tiled to `--samples`
images, no labels, so no online probe) with the same networks, the same
initial weights, the same augmenter and batches of the same size, in four
forms:

- ``loop``: the custom training loop of the Keras guide "Writing a training
  loop from scratch": a ``@tf.function`` train step with ``tf.GradientTape``
  and ``apply_gradients``, called once per batch of a ``tf.data.Dataset``
  (``shuffle`` then ``batch``), with a ``keras.metrics.Mean`` of the loss
  updated in the step and read at the end of each epoch. This is the
  baseline.
- ``fit``: ``keras_custom.SimCLR`` / ``SimSiam`` / ``BYOL`` /
  ``BarlowTwins``, ``compile()`` and ``fit(...)``.
- ``fit_spe16``: the same with ``compile(steps_per_execution=16)``.
- ``keras_fit`` (unless ``--no-reference``): a plain ``keras.Model``
  subclass in the style of the Keras guide "Customizing what happens in
  `fit()`" (own optimizer and tracker, ``train_step`` overridden) whose step
  is the loop's step, trained by the same ``fit()``. It tells what Keras's
  ``fit()`` costs whatever the model, so that ``fit / keras_fit`` is what
  keras_custom itself adds.

All forms do the same mathematics per batch. The encoder is a small conv net
(8x8x1 -> conv 3x3 16 relu -> conv 3x3 stride 2 32 relu -> flatten -> 64
relu), the heads are the library's ``ProjectionHead`` and ``PredictionHead``
(Dense-BatchNorm-ReLU-Dense), the augmenter is
``keras_custom.self_supervised.small_image_augmenter(seed=...)`` applied
twice with ``training=True`` to make two views of the batch, the losses are
the library's loss objects (``NTXent``, ``NegativeCosineSimilarity``,
``BarlowTwinsLoss``) and one Adam (Keras defaults) updates every trainable
variable:

- SimCLR: projector 64 -> 64 -> 32; ``NTXent(temperature=0.5)`` of the two
  views' projections.
- SimSiam: projector 64 -> 64 -> 32 with a batch-normalized output,
  predictor 32 -> 16 -> 32; ``0.5 * (D(p_1, sg(z_2)) + D(p_2, sg(z_1)))``
  with ``D`` the negative cosine similarity.
- BYOL: projector 64 -> 64 -> 32, predictor 32 -> 16 -> 32, a target copy
  of encoder and projector built as ``keras_custom.layers.TargetNetwork``
  builds it (variables not trainable, batch normalization on the batch's
  statistics with ``momentum=1``, output gradient-stopped);
  ``4 + 2 * (D(q_1, z'_2) + D(q_2, z'_1))``; after each optimizer step every
  float variable of the target moves by ``var.assign(decay * var + (1 -
  decay) * online)`` with ``decay = 0.99``.
- Barlow Twins: projector 64 -> 64 -> 32; ``BarlowTwinsLoss`` with
  ``redundancy_weight = 1 / 32``.

Each form is built once, in one Keras session: fresh networks and a fresh
augmenter (seeded alike), the initial weights (made once from a fixed seed)
copied in, compiled, and one warm-up epoch trained (tracing, not timed;
reported as the setup time). Unlike ``generative.py``, which rebuilds every
form for every run, the forms are not rebuilt per round: tracing the
augmenter and the step costs 3 to 10 seconds per form on 2 shared cores,
which would take most of the time budget. The built forms are then exempted
from Python's garbage collector (``gc.freeze()``): they hold about a million
objects, and a full collection would take about a second before every timed
call. Each round then times, for every
form in turn, a call training one epoch and a call training ``--epochs``
epochs, with ``time.perf_counter`` (wall clock) and ``time.process_time``
(CPU time of the process, all threads). The forms keep training from round
to round; all of them have trained the same number of epochs at the end of
each round. The order of the forms of a model is reversed every other round,
so that none is always first.

Reported per model and form, all medians over the rounds, as in
``generative.py`` (whose timing records, paired ratios and tables this script
imports): time per step; its ratio to the loop of the same round in
wall-clock time (the figure the target applies to) and in CPU time; the
per-call and steady per-step costs; the setup time; and the loss of the
last epoch of each round's call (the forms train alike, so these agree). The
target is a median wall-clock ratio ``fit / loop`` of at most 1.05. Also per
model: the speed-up of ``steps_per_execution=16`` and ``fit / keras_fit``.

``--fit-input`` defaults to ``dataset``: the loop iterates over a
``tf.data.Dataset``, so ``fit()`` on the same dataset is the like-for-like
comparison of the training machinery; ``--fit-input numpy`` gives ``fit()``
the NumPy array with ``batch_size`` instead (then Keras's own NumPy input
pipeline is part of the ``fit`` time). ``--check`` instead runs 3 steps of
every form on the same batches from the same weights and prints how far the
losses and weights are apart (the augmenters draw the same views). The exit
code is 0 whatever the result: this is a report, not a test. ``main()``
returns the results as a dict (what ``--json`` writes).

Usage::

    .venv/bin/python benchmarks/self_supervised.py [--rounds 9] [--epochs 4]
        [--batch-size 64] [--samples 2048]
        [--models simclr,simsiam,byol,barlow_twins]
        [--fit-input dataset|numpy] [--no-reference] [--check]
        [--json results.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import generative
import keras
import numpy as np
import tensorflow as tf
from generative import (
    SPEEDUP_SPE,
    TARGET_RATIO,
    Form,
    Run,
    _paired,
    format_tables,
    make_dataset,
    train_loop,
)

import keras_custom
from keras_custom.datasets import digits
from keras_custom.layers import PredictionHead, ProjectionHead
from keras_custom.losses import BarlowTwinsLoss, NegativeCosineSimilarity, NTXent
from keras_custom.self_supervised import small_image_augmenter

SEED = 1234
IMAGE_SHAPE = (8, 8, 1)
FEATURES = 64
PROJECTION_UNITS = 32
PROJECTION_HIDDEN = 64
PREDICTION_HIDDEN = 16
TEMPERATURE = 0.5
EMA_DECAY = 0.99
REDUNDANCY_WEIGHT = 1.0 / PROJECTION_UNITS
CHECK_STEPS = 3
MODELS = ("simclr", "simsiam", "byol", "barlow_twins")
LIBRARY_CLASSES = {
    "simclr": "SimCLR",
    "simsiam": "SimSiam",
    "byol": "BYOL",
    "barlow_twins": "BarlowTwins",
}
HAS_PREDICTOR = {"simsiam", "byol"}


# ----------------------------------------------------------------------
# Data and networks
# ----------------------------------------------------------------------


def load_data(samples: int, batch_size: int) -> np.ndarray:
    """The digits training images `(N, 8, 8, 1)`, /16, tiled to whole batches.

    The sample count is rounded down to a multiple of `batch_size` so every
    batch has the same shape and each step is traced only once.
    """
    (x_train, _), _ = digits.load_data()
    x = x_train[..., None].astype("float32") / 16.0
    samples = max(batch_size, samples - samples % batch_size)
    repeats = -(-samples // len(x))
    return np.tile(x, (repeats, 1, 1, 1))[:samples]


@dataclass
class Networks:
    """The online networks of one model (`predictor` is `None` if it has none)."""

    encoder: keras.Model
    projector: keras.layers.Layer
    predictor: keras.layers.Layer | None

    def parts(self) -> list:
        parts = (self.encoder, self.projector, self.predictor)
        return [part for part in parts if part is not None]


def encoder_network() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(FEATURES, activation="relu"),
        ],
        name="encoder",
    )


def projector_network(model: str) -> ProjectionHead:
    projector = ProjectionHead(
        PROJECTION_UNITS,
        hidden_units=PROJECTION_HIDDEN,
        output_batch_norm=model == "simsiam",
        name="projector",
    )
    projector.build((None, FEATURES))
    return projector


def predictor_network() -> PredictionHead:
    predictor = PredictionHead(
        PROJECTION_UNITS, hidden_units=PREDICTION_HIDDEN, name="predictor"
    )
    predictor.build((None, PROJECTION_UNITS))
    return predictor


def build_networks(model: str) -> Networks:
    """Fresh networks of `model`, with random initial weights."""
    return Networks(
        encoder_network(),
        projector_network(model),
        predictor_network() if model in HAS_PREDICTOR else None,
    )


def initial_weights(models) -> dict[str, list[list[np.ndarray]]]:
    """The initial weights of each model's networks, made once."""
    keras.utils.set_random_seed(SEED)
    weights = {
        model: [part.get_weights() for part in build_networks(model).parts()]
        for model in models
    }
    keras.backend.clear_session()
    return weights


def fresh_networks(model: str, weights: dict) -> Networks:
    """The networks of `model` with the shared initial weights."""
    networks = build_networks(model)
    for part, values in zip(networks.parts(), weights[model], strict=True):
        part.set_weights(values)
    return networks


def augmenter() -> keras.Sequential:
    """The augmenter, seeded: every form draws the same views."""
    return small_image_augmenter(seed=SEED)


def float_variables(layer) -> list:
    """A layer's float variables in structural order (as `TargetNetwork`)."""
    return [v for v in layer.variables if "float" in str(v.dtype)]


# ----------------------------------------------------------------------
# The mathematics of one step, shared by the loop and the Keras reference
# ----------------------------------------------------------------------


class SslStep:
    """One model's step: two views, its loss, one Adam step, BYOL's EMA.

    The target of BYOL is built here as `keras_custom.layers.TargetNetwork`
    builds it: a copy of the online encoder and projector (same architecture,
    the online weights) whose variables are not trainable, whose batch
    normalization keeps `training=True` (the batch's statistics) with
    `momentum=1` (its moving statistics move by the EMA alone), and whose
    output is gradient-stopped.
    """

    def __init__(self, model: str, networks: Networks):
        self.model = model
        self.networks = networks
        self.augmenter = augmenter()
        self.optimizer = keras.optimizers.Adam()
        self.variables = [
            v for part in networks.parts() for v in part.trainable_variables
        ]
        self.ntxent = NTXent(TEMPERATURE)
        self.cosine = NegativeCosineSimilarity()
        self.barlow_twins = BarlowTwinsLoss(REDUNDANCY_WEIGHT)
        self.target: list = []
        self.ema_pairs: list = []
        if model == "byol":
            self.target = [encoder_network(), projector_network(model)]
            online = [networks.encoder, networks.projector]
            for copy, part in zip(self.target, online, strict=True):
                pairs = list(
                    zip(float_variables(copy), float_variables(part), strict=True)
                )
                for target, source in pairs:
                    target.assign(source)
                    target.trainable = False
                for layer in copy._flatten_layers(include_self=True):
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.momentum = 1.0
                self.ema_pairs += pairs

    def project(self, view):
        features = self.networks.encoder(view, training=True)
        return self.networks.projector(features, training=True)

    def loss(self, view_1, view_2):
        if self.model == "simclr":
            return self.ntxent(self.project(view_1), self.project(view_2))
        if self.model == "barlow_twins":
            return self.barlow_twins(self.project(view_1), self.project(view_2))
        predictor = self.networks.predictor
        if self.model == "simsiam":
            z_1, z_2 = self.project(view_1), self.project(view_2)
            p_1 = predictor(z_1, training=True)
            p_2 = predictor(z_2, training=True)
            return 0.5 * (
                self.cosine(tf.stop_gradient(z_2), p_1)
                + self.cosine(tf.stop_gradient(z_1), p_2)
            )

        # BYOL
        def target(view):
            encoder, projector = self.target
            features = encoder(view, training=True)
            return tf.stop_gradient(projector(features, training=True))

        q_1 = predictor(self.project(view_1), training=True)
        q_2 = predictor(self.project(view_2), training=True)
        return 4.0 + 2.0 * (
            self.cosine(target(view_2), q_1) + self.cosine(target(view_1), q_2)
        )

    def __call__(self, x):
        view_1 = self.augmenter(x, training=True)
        view_2 = self.augmenter(x, training=True)
        with tf.GradientTape() as tape:
            loss = self.loss(view_1, view_2)
        gradients = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables, strict=True))
        decay = tf.constant(EMA_DECAY, "float32")  # in float32, as the library
        for target, online in self.ema_pairs:
            target.assign(decay * target + (1.0 - decay) * online)
        return loss


# ----------------------------------------------------------------------
# The baseline: a hand-written tf.function loop
# ----------------------------------------------------------------------


class SslLoop:
    """The Keras guide's loop: a `tf.function` step and a `Mean` of the loss."""

    def __init__(self, model: str, networks: Networks):
        self.step = SslStep(model, networks)
        self.trackers = [keras.metrics.Mean(name="loss")]

    @tf.function
    def train_step(self, x):
        loss = self.step(x)
        self.trackers[0].update_state(loss)
        return loss


# ----------------------------------------------------------------------
# The reference: a plain keras.Model subclass overriding train_step
# ----------------------------------------------------------------------


class KerasReference(keras.Model):
    """The Keras guide "Customizing what happens in `fit()`" on plain Keras:
    the loop's step (own augmenter, optimizer and target) in `train_step`,
    a `Mean` tracker. It separates what Keras's `fit()` costs from what
    keras_custom adds."""

    def __init__(self, model: str, networks: Networks):
        super().__init__()
        self.networks = networks.parts()
        self.step = SslStep(model, networks)
        self.ssl_augmenter = self.step.augmenter
        self.ssl_optimizer = self.step.optimizer
        self.ssl_target = self.step.target
        self.tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self) -> list:
        return [self.tracker]

    def train_step(self, data):
        self.tracker.update_state(self.step(data))
        return {"loss": self.tracker.result()}


# ----------------------------------------------------------------------
# The contenders: keras_custom models trained by fit()
# ----------------------------------------------------------------------


def library_model(model: str, networks: Networks) -> keras_custom.CustomModel:
    """The keras_custom model of `model` on `networks` (not compiled)."""
    common = {"augmenter": augmenter(), "optimizer": keras.optimizers.Adam()}
    encoder, projector, predictor = (
        networks.encoder,
        networks.projector,
        networks.predictor,
    )
    if model == "simclr":
        return keras_custom.SimCLR(
            encoder, projector, temperature=TEMPERATURE, **common
        )
    if model == "simsiam":
        return keras_custom.SimSiam(encoder, projector, predictor, **common)
    if model == "byol":
        return keras_custom.BYOL(
            encoder, projector, predictor, ema_decay=EMA_DECAY, **common
        )
    return keras_custom.BarlowTwins(
        encoder, projector, redundancy_weight=REDUNDANCY_WEIGHT, **common
    )


def build_model(model: str, weights: dict, steps_per_execution: int) -> keras.Model:
    """A compiled keras_custom model on fresh networks with the initial weights."""
    built = library_model(model, fresh_networks(model, weights))
    built.compile(steps_per_execution=steps_per_execution)
    return built


def build_reference(model: str, weights: dict) -> keras.Model:
    """A compiled `KerasReference` on fresh networks with the initial weights."""
    built = KerasReference(model, fresh_networks(model, weights))
    built.compile()
    return built


# ----------------------------------------------------------------------
# Forms and runs
# ----------------------------------------------------------------------


def forms_of(model: str, reference: bool = True) -> tuple[Form, ...]:
    label = LIBRARY_CLASSES[model]
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
                "keras.Model subclass, the loop's step as train_step, fit()",
                "keras",
            )
        )
    return tuple(forms)


@dataclass
class Prepared:
    """A form built, compiled and warmed up, ready to be timed."""

    form: Form
    train: Callable[[int], dict[str, float]]
    setup_seconds: float


def prepare(
    form: Form,
    weights: dict,
    x: np.ndarray,
    batch_size: int,
    fit_input: str = "dataset",
) -> Prepared:
    """Builds a form on the initial weights and trains one warm-up epoch.

    Tracing the augmenter and the step takes seconds per model, so each form
    is built once and then timed in every round (`time_run`), rather than
    rebuilt for every run as in `generative.py`.
    """
    start = time.perf_counter()
    if form.kind == "loop":
        loop = SslLoop(form.model, fresh_networks(form.model, weights))
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
    return Prepared(form, train, time.perf_counter() - start)


def time_run(
    prepared: Prepared, round_index: int, steps_per_epoch: int, epochs: int
) -> Run:
    """Times a call training one epoch, then a call training `epochs` epochs."""
    gc.collect()
    start = time.perf_counter()
    prepared.train(1)
    one_epoch_seconds = time.perf_counter() - start
    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    final_losses = prepared.train(epochs)
    train_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return Run(
        form=prepared.form.key,
        round=round_index,
        setup_seconds=prepared.setup_seconds,
        one_epoch_seconds=one_epoch_seconds,
        train_seconds=train_seconds,
        cpu_seconds=cpu_seconds,
        epochs=epochs,
        steps=epochs * steps_per_epoch,
        final_losses=final_losses,
    )


# ----------------------------------------------------------------------
# The equivalence check: a few steps of every form on the same batches
# ----------------------------------------------------------------------


def check_steps(model: str, weights: dict, batches: np.ndarray, batch_size: int):
    """A few steps of each form from the same weights on the same batches.

    Returns per form the mean loss of the steps and the largest absolute
    difference of every online (and BYOL target) weight from the loop's
    afterwards. The augmenters are seeded alike and called alike, so they
    draw the same views; the steps should agree to float rounding.
    """

    def state(networks: Networks, target: list) -> list[np.ndarray]:
        parts = networks.parts() + list(target)
        return [np.asarray(v) for part in parts for v in float_variables(part)]

    results: dict[str, Any] = {}
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    loop = SslLoop(model, fresh_networks(model, weights))
    for start in range(0, len(batches), batch_size):
        loop.train_step(tf.constant(batches[start : start + batch_size]))
    reference_state = state(loop.step.networks, loop.step.target)
    results["loop"] = {
        "loss": float(loop.trackers[0].result()),
        "max_weight_difference": 0.0,
    }
    for form in forms_of(model)[1:]:
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED)
        networks = fresh_networks(model, weights)
        if form.kind == "keras":
            built = KerasReference(model, networks)
            built.compile()
            target = built.step.target
        else:
            built = library_model(model, networks)
            built.compile(steps_per_execution=form.steps_per_execution)
            target = built.target.parts if model == "byol" else []
        history = built.fit(batches, batch_size=batch_size, shuffle=False, verbose=0)
        weights_after = state(networks, target)
        results[form.name] = {
            "loss": float(history.history["loss"][-1]),
            "max_weight_difference": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(weights_after, reference_state, strict=True)
            ),
        }
    return results


# ----------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------


def summarize(
    runs: list[Run], models: list[str], rounds: int, reference: bool
) -> dict[str, Any]:
    """Per-form medians with ratios to the loop, and per-model comparisons.

    The same rows as `generative.summarize`, so `generative.format_tables`
    prints them.
    """
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
                    **generative.form_summary(
                        model, form, own, to_loop, by_key, loop.key
                    ),
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


def format_check(check: dict[str, dict]) -> str:
    lines = [
        f"| model | form | mean loss of {CHECK_STEPS} steps "
        "| max abs weight difference to loop |",
        "|---|---|---|---|",
    ]
    for model, forms in check.items():
        for form, values in forms.items():
            lines.append(
                f"| {model} | {form} | {values['loss']:.6f} "
                f"| {values['max_weight_difference']:.2e} |"
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
        default=9,
        help="rounds; use at least 5 for a meaningful median",
    )
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per run")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size")
    parser.add_argument(
        "--samples",
        type=int,
        default=2048,
        help="training images (digits tiled, rounded down to whole batches)",
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated models to run, of: " + ", ".join(MODELS),
    )
    parser.add_argument(
        "--fit-input",
        choices=("dataset", "numpy"),
        default="dataset",
        help="what fit() gets: the loop's tf.data.Dataset (like for like), or "
        "the NumPy array with batch_size",
    )
    parser.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run keras_fit, a plain keras.Model subclass trained by fit()",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"only check that {CHECK_STEPS} steps of every form give the same "
        "loss and weights, then exit",
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


def _write_json(path: str | None, result: dict) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
            file.write("\n")
        print(f"Wrote {path}")


def time_rounds(
    prepared: dict[str, Prepared], args: argparse.Namespace, steps_per_epoch: int
) -> list[Run]:
    """Times every form once per round, alternating, for `args.rounds` rounds."""
    runs: list[Run] = []
    for round_index in range(args.rounds):
        done = []
        for model in args.models:
            order = forms_of(model, args.reference)
            if round_index % 2:
                order = order[::-1]
            for form in order:
                run = time_run(
                    prepared[form.key], round_index, steps_per_epoch, args.epochs
                )
                runs.append(run)
                done.append(f"{run.form} {run.train_seconds:.2f}s")
        print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(done), flush=True)
    return runs


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
    weights = initial_weights(args.models)

    if args.check:
        batches = x[: CHECK_STEPS * args.batch_size]
        check = {
            model: check_steps(model, weights, batches, args.batch_size)
            for model in args.models
        }
        print(format_check(check))
        result = {
            "config": {
                "batch_size": args.batch_size,
                "models": args.models,
                "check_steps": CHECK_STEPS,
            },
            "environment": generative.environment(load_before, os.getloadavg()),
            "check": check,
        }
        _write_json(args.json, result)
        return result

    print(
        f"{len(x)} images {IMAGE_SHAPE}, batch {args.batch_size}, "
        f"{steps_per_epoch} steps/epoch, {args.epochs} timed epochs per run, "
        f"{args.rounds} rounds of {len(forms)} runs, fit() on {args.fit_input} "
        "input"
    )
    started = time.perf_counter()
    keras.backend.clear_session()
    # Once: `tf.random.set_seed` clears TensorFlow's kernel caches, which
    # makes the next call of every traced function slow.
    keras.utils.set_random_seed(SEED)
    prepared = {}
    for form in forms:
        prepared[form.key] = prepare(form, weights, x, args.batch_size, args.fit_input)
    print(
        f"built and warmed up {len(forms)} forms in "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    # The live forms hold about a million Python objects (traced graphs): a
    # full `gc.collect()` would take a second. Frozen, they are not scanned.
    gc.collect()
    gc.freeze()
    try:
        runs = time_rounds(prepared, args, steps_per_epoch)
    finally:
        gc.unfreeze()
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
                f"(CPU {row['cpu_ratio_median']:.3f}) -> {verdict} the target"
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
            "ema_decay": EMA_DECAY,
        },
        "environment": generative.environment(load_before, load_after),
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
    _write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
