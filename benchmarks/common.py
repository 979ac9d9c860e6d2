"""What the benchmarks share: data, forms, timing, ratios, tables, options, JSON.

The fit-against-loop benchmarks (`generative`, `self_supervised`,
`fit_vs_loop`) train each model in several forms (`Form`: the hand-written
loop, keras_custom's `fit()`, the same with ``steps_per_execution=16``, and
optionally a plain `keras.Model` reference), time the forms in alternating
rounds in one process (`alternate`, `time_run`), and report per form the
median over rounds of the per-round ratio of its time to the loop's
(`paired`, `summarize`, `format_tables`). `overhead` uses the same timing,
ratios, tables and results; `run_all` the model names and the options.

TensorFlow, Keras and keras_custom are imported by the functions that use
them, not by this module: `run_all` imports it in a parent process that
only starts the benchmarks and must not load TensorFlow.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

#: The seed of the initial weights and of every round (plus the round).
SEED = 1234
#: The target of a fit-against-loop benchmark: a median wall-clock ratio
#: ``fit / loop`` of at most this.
TARGET_RATIO = 1.05
#: The ``steps_per_execution`` of the ``fit_spe16`` form.
SPEEDUP_SPE = 16

GENERATIVE_MODELS = ("gan", "vae")
SELF_SUPERVISED_MODELS = ("simclr", "simsiam", "byol", "barlow_twins", "vicreg")
FIT_VS_LOOP_MODELS = (
    "wgan_gp",
    "conditional_gan",
    "distiller",
    "fixmatch",
    "mean_teacher",
    "sam",
    "adversarial",
    "dqn",
    "actor_critic",
    "diffusion",
    "ppo",
)
#: The keras_custom class of each model of the fit-against-loop benchmarks.
LIBRARY_CLASSES = {
    "gan": "GAN",
    "vae": "VAE",
    "simclr": "SimCLR",
    "simsiam": "SimSiam",
    "byol": "BYOL",
    "barlow_twins": "BarlowTwins",
    "vicreg": "VICReg",
    "wgan_gp": "WGANGP",
    "conditional_gan": "ConditionalGAN",
    "distiller": "Distiller",
    "fixmatch": "FixMatch",
    "mean_teacher": "MeanTeacher",
    "sam": "SharpnessAwareModel",
    "adversarial": "AdversarialModel",
    "dqn": "DQN",
    "actor_critic": "ActorCritic",
    "diffusion": "DiffusionModel",
    "ppo": "PPO",
}


# ----------------------------------------------------------------------
# Data, weights and the shared mathematics
# ----------------------------------------------------------------------


def whole_batches(samples: int, batch_size: int) -> int:
    """`samples` rounded down to whole batches (at least one batch).

    Every batch then has the same shape, so each step is traced only once.
    """
    return max(batch_size, samples - samples % batch_size)


def tiled_digits(samples: int, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits' training split, divided by 16, tiled to `samples` rows.

    Returns `(x, y)`: `x` flattened to 64 pixels, or with `images` the
    `(N, 8, 8, 1)` images; `y` the labels.
    """
    from keras_custom.datasets import digits

    (x_train, y_train), _ = digits.load_data()
    x = x_train[..., None] if images else x_train.reshape(len(x_train), -1)
    x = x.astype("float32") / 16.0
    repeats = -(-samples // len(x))
    x = np.tile(x, (repeats,) + (1,) * (x.ndim - 1))[:samples]
    return x, np.tile(y_train, repeats)[:samples]


def shuffled_batches(data, batch_size: int) -> tf.data.Dataset:
    """The tutorials' input pipeline: shuffle the whole set, then batch.

    `data` is an array, or a tuple of arrays with as many rows.
    """
    import tensorflow as tf

    rows = len(data[0]) if isinstance(data, tuple) else len(data)
    dataset = tf.data.Dataset.from_tensor_slices(data).shuffle(rows)
    return dataset.batch(batch_size)


def initial_weights(
    models: Iterable[str], build: Callable[[str], Sequence]
) -> dict[str, list[list[np.ndarray]]]:
    """The initial weights of each model's networks, made once from `SEED`.

    `build(model)` returns fresh networks (layers or models) of `model`.
    """
    import keras

    keras.utils.set_random_seed(SEED)
    weights = {model: [part.get_weights() for part in build(model)] for model in models}
    keras.backend.clear_session()
    return weights


def set_weights(parts: Sequence, values: Sequence) -> None:
    """Copies one model's `initial_weights` into its fresh networks `parts`."""
    for part, part_values in zip(parts, values, strict=True):
        part.set_weights(part_values)


def fresh_round(round_index: int) -> None:
    """Before a run: a new Keras session, a garbage collection, the round's seed.

    The seed is the same for every form of a round, so every form shuffles
    the data in the same order.
    """
    import keras

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(SEED + round_index)


def apply_gradients(optimizer, tape, loss, variables) -> None:
    """One step of `optimizer` on the gradient of `loss` recorded by `tape`."""
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))


def moving_average(pairs: Iterable, decay) -> None:
    """``target = decay * target + (1 - decay) * source`` for each pair."""
    for target, source in pairs:
        target.assign(decay * target + (1.0 - decay) * source)


@functools.cache
def _cross_entropy() -> keras.losses.Loss:
    import keras

    return keras.losses.BinaryCrossentropy(from_logits=True)


def discriminator_loss(real_logits, fake_logits):
    """The DCGAN tutorial's: real logits against 1, fake logits against 0."""
    import tensorflow as tf

    real_loss = _cross_entropy()(tf.ones_like(real_logits), real_logits)
    fake_loss = _cross_entropy()(tf.zeros_like(fake_logits), fake_logits)
    return real_loss + fake_loss


def generator_loss(fake_logits):
    """The non-saturating loss: fake logits against 1."""
    import tensorflow as tf

    return _cross_entropy()(tf.ones_like(fake_logits), fake_logits)


# ----------------------------------------------------------------------
# Forms and how they train
# ----------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """One way of training one model of a fit-against-loop benchmark.

    `kind` is ``"loop"`` (the hand-written baseline), ``"keras_custom"`` or
    ``"keras"`` (the reference: a plain `keras.Model` subclass).
    """

    model: str
    name: str
    description: str
    kind: str
    steps_per_execution: int = 1

    @property
    def key(self) -> str:
        return f"{self.model}_{self.name}"


def forms_of(model: str, reference: str | None = None) -> tuple[Form, ...]:
    """``loop``, ``fit``, ``fit_spe16`` and, given its description, ``keras_fit``."""
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
        forms.append(Form(model, "keras_fit", reference, "keras"))
    return tuple(forms)


def train_loop(loop, dataset: tf.data.Dataset, epochs: int) -> dict[str, float]:
    """The tutorials' outer loop; returns the last epoch's mean logs."""
    logs: dict[str, float] = {}
    for _ in range(epochs):
        for tracker in loop.trackers:
            tracker.reset_state()
        for batch in dataset:
            loop.train_step(batch)
        logs = {tracker.name: float(tracker.result()) for tracker in loop.trackers}
    return logs


def fit_trainer(model: keras.Model, data: dict) -> Callable[[int], dict[str, float]]:
    """`train(epochs)`: ``model.fit(**data)``; returns the last epoch's logs."""

    def train(epochs: int) -> dict[str, float]:
        history = model.fit(epochs=epochs, verbose=0, **data)
        return {name: float(values[-1]) for name, values in history.history.items()}

    return train


@dataclass(frozen=True)
class Builders:
    """How a fit-against-loop benchmark builds its forms on given networks.

    Each takes `(model, networks)`. `loop` returns the hand-written loop (a
    `train_step(batch)` and its `Mean` `trackers`); `library_model` the
    keras_custom model and `reference` the plain `keras.Model` subclass,
    neither compiled.
    """

    loop: Callable[[str, Any], Any]
    library_model: Callable[[str, Any], keras.Model]
    reference: Callable[[str, Any], keras.Model] | None = None

    def prepare(
        self,
        form: Form,
        networks: Callable[[], Any],
        dataset: Callable[[], tf.data.Dataset],
        arrays: dict | None,
        steps_per_epoch: int,
    ) -> Prepared:
        """Builds `form` on `networks()` and warms it up (`build_and_warm_up`).

        The loop iterates over `dataset()`; `fit()` gets `arrays` (NumPy
        arrays and `batch_size`) if given, else `dataset()` too.
        """

        def make_train() -> Callable[[int], dict[str, float]]:
            parts = networks()
            if form.kind == "loop":
                return _loop_trainer(self.loop(form.model, parts), dataset())
            build = self.reference if form.kind == "keras" else self.library_model
            model = build(form.model, parts)
            model.compile(steps_per_execution=form.steps_per_execution)
            # Already shuffled: `fit` would warn that it ignores `shuffle`.
            return fit_trainer(model, arrays or {"x": dataset(), "shuffle": False})

        return build_and_warm_up(form, make_train, steps_per_epoch)

    def prepare_arrays(
        self,
        form: Form,
        networks: Callable[[], Any],
        x: np.ndarray,
        batch_size: int,
        fit_input: str,
    ) -> Prepared:
        """`prepare` on the array `x` (whole batches).

        The loop iterates over `shuffled_batches(x, batch_size)`; `fit()` over
        the same, or with ``fit_input="numpy"`` over `x` with `batch_size`.
        """
        arrays = {"x": x, "batch_size": batch_size} if fit_input == "numpy" else None
        return self.prepare(
            form,
            networks,
            lambda: shuffled_batches(x, batch_size),
            arrays,
            len(x) // batch_size,
        )


def _loop_trainer(loop, dataset) -> Callable[[int], dict[str, float]]:
    def train(epochs: int) -> dict[str, float]:
        return train_loop(loop, dataset, epochs)

    return train


# ----------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------


@dataclass
class Run:
    """Measurements of one run of one form.

    `train_seconds` and `cpu_seconds` time one call training `epochs`
    epochs; `one_epoch_seconds` times a call training one epoch, made just
    before. From the two, a call costs `fixed_seconds` once (for `fit()`:
    its input pipeline and callbacks) plus `epoch_seconds` per epoch.
    """

    #: The properties that `record` writes beside the fields.
    DERIVED: ClassVar[tuple[str, ...]] = (
        "ms_per_step",
        "epoch_seconds",
        "fixed_seconds",
        "steady_ms_per_step",
    )

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


def record(run) -> dict[str, Any]:
    """A run as JSON: its fields and its `DERIVED` properties."""
    return {**asdict(run), **{name: getattr(run, name) for name in run.DERIVED}}


@dataclass
class Prepared:
    """A form built, compiled and warmed up, ready to be timed."""

    form: Form
    train: Callable[[int], dict[str, float]]
    setup_seconds: float
    steps_per_epoch: int


def build_and_warm_up(
    form: Form, make_train: Callable[[], Callable], steps_per_epoch: int
) -> Prepared:
    """Builds a form (`make_train()`) and trains one warm-up epoch (tracing).

    `setup_seconds` is the time of both.
    """
    start = time.perf_counter()
    train = make_train()
    train(1)  # the warm-up epoch: tracing
    return Prepared(form, train, time.perf_counter() - start, steps_per_epoch)


def timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """`call()` after a garbage collection: its result, wall and CPU seconds.

    Wall clock from `time.perf_counter`, CPU time of the process (all
    threads) from `time.process_time`.
    """
    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return result, seconds, cpu_seconds


def time_run(prepared: Prepared, round_index: int, epochs: int) -> Run:
    """Times a call training one epoch, then a call training `epochs` epochs."""
    _, one_epoch_seconds, _ = timed(lambda: prepared.train(1))
    final_losses, train_seconds, cpu_seconds = timed(lambda: prepared.train(epochs))
    return Run(
        form=prepared.form.key,
        round=round_index,
        setup_seconds=prepared.setup_seconds,
        one_epoch_seconds=one_epoch_seconds,
        train_seconds=train_seconds,
        cpu_seconds=cpu_seconds,
        epochs=epochs,
        steps=epochs * prepared.steps_per_epoch,
        final_losses=final_losses,
    )


def alternate(
    rounds: int,
    groups: Sequence[Sequence],
    measure: Callable[[Any, int], Any],
    reverse: bool = True,
    wall: str = "train_seconds",
) -> list:
    """`measure(form, round_index)` of every form of every group, per round.

    With `reverse`, the order of a group's forms is reversed every other
    round, so that none is always first. Prints each round's wall times
    (the runs' attribute `wall`); returns the runs.
    """
    runs = []
    for round_index in range(rounds):
        done = []
        for group in groups:
            order = group[::-1] if reverse and round_index % 2 else group
            for form in order:
                run = measure(form, round_index)
                runs.append(run)
                done.append(f"{run.form} {getattr(run, wall):.2f}s")
        print(f"round {round_index + 1}/{rounds}: " + ", ".join(done), flush=True)
    return runs


# ----------------------------------------------------------------------
# Ratios and the summary
# ----------------------------------------------------------------------


def _ratios(by_key: dict, form: str, baseline: str, rounds: int, attribute: str):
    values = [getattr(by_key[(form, r)], attribute) for r in range(rounds)]
    bases = [getattr(by_key[(baseline, r)], attribute) for r in range(rounds)]
    return [value / base for value, base in zip(values, bases, strict=True)]


def median_or_none(values) -> float | None:
    values = list(values)
    return None if None in values else statistics.median(values)


def paired(
    by_key: dict, form: str, baseline: str, rounds: int, wall: str = "train_seconds"
) -> dict[str, Any]:
    """Median, range and CPU median of time(form) / time(baseline) per round.

    `by_key` maps `(form, round)` to a run; `wall` names its wall-clock time.
    """
    wall_ratios = _ratios(by_key, form, baseline, rounds, wall)
    cpu = _ratios(by_key, form, baseline, rounds, "cpu_seconds")
    return {
        "median": statistics.median(wall_ratios),
        "min": min(wall_ratios),
        "max": max(wall_ratios),
        "ratios": wall_ratios,
        "cpu_median": statistics.median(cpu),
        "cpu_ratios": cpu,
    }


def ratio_fields(ratios: dict[str, Any]) -> dict[str, Any]:
    """The ratio fields of a summary row, from `paired`'s result."""
    return {
        "ratio_median": ratios["median"],
        "ratio_min": ratios["min"],
        "ratio_max": ratios["max"],
        "ratios": ratios["ratios"],
        "cpu_ratio_median": ratios["cpu_median"],
        "cpu_ratios": ratios["cpu_ratios"],
    }


def _form_summary(
    form: Form, own: list[Run], to_loop: dict, by_key: dict, loop_key: str
) -> dict[str, Any]:
    """The medians of one form's runs and its ratios to the loop's."""
    return {
        "model": form.model,
        "form": form.name,
        "description": form.description,
        "kind": form.kind,
        "steps_per_execution": (
            None if form.kind == "loop" else form.steps_per_execution
        ),
        **ratio_fields(to_loop),
        "ms_per_step_median": statistics.median(run.ms_per_step for run in own),
        "cpu_ms_per_step_median": statistics.median(
            1000.0 * run.cpu_seconds / run.steps for run in own
        ),
        "setup_seconds_median": statistics.median(run.setup_seconds for run in own),
        "fixed_ms_median": median_or_none(
            run.fixed_seconds and 1000.0 * run.fixed_seconds for run in own
        ),
        "steady_ms_per_step_median": median_or_none(
            run.steady_ms_per_step for run in own
        ),
        "steady_ratio_median": median_or_none(
            run.epoch_seconds
            and run.epoch_seconds / by_key[(loop_key, run.round)].epoch_seconds
            for run in own
        ),
        "final_losses_median": {
            name: statistics.median(run.final_losses[name] for run in own)
            for name in sorted(own[0].final_losses)
        },
        "meets_target": (
            to_loop["median"] <= TARGET_RATIO if form.name == "fit" else None
        ),
    }


def summarize(
    runs: list[Run], forms_by_model: dict[str, tuple[Form, ...]], rounds: int
) -> dict[str, Any]:
    """Per-form medians with ratios to the loop, and per-model comparisons.

    `forms_by_model` gives each model's forms as `forms_of` does: loop, fit,
    fit_spe16 and perhaps the reference.
    """
    by_key = {(run.form, run.round): run for run in runs}
    forms, comparisons = [], []
    for model, model_forms in forms_by_model.items():
        loop, fit, fit_spe = model_forms[:3]
        for form in model_forms:
            own = [by_key[(form.key, r)] for r in range(rounds)]
            to_loop = paired(by_key, form.key, loop.key, rounds)
            forms.append(_form_summary(form, own, to_loop, by_key, loop.key))
        comparison = {
            "model": model,
            "speedup_steps_per_execution": SPEEDUP_SPE,
            # time per step with 1 / time per step with SPEEDUP_SPE
            "speedup": paired(by_key, fit.key, fit_spe.key, rounds),
        }
        if len(model_forms) > 3:
            comparison["fit_vs_keras_fit"] = paired(
                by_key, fit.key, model_forms[3].key, rounds
            )
        comparisons.append(comparison)
    return {"forms": forms, "comparisons": comparisons}


# ----------------------------------------------------------------------
# Tables and printed lines
# ----------------------------------------------------------------------


def table_head(*columns: str) -> list[str]:
    """The header and separator lines of a Markdown table."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def ratio_cells(row: dict[str, Any], baseline: bool) -> tuple[str, str, str]:
    """The ratio median, range and CPU median cells of a summary row."""
    if baseline:
        return "1.000", "-", "1.000"
    return (
        f"{row['ratio_median']:.3f}",
        f"{row['ratio_min']:.3f}-{row['ratio_max']:.3f}",
        f"{row['cpu_ratio_median']:.3f}",
    )


def target_cell(meets: bool | None, baseline: bool) -> str:
    if meets is None:
        return "(baseline)" if baseline else "-"
    return "yes" if meets else "NO"


def format_tables(summary: dict[str, Any]) -> str:
    """Markdown tables of the summary: ratios to the loop, then comparisons."""
    lines = table_head(
        *("model", "form", "ms/step", "ratio to loop (median)", "ratio range"),
        *("CPU ratio", "per-call ms", "steady ms/step", "steady ratio", "setup s"),
        *("final losses", f"within {TARGET_RATIO:.2f}"),
    )
    for row in summary["forms"]:
        losses = ", ".join(
            f"{name} {value:.3f}" for name, value in row["final_losses_median"].items()
        )
        ratio, spread, cpu = ratio_cells(row, row["form"] == "loop")
        fixed, steady, steady_ratio = (
            "-" if row[key] is None else f"{row[key]:{spec}}"
            for key, spec in (
                ("fixed_ms_median", ".0f"),
                ("steady_ms_per_step_median", ".3f"),
                ("steady_ratio_median", ".3f"),
            )
        )
        lines.append(
            f"| {row['model']} | {row['form']} | {row['ms_per_step_median']:.3f} "
            f"| {ratio} | {spread} | {cpu} | {fixed} | {steady} | {steady_ratio} "
            f"| {row['setup_seconds_median']:.2f} | {losses} "
            f"| {target_cell(row['meets_target'], row['form'] == 'loop')} |"
        )
    lines += [
        "",
        *table_head("model", "comparison", "ratio (median)", "range", "CPU ratio"),
    ]
    for row in summary["comparisons"]:
        entries = [
            (
                f"speed-up of steps_per_execution={SPEEDUP_SPE} "
                f"(time/step with 1 / with {SPEEDUP_SPE})",
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


def versions() -> dict[str, str]:
    """The versions of Python, Keras, TensorFlow, keras_custom (and JAX), and
    the Keras backend."""
    import keras
    import tensorflow as tf

    import keras_custom

    found = {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "keras_custom": keras_custom.__version__,
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
    }
    if found["backend"] == "jax":
        import jax

        found["jax"] = jax.__version__
    return found


def print_environment() -> tuple[float, float, float]:
    """Prints the versions, CPU count and load; returns the load averages."""
    load = os.getloadavg()
    found = versions()
    print(
        f"keras {found['keras']}, tensorflow {found['tensorflow']}, "
        f"keras_custom {found['keras_custom']}, python {found['python']}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f}"
    )
    return load


def environment(load_before, load_after) -> dict[str, Any]:
    """Versions, CPU count and load averages, for a benchmark's JSON."""
    return {
        **versions(),
        "cpu_count": os.cpu_count(),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
    }


def print_target(
    what: str, target: float, baseline: str, verdicts: Iterable[tuple[str, bool]]
) -> None:
    """The target line, then one line per `(figures, meets the target)`."""
    print(
        f"Target: median time ratio {what} <= {target:.2f} "
        f"(ratio = time(form) / time({baseline} in the same round))."
    )
    for figures, meets in verdicts:
        verdict = "meets" if meets else "does NOT meet"
        print(f"  {figures} -> {verdict} the target")


def print_plan(
    args: argparse.Namespace, what: str, steps_per_epoch: int, suffix: str = ""
) -> None:
    """What a benchmark will time: `what`, steps, epochs, rounds, `suffix`."""
    print(
        f"{what}{steps_per_epoch} steps/epoch, {args.epochs} timed epochs per run, "
        f"{args.rounds} rounds{suffix}"
    )


def print_total(total_seconds: float, load_before, load_after) -> None:
    print(
        f"Total {total_seconds:.0f}s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (other processes add noise)."
    )


# ----------------------------------------------------------------------
# Options and results
# ----------------------------------------------------------------------


def new_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the module's `doc`."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def timing_parser(
    doc: str,
    *,
    rounds: int,
    epochs: int,
    samples: int,
    unit: str = "samples",
    batch_help: str = "batch size",
    models: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """`new_parser` with ``--rounds``, ``--epochs``, ``--batch-size`` (64),
    ``--samples``, ``--json`` and, given `models`, ``--models`` (some of
    them, comma-separated; all by default); `parse` checks them."""
    parser = new_parser(doc)
    parser.add_argument(
        "--rounds",
        type=int,
        default=rounds,
        help="rounds; use at least 5 for a meaningful median",
    )
    parser.add_argument(
        "--epochs", type=int, default=epochs, help="timed epochs per run"
    )
    parser.add_argument("--batch-size", type=int, default=64, help=batch_help)
    parser.add_argument(
        "--samples",
        type=int,
        default=samples,
        help=f"training {unit} (digits tiled, rounded down to whole batches)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON")
    if models:
        parser.add_argument(
            "--models",
            default=",".join(models),
            help="comma-separated models to run, of: " + ", ".join(models),
        )
    return parser


def add_fit_options(parser: argparse.ArgumentParser, fit_input: str) -> None:
    """``--fit-input`` (default `fit_input`) and ``--reference``."""
    parser.add_argument(
        "--fit-input",
        choices=("dataset", "numpy"),
        default=fit_input,
        help="what fit() gets: the loop's tf.data.Dataset (like for like), or "
        "the NumPy array with batch_size",
    )
    parser.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run keras_fit, a plain keras.Model subclass trained by fit()",
    )


def parse(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    models: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Parses `argv` of a `timing_parser`; ``--models`` becomes a list."""
    args = parser.parse_args(argv)
    for name in ("rounds", "epochs", "batch_size", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if models is not None:
        args.models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = sorted(set(args.models) - set(models))
        if unknown or not args.models:
            parser.error(f"--models takes some of {', '.join(models)}; got {unknown}")
    return args


def write_json(path: str | None, result: Any) -> None:
    """Writes `result` to `path` as JSON, if `path`."""
    if path:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
            file.write("\n")
        print(f"Wrote {path}")


def finish(
    args: argparse.Namespace,
    forms_by_model: dict[str, tuple[Form, ...]],
    runs: list[Run],
    started: float,
    load_before,
    samples: int,
    steps_per_epoch: int,
    **config: Any,
) -> dict[str, Any]:
    """The end of a fit-against-loop benchmark, after its rounds.

    Summarizes the runs, prints the tables, the target's verdicts and the
    total time, and writes the results to ``--json``; returns them.
    `config` adds to the configuration of the results. Without the options
    ``--fit-input`` and ``--reference``, `fit()` got the loop's dataset and
    there was no reference.
    """
    total_seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    summary = summarize(runs, forms_by_model, args.rounds)

    print()
    print(format_tables(summary))
    print()
    print_target(
        "fit / loop",
        TARGET_RATIO,
        "loop",
        (
            (
                f"{row['model']} fit: {row['ratio_median']:.3f} vs loop "
                f"(CPU {row['cpu_ratio_median']:.3f})",
                row["meets_target"],
            )
            for row in summary["forms"]
            if row["meets_target"] is not None
        ),
    )
    print_total(total_seconds, load_before, load_after)
    result = {
        "config": {
            "rounds": args.rounds,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "samples": samples,
            "steps_per_epoch": steps_per_epoch,
            "models": args.models,
            "fit_input": getattr(args, "fit_input", "dataset"),
            "reference": getattr(args, "reference", False),
            "speedup_steps_per_execution": SPEEDUP_SPE,
            "target_ratio": TARGET_RATIO,
            **config,
        },
        "environment": environment(load_before, load_after),
        "total_seconds": total_seconds,
        "summary": summary,
        "runs": [record(run) for run in runs],
    }
    write_json(args.json, result)
    return result
