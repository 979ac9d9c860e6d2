"""Training-loop overhead of `CustomModel` compared with plain `keras.Model`.

Fits one small MLP (64 -> 256 relu -> 256 relu -> 10) on the bundled 8x8
digits (flattened, scaled to [0, 1], tiled to `--samples` samples) with
`keras.Model` and with `keras_custom.CustomModel` in three forms:

- ``compile``: ``CustomModel(inputs, outputs)`` then
  ``compile(optimizer="adam", loss=..., metrics=["accuracy"])``.
- ``tutorial``: a subclass whose ``__init__`` creates ``self.optimizer``,
  ``self.loss_fn`` and a ``Mean`` loss tracker, which overrides ``train_step``
  with ``tf.GradientTape`` and ``apply_gradients``, and is compiled with a
  bare ``compile()``.
- ``constructor``: ``CustomModel(inputs, outputs, optimizer="adam",
  loss=...)`` then a bare ``compile()``.

Each form is compared with the `keras.Model` run that does the same work
per step: ``compile`` with ``keras.Model`` compiled with the same loss and
the ``accuracy`` metric, ``tutorial`` and ``constructor`` (which log only the
loss) with ``keras.Model`` compiled with the loss alone.

Every run builds a fresh model, copies in the same initial weights, compiles
it, runs one warm-up epoch (tracing, not timed) and then times ``--epochs``
epochs of ``fit()`` with ``time.perf_counter``. The runs alternate in one
process, one run per form in each round, for ``--rounds`` rounds. Reported per
form: the median over rounds of time(form) / time(its baseline in the same
round) in wall-clock time (the figure the target applies to) and in process
CPU time (less disturbed by other processes on the machine), the median
steps per second, the median setup time (compile and warm-up epoch), the
median final training loss and the optimizer that trained. The target is a
median wall-clock ratio of at most 1.03. The exit code is 0 whatever the
result: this is a report, not a test.

Usage::

    .venv/bin/python -m benchmarks.overhead [--rounds 7] [--epochs 8]
        [--batch-size 64] [--samples 4096] [--json results.json]
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from benchmarks import common
from keras_custom import CustomModel

TARGET_RATIO = 1.03
HIDDEN_UNITS = 256
NUM_CLASSES = 10


# ----------------------------------------------------------------------
# Data and model
# ----------------------------------------------------------------------


def load_data(samples: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits training split, flattened, /16, tiled to whole batches.

    The sample count is rounded down to a multiple of `batch_size` so every
    batch has the same shape and the train function is traced only once.
    """
    x, y = common.tiled_digits(common.whole_batches(samples, batch_size))
    return x, y.astype("int32")


def mlp_graph() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Fresh `inputs` and `outputs` (logits) of the benchmark MLP."""
    inputs = keras.Input((64,), name="pixels")
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(inputs)
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(hidden)
    outputs = keras.layers.Dense(NUM_CLASSES)(hidden)
    return inputs, outputs


def make_loss() -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class TutorialModel(CustomModel):
    """The "Customizing what happens in `fit()`" pattern, on `CustomModel`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimizer = keras.optimizers.Adam()
        self.loss_fn = make_loss()
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(
            zip(grads, self.trainable_variables, strict=True)
        )
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self) -> list:
        return [self.loss_tracker]


def keras_accuracy() -> keras.Model:
    model = keras.Model(*mlp_graph())
    model.compile(optimizer="adam", loss=make_loss(), metrics=["accuracy"])
    return model


def keras_loss_only() -> keras.Model:
    model = keras.Model(*mlp_graph())
    model.compile(optimizer="adam", loss=make_loss())
    return model


def custom_compile() -> keras.Model:
    model = CustomModel(*mlp_graph())
    model.compile(optimizer="adam", loss=make_loss(), metrics=["accuracy"])
    return model


def custom_tutorial() -> keras.Model:
    model = TutorialModel(*mlp_graph())
    model.compile()
    return model


def custom_constructor() -> keras.Model:
    model = CustomModel(*mlp_graph(), optimizer="adam", loss=make_loss())
    model.compile()
    return model


@dataclass(frozen=True)
class Form:
    """One way of training the MLP.

    `build` returns a compiled model; `baseline` names the `keras.Model` form
    this one is compared with (`None` for a baseline itself).
    """

    name: str
    description: str
    build: Callable[[], keras.Model]
    baseline: str | None


FORMS: tuple[Form, ...] = (
    Form(
        "keras",
        "keras.Model, compile(adam, loss, metrics=[accuracy])",
        keras_accuracy,
        None,
    ),
    Form(
        "a_compile",
        "CustomModel, compile(adam, loss, metrics=[accuracy])",
        custom_compile,
        "keras",
    ),
    Form(
        "keras_loss",
        "keras.Model, compile(adam, loss)",
        keras_loss_only,
        None,
    ),
    Form(
        "b_tutorial",
        "CustomModel subclass, own optimizer/train_step/tracker, compile()",
        custom_tutorial,
        "keras_loss",
    ),
    Form(
        "c_constructor",
        "CustomModel(inputs, outputs, optimizer=adam, loss), compile()",
        custom_constructor,
        "keras_loss",
    ),
)


# ----------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------


@dataclass
class Run:
    """Measurements of one run of one form."""

    #: The properties that `common.record` writes beside the fields.
    DERIVED: ClassVar[tuple[str, ...]] = ("steps_per_second",)

    form: str
    round: int
    setup_seconds: float
    fit_seconds: float
    cpu_seconds: float
    steps: int
    final_loss: float
    optimizer: str

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.fit_seconds


def initial_weights() -> list[np.ndarray]:
    """The initial weights every run starts from, made once from `SEED`."""
    weights = common.initial_weights(["mlp"], lambda _: [keras.Model(*mlp_graph())])
    return weights["mlp"][0]


def run_once(
    form: Form,
    round_index: int,
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
) -> Run:
    """Builds, compiles, warms up and times one form."""
    common.fresh_round(round_index)
    start = time.perf_counter()
    model = form.build()
    model.set_weights(weights)
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    setup_seconds = time.perf_counter() - start
    history, fit_seconds, cpu_seconds = common.timed(
        lambda: model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    )
    return Run(
        form=form.name,
        round=round_index,
        setup_seconds=setup_seconds,
        fit_seconds=fit_seconds,
        cpu_seconds=cpu_seconds,
        steps=epochs * (len(x) // batch_size),
        final_loss=float(history.history["loss"][-1]),
        optimizer=type(model.optimizer).__name__,
    )


def summarize(runs: list[Run], rounds: int) -> list[dict[str, Any]]:
    """Per-form medians, with the ratio to the baseline of the same round."""
    by_key = {(run.form, run.round): run for run in runs}
    summary = []
    for form in FORMS:
        own = [by_key[(form.name, r)] for r in range(rounds)]
        to_baseline = common.paired(
            by_key, form.name, form.baseline or form.name, rounds, wall="fit_seconds"
        )
        summary.append(
            {
                "form": form.name,
                "description": form.description,
                "baseline": form.baseline,
                **common.ratio_fields(to_baseline),
                "steps_per_second_median": statistics.median(
                    run.steps_per_second for run in own
                ),
                "fit_seconds_median": statistics.median(run.fit_seconds for run in own),
                "setup_seconds_median": statistics.median(
                    run.setup_seconds for run in own
                ),
                "final_loss_median": statistics.median(run.final_loss for run in own),
                "optimizers": sorted({run.optimizer for run in own}),
                "meets_target": (
                    None
                    if form.baseline is None
                    else to_baseline["median"] <= TARGET_RATIO
                ),
            }
        )
    return summary


def format_table(summary: list[dict[str, Any]]) -> str:
    """A Markdown table of the summary."""
    lines = common.table_head(
        *("form", "vs", "ratio (median)", "ratio range", "CPU ratio", "steps/s"),
        *("setup s", "final loss", "optimizer", f"within {TARGET_RATIO:.2f}"),
    )
    for row in summary:
        baseline = row["baseline"] is None
        ratio, spread, cpu = common.ratio_cells(row, baseline)
        lines.append(
            f"| {row['form']} | {'-' if baseline else row['baseline']} | {ratio} "
            f"| {spread} | {cpu} | {row['steps_per_second_median']:.0f} "
            f"| {row['setup_seconds_median']:.2f} "
            f"| {row['final_loss_median']:.4f} | {','.join(row['optimizers'])} "
            f"| {common.target_cell(row['meets_target'], baseline)} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = common.timing_parser(__doc__, rounds=7, epochs=8, samples=4096)
    return common.parse(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    x, y = load_data(args.samples, args.batch_size)
    steps_per_epoch = len(x) // args.batch_size
    load_before = common.print_environment()
    common.print_plan(
        args,
        f"{len(x)} samples, batch {args.batch_size}, ",
        steps_per_epoch,
        f" of {len(FORMS)} runs",
    )
    measure = functools.partial(
        run_once,
        weights=initial_weights(),
        x=x,
        y=y,
        epochs=args.epochs,
        batch_size=args.batch_size,
    )
    started = time.perf_counter()
    runs = common.alternate(
        args.rounds, [FORMS], measure, reverse=False, wall="fit_seconds"
    )
    total_seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    summary = summarize(runs, args.rounds)

    print()
    print(format_table(summary))
    print()
    common.print_target(
        "to keras.Model",
        TARGET_RATIO,
        "baseline",
        (
            (
                f"{row['form']}: {row['ratio_median']:.3f} vs {row['baseline']}",
                row["meets_target"],
            )
            for row in summary
            if row["baseline"] is not None
        ),
    )
    common.print_total(total_seconds, load_before, load_after)
    common.write_json(
        args.json,
        {
            "config": {
                "rounds": args.rounds,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "samples": len(x),
                "steps_per_epoch": steps_per_epoch,
                "target_ratio": TARGET_RATIO,
            },
            "environment": common.environment(load_before, load_after),
            "total_seconds": total_seconds,
            "summary": summary,
            "runs": [common.record(run) for run in runs],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
