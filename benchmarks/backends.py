"""Every model's `fit()` on JAX against `fit()` on TensorFlow, in one run.

Keras chooses its backend once per process, so the two backends train in
separate subprocesses of this script (``--child``, with ``KERAS_BACKEND``
set): ``--rounds`` rounds, each running a TensorFlow child and a JAX child,
the order swapped every other round. Each child builds every model of
``--models`` on fresh networks, compiles it with the defaults
(``compile()``), trains one warm-up epoch (tracing or compiling, not timed),
then times, ``--inner-rounds`` times, a call training one epoch and a call
training ``--epochs`` epochs (`common.time_run`). A child's time per step of
a model is the median over its inner rounds; the JAX / TensorFlow ratio of
a round is that of the round's two children, and the report gives its
median and range over the rounds.

The models are the fit-against-loop benchmarks' (`benchmarks.generative`,
`benchmarks.self_supervised`, `benchmarks.fit_vs_loop`: the same networks
and settings) and two classifiers, 64 -> 128 relu -> 10 logits with sparse
categorical cross-entropy and Adam: ``mlp``, a `keras_custom.CustomModel`,
and ``keras_mlp``, the same as a plain `keras.Model` (what Keras alone gains
from JAX on this machine, measured in the same run). Both backends get the
same input: NumPy arrays with ``batch_size`` (shuffled every epoch, but the
reinforcement-learning transitions), or for `FixMatch` and `MeanTeacher`,
whose labeled and unlabeled batches differ in size, the benchmark's
``tf.data.Dataset``.

In the JAX children, the models with a hand-written JAX loop of the same
mathematics (`benchmarks.jax_loops`: the classifiers, ``gan``, ``vae``,
``dqn``) also train in that loop, timed alternately with `fit()` in each
inner round on the same arrays; the report gives the median and range over
all JAX inner rounds of ``fit / loop``. The plain `keras.Model` against the
same loop tells what Keras's own JAX `fit()` costs per step.

Goals (issue 16): JAX `fit()` at least 3 times faster than TensorFlow
`fit()` (a ratio at most 1/3) for every model of digit size on this CPU, as
plain Keras is; JAX `fit()` within 1.05 of the hand-written JAX loop. The
exit code is 0 whatever the result: this is a report, not a test.

Usage::

    .venv/bin/python -m benchmarks.backends [--rounds 3] [--inner-rounds 3]
        [--epochs 6] [--models mlp,gan,...] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import common

BACKENDS = ("tensorflow", "jax")
CLASSIFIERS = ("keras_mlp", "mlp")
MODELS = (
    *CLASSIFIERS,
    *common.GENERATIVE_MODELS,
    *common.SELF_SUPERVISED_MODELS,
    *common.FIT_VS_LOOP_MODELS,
)
JAX_LOOP_MODELS = ("keras_mlp", "mlp", "gan", "vae", "dqn")
#: The goal of JAX `fit()` over TensorFlow `fit()`: at most this.
BACKEND_GOAL = 1.0 / 3.0
#: Each family's benchmark trains on this many samples (or images).
SAMPLES = {"self_supervised": 2048}
DEFAULT_SAMPLES = 4096
BATCH_SIZE = 64
LABELS = {**common.LIBRARY_CLASSES, "mlp": "CustomModel", "keras_mlp": "keras.Model"}


# ----------------------------------------------------------------------
# The child: one backend, every model
# ----------------------------------------------------------------------


def classifier(model: str):
    """``mlp`` (a `CustomModel`) or ``keras_mlp`` (a `keras.Model`), 64-128-10."""
    import keras

    import keras_custom

    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(128, activation="relu")(inputs)
    outputs = keras.layers.Dense(10)(hidden)
    kind = keras_custom.CustomModel if model == "mlp" else keras.Model
    return kind(inputs, outputs)


def numpy_input(dataset) -> dict[str, Any] | None:
    """`fit()`'s arguments for the rows of `dataset` as NumPy arrays.

    None if the batches' parts differ in size (then `fit()` gets the dataset).
    """
    import keras

    batches = list(dataset.as_numpy_iterator())
    sizes = {len(leaf) for leaf in keras.tree.flatten(batches[0])}
    if len(sizes) != 1:
        return None
    arrays = keras.tree.map_structure(lambda *parts: np.concatenate(parts), *batches)
    fit = {"batch_size": sizes.pop()}
    if isinstance(arrays, tuple) and len(arrays) == 2:
        return {**fit, "x": arrays[0], "y": arrays[1]}
    return {**fit, "x": arrays}


def model_and_input(model: str) -> tuple[Callable[[], Any], dict[str, Any], int]:
    """`(build, fit_kwargs, steps_per_epoch)` of `model` on this backend.

    `build()` returns `(keras_custom_model, networks)`, not compiled.
    """
    from benchmarks import fit_vs_loop, generative, self_supervised

    samples = common.whole_batches(
        SAMPLES.get(family(model), DEFAULT_SAMPLES), BATCH_SIZE
    )
    if model in CLASSIFIERS:
        x, y = common.tiled_digits(samples)
        data = {"x": x, "y": y, "batch_size": BATCH_SIZE}

        def build():
            network = classifier(model)
            return network, [network]

    elif model in common.GENERATIVE_MODELS:
        x, _ = common.tiled_digits(samples)
        data = {"x": x, "batch_size": BATCH_SIZE}

        def build():
            networks = generative.NETWORKS[model]()
            return generative.library_model(model, networks), list(networks)

    elif model in common.SELF_SUPERVISED_MODELS:
        x, _ = common.tiled_digits(samples, images=True)
        data = {"x": x, "batch_size": BATCH_SIZE}

        def build():
            networks = self_supervised.build_networks(model)
            return self_supervised.library_model(model, networks), networks.parts

    else:
        dataset = fit_vs_loop.make_dataset(model, samples, BATCH_SIZE)
        data = numpy_input(dataset) or {"x": dataset}
        if model in ("dqn", "actor_critic", "ppo"):
            data["shuffle"] = False

        def build():
            networks = fit_vs_loop.build_networks(model)
            return fit_vs_loop.library_model(model, networks), networks

    return build, data, samples // BATCH_SIZE


def family(model: str) -> str:
    if model in common.SELF_SUPERVISED_MODELS:
        return "self_supervised"
    if model in common.GENERATIVE_MODELS:
        return "generative"
    return "other"


def loop_trainer(model: str, networks, data: dict) -> Callable[[int], dict]:
    """`train(epochs)` of the hand-written JAX loop of `model` on `data`."""
    from benchmarks import jax_loops

    loop = jax_loops.LOOPS[model](networks)
    arrays = (data["x"], data["y"]) if "y" in data else data["x"]
    shuffle = data.get("shuffle", True)

    def train(epochs: int) -> dict[str, float]:
        return loop.train(arrays, data["batch_size"], epochs, shuffle)

    return train


def prepare(
    model: str, form: common.Form, built: tuple[Callable[[], Any], dict, int]
) -> common.Prepared:
    """`form` of `model` built on fresh networks and warmed up.

    `built` is `model_and_input(model)`, made once for all forms of `model`.
    """
    build, data, steps_per_epoch = built

    def make_train():
        library_model, networks = build()
        if form.kind == "loop":
            return loop_trainer(model, networks, data)
        if model in CLASSIFIERS:
            import keras

            library_model.compile(
                optimizer=keras.optimizers.Adam(),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        else:
            library_model.compile()
        return common.fit_trainer(library_model, data)

    return common.build_and_warm_up(form, make_train, steps_per_epoch)


def child(args: argparse.Namespace) -> None:
    """Times every model of `args.models` on this process's backend."""
    import keras

    backend = keras.backend.backend()
    load_before = os.getloadavg()
    started = time.perf_counter()
    # Once: `tf.random.set_seed` clears TensorFlow's kernel caches, which
    # would make the next call of every traced function slow.
    common.fresh_round(0)
    forms: list[list[common.Form]] = []
    prepared: dict[str, common.Prepared] = {}
    for model in args.models:
        group = [common.Form(model, "fit", f"{LABELS[model]} fit()", "keras_custom")]
        if backend == "jax" and model in JAX_LOOP_MODELS:
            group.append(
                common.Form(model, "jax_loop", "hand-written JAX loop", "loop")
            )
        built = model_and_input(model)
        for form in group:
            prepared[form.key] = prepare(model, form, built)
            print(
                f"[{backend}] prepared {form.key} in "
                f"{prepared[form.key].setup_seconds:.1f}s",
                flush=True,
            )
        forms.append(group)
    runs = common.alternate(
        args.inner_rounds,
        forms,
        lambda form, round_index: common.time_run(
            prepared[form.key], round_index, args.epochs
        ),
    )
    common.write_json(
        args.json,
        {
            "backend": backend,
            "seconds": time.perf_counter() - started,
            "environment": common.environment(load_before, os.getloadavg()),
            "runs": [common.record(run) for run in runs],
        },
    )


# ----------------------------------------------------------------------
# The parent: alternating children, ratios, tables
# ----------------------------------------------------------------------


def run_child(backend: str, args: argparse.Namespace, path: str) -> dict[str, Any]:
    """Runs one child on `backend`; returns its JSON result."""
    command = [
        *(sys.executable, "-m", "benchmarks.backends", "--child"),
        *("--models", ",".join(args.models)),
        *("--inner-rounds", str(args.inner_rounds), "--epochs", str(args.epochs)),
        *("--json", path),
    ]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(command, cwd=root, env=env, check=True)
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def per_form(result: dict[str, Any]) -> dict[str, list[dict]]:
    """A child's runs grouped by form key, in inner-round order."""
    grouped: dict[str, list[dict]] = {}
    for run in result["runs"]:
        grouped.setdefault(run["form"], []).append(run)
    return grouped


def summarize(children: list[dict[str, Any]], models: list[str]) -> list[dict]:
    """One row per model: JAX / TF fit per round, and JAX fit / JAX loop."""
    rounds: dict[str, list[dict]] = {backend: [] for backend in BACKENDS}
    for result in children:
        rounds[result["backend"]].append(per_form(result))
    rows = []
    for model in models:
        ms = {
            backend: [
                statistics.median(run["ms_per_step"] for run in forms[f"{model}_fit"])
                for forms in rounds[backend]
            ]
            for backend in BACKENDS
        }
        ratios = [jax / tf for tf, jax in zip(ms["tensorflow"], ms["jax"], strict=True)]
        row = {
            "model": model,
            "label": LABELS[model],
            "tensorflow_ms_per_step": statistics.median(ms["tensorflow"]),
            "jax_ms_per_step": statistics.median(ms["jax"]),
            "jax_over_tensorflow": spread(ratios),
            "meets_goal": statistics.median(ratios) <= BACKEND_GOAL,
        }
        loop_key = f"{model}_jax_loop"
        if all(loop_key in forms for forms in rounds["jax"]):
            pairs = [
                (fit, loop)
                for forms in rounds["jax"]
                for fit, loop in zip(
                    forms[f"{model}_fit"], forms[loop_key], strict=True
                )
            ]
            row["jax_loop_ms_per_step"] = statistics.median(
                loop["ms_per_step"] for _, loop in pairs
            )
            row["fit_over_jax_loop"] = spread(
                [fit["ms_per_step"] / loop["ms_per_step"] for fit, loop in pairs]
            )
            row["steady_fit_over_jax_loop"] = statistics.median(
                fit["steady_ms_per_step"] / loop["steady_ms_per_step"]
                for fit, loop in pairs
            )
            row["meets_loop_goal"] = (
                row["fit_over_jax_loop"]["median"] <= common.TARGET_RATIO
            )
        rows.append(row)
    return rows


def _range(values: dict[str, Any], spec: str = ".2f") -> str:
    return f"{values['median']:{spec}} ({values['min']:{spec}}-{values['max']:{spec}})"


def format_table(rows: list[dict]) -> str:
    lines = common.table_head(
        *("model", "TF fit ms/step", "JAX fit ms/step", "JAX / TF (range)"),
        *("speed-up", "JAX loop ms/step", "JAX fit / loop (range)", "steady"),
    )
    for row in rows:
        loop = row.get("fit_over_jax_loop")
        ratio = row["jax_over_tensorflow"]["median"]
        lines.append(
            f"| {row['label']} | {row['tensorflow_ms_per_step']:.2f} "
            f"| {row['jax_ms_per_step']:.2f} "
            f"| {_range(row['jax_over_tensorflow'], '.3f')} | {1 / ratio:.1f}x "
            + (
                f"| {row['jax_loop_ms_per_step']:.2f} | {_range(loop, '.3f')} "
                f"| {row['steady_fit_over_jax_loop']:.3f} |"
                if loop
                else "| - | - | - |"
            )
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.new_parser(__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of one child per backend"
    )
    parser.add_argument(
        "--inner-rounds", type=int, default=3, help="timed runs per model per child"
    )
    parser.add_argument("--epochs", type=int, default=6, help="timed epochs per run")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated models, of: " + ", ".join(MODELS),
    )
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    for name in ("rounds", "inner_rounds", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown or not args.models:
        parser.error(f"--models takes some of {', '.join(MODELS)}; got {unknown}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Runs the children (or, with ``--child``, is one); prints the table."""
    args = parse_args(argv)
    if args.child:
        child(args)
        return None
    load_before = os.getloadavg()
    started = time.perf_counter()
    children = []
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            order = BACKENDS if round_index % 2 == 0 else BACKENDS[::-1]
            for backend in order:
                path = os.path.join(folder, f"{backend}-{round_index}.json")
                result = run_child(backend, args, path)
                children.append(result)
                print(
                    f"round {round_index + 1}/{args.rounds}: {backend} child "
                    f"{result['seconds']:.0f}s",
                    flush=True,
                )
    rows = summarize(children, args.models)
    print(format_table(rows))
    print(
        f"Goals: JAX / TF <= {BACKEND_GOAL:.3f} (3x faster); JAX fit / loop <= "
        f"{common.TARGET_RATIO:.2f}."
    )
    load_after = os.getloadavg()
    common.print_total(time.perf_counter() - started, load_before, load_after)
    # This process does not import Keras: the children tell the versions.
    environment = {child["backend"]: child["environment"] for child in children}
    result = {
        "config": {
            "rounds": args.rounds,
            "inner_rounds": args.inner_rounds,
            "epochs": args.epochs,
            "batch_size": BATCH_SIZE,
            "models": args.models,
        },
        "environment": {
            **environment,
            "load_average_before": list(load_before),
            "load_average_after": list(load_after),
        },
        "summary": rows,
        "children": children,
    }
    common.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
