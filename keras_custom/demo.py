"""Demos of `CustomModel`, run by the `keras-custom demo` command.

Each demo trains a model on the bundled 8x8 digits, prints its results, and
writes a `.keras` model and a `.png` figure to an output folder. A demo is one
function registered in `DEMOS`; new paradigms (GAN, VAE, ...) are added as one
more entry there and become available as `keras-custom demo --only NAME`.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_custom import CustomModel
from keras_custom.datasets import digits

DEFAULT_OUTPUT_DIR = "keras_custom_demo"
CLASSIFIER_EPOCHS = 30

DemoFunction = Callable[..., dict[str, Any]]


class MissingDependencyError(ImportError):
    """An optional dependency of the demos (matplotlib) is not installed."""


def _import_pyplot():
    """Imports `matplotlib.pyplot` on the Agg backend, or explains what to install."""
    try:
        import matplotlib
    except ImportError as error:
        raise MissingDependencyError(
            "The keras-custom demos need matplotlib to draw their figures. "
            'Install it with: pip install "keras-custom[demo]"'
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _flat_digits() -> tuple[
    tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]:
    """The digits as float32 vectors of 64 pixels in [0, 1], and int labels."""
    (x_train, y_train), (x_test, y_test) = digits.load_data()

    def prepare(x):
        return (x.astype("float32") / 16.0).reshape(len(x), 64)

    return (
        (prepare(x_train), y_train.astype("int32")),
        (prepare(x_test), y_test.astype("int32")),
    )


def _plot_classifier(
    plt,
    history: dict[str, list[float]],
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    test_accuracy: float,
    path: Path,
    seed: int,
) -> None:
    """Draws learning curves and predicted test digits, and saves the figure."""
    fig = plt.figure(figsize=(11, 7.5), layout="constrained")
    fig.suptitle(
        "keras-custom demo: MLP classifier on the 8x8 digits "
        f"(test accuracy {test_accuracy:.4f})",
        fontsize=13,
    )
    curves, samples = fig.subfigures(2, 1, height_ratios=[1.1, 1])

    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, label in zip(
        curves.subplots(1, 2), ["loss", "accuracy"], ["Loss", "Accuracy"], strict=True
    ):
        ax.plot(epochs, history[key], marker=".", label="train")
        ax.plot(epochs, history[f"val_{key}"], marker=".", label="validation (test)")
        ax.set_title(f"{label} per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.grid(alpha=0.3)
        ax.legend()

    rng = np.random.default_rng(seed)
    rows, cols = 2, 6
    chosen = rng.choice(len(images), size=rows * cols, replace=False)
    samples.suptitle(
        "Random test digits: predicted label (red: wrong, with the true label)"
    )
    for ax, index in zip(samples.subplots(rows, cols).flat, chosen, strict=True):
        ax.imshow(images[index], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        predicted, true = int(predictions[index]), int(labels[index])
        if predicted == true:
            ax.set_title(f"pred {predicted}", color="black")
        else:
            ax.set_title(f"pred {predicted} (true {true})", color="red")

    fig.savefig(path, dpi=100)
    plt.close(fig)


def classifier(
    output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR,
    epochs: int | None = None,
    seed: int = 0,
    verbose: int = 1,
) -> dict[str, Any]:
    """Trains a `CustomModel` MLP classifier on the 8x8 digits.

    The simplest use of `CustomModel`: a functional model given its optimizer
    and loss in the constructor, so that `compile()` only adds metrics, then
    a plain `fit()` with the test set as validation data. The pixels are
    scaled to [0, 1] and flattened to 64 values; the model is
    64 -> 128 (ReLU) -> 10 logits. It writes `classifier.keras` (the trained
    model) and `classifier.png` (learning curves and predicted test digits)
    to `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Number of training epochs; `None` means
            `CLASSIFIER_EPOCHS`.
        seed: Seed for `keras.utils.set_random_seed` and the digits shown.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"test_accuracy"` and `"test_loss"` (floats, from
        `evaluate()` on the test set), `"history"` (the `fit()` history
        dict), `"model_path"` and `"figure_path"` (`pathlib.Path`s).
    """
    plt = _import_pyplot()
    if epochs is None:
        epochs = CLASSIFIER_EPOCHS
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)

    (x_train, y_train), (x_test, y_test) = _flat_digits()

    inputs = keras.Input(shape=(64,), name="pixels")
    hidden = keras.layers.Dense(128, activation="relu", name="hidden")(inputs)
    logits = keras.layers.Dense(10, name="logits")(hidden)
    model = CustomModel(
        inputs,
        logits,
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        name="digits_classifier",
    )
    model.compile(metrics=["accuracy"])

    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        validation_data=(x_test, y_test),
        verbose=verbose,
    )
    scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    test_accuracy = float(scores["accuracy"])
    print(f"test accuracy: {test_accuracy:.4f}")

    model_path = output_dir / "classifier.keras"
    model.save(model_path)

    figure_path = output_dir / "classifier.png"
    predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
    _plot_classifier(
        plt,
        history.history,
        x_test.reshape(-1, 8, 8),
        y_test,
        predictions,
        test_accuracy,
        figure_path,
        seed,
    )
    return {
        "test_accuracy": test_accuracy,
        "test_loss": float(scores["loss"]),
        "history": history.history,
        "model_path": model_path,
        "figure_path": figure_path,
    }


# Name -> demo function. Every function takes the keyword arguments
# `output_dir`, `epochs` (`None` for its own default), `seed` and `verbose`,
# and returns a dict of results that includes the paths it wrote.
DEMOS: dict[str, DemoFunction] = {
    "classifier": classifier,
}


def run(
    names: Sequence[str] | None = None,
    output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR,
    epochs: int | None = None,
    seed: int = 0,
    verbose: int = 1,
) -> dict[str, dict[str, Any]]:
    """Runs demos one after the other and reports where their files are.

    Args:
        names: Names of demos in `DEMOS` to run, in order. Defaults to all.
        output_dir: Folder every demo writes its files to.
        epochs: Number of epochs for every demo, or `None` for each demo's
            own default.
        seed: Random seed given to every demo.
        verbose: 1 to show the Keras progress bar, 0 to hide it.

    Returns:
        Dict mapping each demo's name to the results it returned.
    """
    names = list(DEMOS) if names is None else list(names)
    unknown = [name for name in names if name not in DEMOS]
    if unknown:
        raise ValueError(
            f"Unknown demo(s) {unknown}. Available demos: {sorted(DEMOS)}."
        )
    results = {}
    for name in names:
        print(f"=== demo: {name} ===")
        results[name] = DEMOS[name](
            output_dir=output_dir, epochs=epochs, seed=seed, verbose=verbose
        )
    written = [
        value
        for result in results.values()
        for key, value in result.items()
        if key.endswith("_path")
    ]
    print("Files written:")
    for path in written:
        print(f"  {path}")
    print(f"Output folder: {Path(output_dir).resolve()}")
    return results
