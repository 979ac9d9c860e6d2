"""The classifier demo: a `CustomModel` MLP classifier on the 8x8 digits."""

from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_custom import CustomModel
from keras_custom.demo import _common
from keras_custom.recipes import data

CLASSIFIER_EPOCHS = 30


def _plot_classifier(
    plt,
    history: dict[str, list[float]],
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
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

    _common.show_predictions(
        samples,
        model,
        images,
        labels,
        (2, 6),
        "Random test digits: predicted label (red: wrong, with the true label)",
        seed,
    )
    _common.save_figure(plt, fig, path)


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
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
    plt = _common.import_pyplot()
    if epochs is None:
        epochs = CLASSIFIER_EPOCHS
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)

    (x_train, y_train), (x_test, y_test) = data.load_digits((data.NUM_PIXELS,))

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

    model_path = _common.save_model(model, output_dir, "classifier")

    figure_path = output_dir / "classifier.png"
    _plot_classifier(
        plt,
        history.history,
        model,
        x_test,
        y_test,
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
