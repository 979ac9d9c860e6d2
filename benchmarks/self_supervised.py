"""`SimCLR`, `SimSiam`, `BYOL`, `BarlowTwins` and `VICReg` `fit()` against a
hand-written `tf.function` training loop.

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
  ``BarlowTwins`` / ``VICReg``, ``compile()`` and ``fit(...)``.
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
``BarlowTwinsLoss``, ``VICRegLoss``) and one Adam (Keras defaults) updates
every trainable variable:

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
- VICReg: projector 64 -> 64 -> 32; ``VICRegLoss`` with its (and
  ``VICReg``'s) default weights 25, 25 and 1. ``VICReg`` also logs the three
  terms (three more ``Mean`` trackers); the loop tracks the loss only.

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
``generative.py`` (with the timing records, paired ratios and tables of
`benchmarks.common`): time per step; its ratio to the loop of the same round in
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

    .venv/bin/python -m benchmarks.self_supervised [--rounds 9] [--epochs 4]
        [--batch-size 64] [--samples 2048]
        [--models simclr,simsiam,byol,barlow_twins,vicreg]
        [--fit-input dataset|numpy] [--no-reference] [--check]
        [--json results.json]
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import keras_custom
from benchmarks import common
from keras_custom.layers import PredictionHead, ProjectionHead
from keras_custom.losses import (
    BarlowTwinsLoss,
    NegativeCosineSimilarity,
    NTXent,
    VICRegLoss,
)
from keras_custom.self_supervised import small_image_augmenter

IMAGE_SHAPE = (8, 8, 1)
#: Widths: encoder features, projection (output, hidden), prediction hidden.
FEATURES, PROJECTION_UNITS, PROJECTION_HIDDEN, PREDICTION_HIDDEN = 64, 32, 64, 16
TEMPERATURE = 0.5
EMA_DECAY = 0.99
REDUNDANCY_WEIGHT = 1.0 / PROJECTION_UNITS
CHECK_STEPS = 3
MODELS = common.SELF_SUPERVISED_MODELS
HAS_PREDICTOR = {"simsiam", "byol"}
REFERENCE = "keras.Model subclass, the loop's step as train_step, fit()"


# ----------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------


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
    return common.initial_weights(models, lambda model: build_networks(model).parts())


def fresh_networks(model: str, weights: dict) -> Networks:
    """The networks of `model` with the shared initial weights."""
    networks = build_networks(model)
    common.set_weights(networks.parts(), weights[model])
    return networks


def augmenter() -> keras.Sequential:
    """The augmenter, seeded: every form draws the same views."""
    return small_image_augmenter(seed=common.SEED)


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
        self.vicreg = VICRegLoss()
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
        if self.model == "vicreg":
            return self.vicreg(self.project(view_1), self.project(view_2))
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
        common.apply_gradients(self.optimizer, tape, loss, self.variables)
        decay = tf.constant(EMA_DECAY, "float32")  # in float32, as the library
        common.moving_average(self.ema_pairs, decay)
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
    shared = {"augmenter": augmenter(), "optimizer": keras.optimizers.Adam()}
    encoder, projector, predictor = (
        networks.encoder,
        networks.projector,
        networks.predictor,
    )
    if model == "simclr":
        return keras_custom.SimCLR(
            encoder, projector, temperature=TEMPERATURE, **shared
        )
    if model == "simsiam":
        return keras_custom.SimSiam(encoder, projector, predictor, **shared)
    if model == "byol":
        return keras_custom.BYOL(
            encoder, projector, predictor, ema_decay=EMA_DECAY, **shared
        )
    if model == "vicreg":
        return keras_custom.VICReg(encoder, projector, **shared)
    return keras_custom.BarlowTwins(
        encoder, projector, redundancy_weight=REDUNDANCY_WEIGHT, **shared
    )


BUILDERS = common.Builders(
    loop=SslLoop, library_model=library_model, reference=KerasReference
)


def forms_of(model: str, reference: bool = True) -> tuple[common.Form, ...]:
    return common.forms_of(model, REFERENCE if reference else None)


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
    keras.utils.set_random_seed(common.SEED)
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
        keras.utils.set_random_seed(common.SEED)
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


def format_check(check: dict[str, dict]) -> str:
    lines = common.table_head(
        "model",
        "form",
        f"mean loss of {CHECK_STEPS} steps",
        "max abs weight difference to loop",
    )
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


def parse_args(argv: list[str] | None = None):
    parser = common.timing_parser(
        __doc__, rounds=9, epochs=4, samples=2048, unit="images", models=MODELS
    )
    common.add_fit_options(parser, fit_input="dataset")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"only check that {CHECK_STEPS} steps of every form give the same "
        "loss and weights, then exit",
    )
    return common.parse(parser, argv, MODELS)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Times (or with ``--check`` compares) the self-supervised models' forms.

    Prints the tables; returns the results (what ``--json`` writes). `argv`:
    the command line's arguments (`None`: `sys.argv`; `[]`: the defaults).
    """
    args = parse_args(argv)
    x, _ = common.tiled_digits(
        common.whole_batches(args.samples, args.batch_size), images=True
    )
    steps_per_epoch = len(x) // args.batch_size
    forms = {model: forms_of(model, args.reference) for model in args.models}
    load_before = common.print_environment()
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
            "environment": common.environment(load_before, os.getloadavg()),
            "check": check,
        }
        common.write_json(args.json, result)
        return result

    count = sum(map(len, forms.values()))
    common.print_plan(
        args,
        f"{len(x)} images {IMAGE_SHAPE}, batch {args.batch_size}, ",
        steps_per_epoch,
        f" of {count} runs, fit() on {args.fit_input} input",
    )
    started = time.perf_counter()
    keras.backend.clear_session()
    # Once: `tf.random.set_seed` clears TensorFlow's kernel caches, which
    # makes the next call of every traced function slow.
    keras.utils.set_random_seed(common.SEED)
    prepared = {
        form.key: BUILDERS.prepare_arrays(
            form,
            lambda form=form: fresh_networks(form.model, weights),
            x,
            args.batch_size,
            args.fit_input,
        )
        for model_forms in forms.values()
        for form in model_forms
    }
    print(
        f"built and warmed up {count} forms in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    # The live forms hold about a million Python objects (traced graphs): a
    # full `gc.collect()` would take a second. Frozen, they are not scanned.
    gc.collect()
    gc.freeze()
    try:
        runs = common.alternate(
            args.rounds,
            list(forms.values()),
            lambda form, round_index: common.time_run(
                prepared[form.key], round_index, args.epochs
            ),
        )
    finally:
        gc.unfreeze()
    return common.finish(
        args,
        forms,
        runs,
        started,
        load_before,
        len(x),
        steps_per_epoch,
        ema_decay=EMA_DECAY,
    )


if __name__ == "__main__":
    main()
