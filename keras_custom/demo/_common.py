"""What the demos share: their arguments, matplotlib, digit grids, the judge."""

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_custom.recipes import generative_scores
from keras_custom.recipes.data import NUM_CLASSES

DEFAULT_OUTPUT_DIR = "keras_custom_demo"

#: Number of generated digits the judge scores (`judge_generated`).
JUDGED_SAMPLES = 1000

DemoFunction = Callable[..., dict[str, Any]]


def demo(body: Callable[[Path, int | None, int, int], dict[str, Any]]) -> DemoFunction:
    """Makes a demo's `run()` from its body: the arguments every demo takes.

    Every demo's `run` takes the keyword arguments `output_dir` (default
    `DEFAULT_OUTPUT_DIR`), `epochs` (`None` for the demo's own default),
    `seed` (default 0) and `verbose` (default 1), as `keras_custom.demo.run`
    calls it, and returns a dict of results. The `run` this returns calls
    `body(Path(output_dir), epochs, seed, verbose)`, and has `body`'s name
    and docstring.

    Args:
        body: The demo, a function of `(output_dir, epochs, seed, verbose)`.

    Returns:
        The demo's `run` function.
    """

    def run(
        output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR,
        epochs: int | None = None,
        seed: int = 0,
        verbose: int = 1,
    ) -> dict[str, Any]:
        return body(Path(output_dir), epochs, seed, verbose)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(run, attribute, getattr(body, attribute))
    return run


class MissingDependencyError(ImportError):
    """An optional dependency of the demos (matplotlib, gymnasium) is missing."""


def import_pyplot():
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


def import_gymnasium():
    """Imports `gymnasium`, or explains what to install."""
    try:
        import gymnasium
    except ImportError as error:
        raise MissingDependencyError(
            "The keras-custom reinforcement learning demo needs gymnasium for "
            'its environment. Install it with: pip install "keras-custom[demo]"'
        ) from error
    return gymnasium


@functools.lru_cache(maxsize=2)
def trained_judge(seed: int) -> tuple[keras.Model, keras.Model]:
    """`generative_scores.train_judge(seed)`, trained once per process and seed."""
    return generative_scores.train_judge(seed=seed)


def judge_generated(
    name: str, model: keras.Model, real: np.ndarray, seed: int
) -> dict[str, Any]:
    """Judges `JUDGED_SAMPLES` digits a generative model draws, and prints it.

    The judge (`trained_judge(seed)`) first prints its own test accuracy,
    then scores the digits `model.generate(JUDGED_SAMPLES, seed=seed)`
    (`generative_scores.judge_scores`, against the `real` digits and uniform
    noise drawn with `seed`), and `print_judge_scores` prints the scores.

    Args:
        name: The demo's name, the prefix of the printed lines.
        model: A trained `GAN` or `VAE`.
        real: The training digits, the reference of the Fréchet distances.
        seed: Seed of the judge and of the latents drawn.

    Returns:
        Dict with `"classifier"` (the judge), `"judge_accuracy"`, `"samples"`
        (the generated digits) and `"scores"`.
    """
    classifier, features = trained_judge(seed)
    judge_accuracy = generative_scores.judge_accuracy(classifier)
    print(f"judge accuracy on the test digits: {judge_accuracy:.4f}")
    samples = model.generate(JUDGED_SAMPLES, seed=seed)
    scores = generative_scores.judge_scores(
        classifier, features, samples, real=real, noise_seed=seed
    )
    print_judge_scores(name, scores)
    return {
        "classifier": classifier,
        "judge_accuracy": judge_accuracy,
        "samples": samples,
        "scores": scores,
    }


def save_model(model: keras.Model, output_dir: Path, name: str) -> Path:
    """Saves `model` to `output_dir / f"{name}.keras"` and returns that path."""
    path = output_dir / f"{name}.keras"
    model.save(path)
    return path


def save_figure(plt, fig, path: Path) -> None:
    """Saves a matplotlib figure at 100 dpi to `path`, then closes it."""
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tile_digits(images: np.ndarray, rows: int, cols: int, gap: int = 1) -> np.ndarray:
    """Tiles `rows * cols` 8x8 digits into one image, with `gap` blank pixels.

    Args:
        images: At least `rows * cols` images of 64 pixels (or 8x8); the
            first `rows * cols` are shown, row by row.
        rows: Number of rows of digits.
        cols: Number of columns of digits.
        gap: Width of the blank (value 0) border between digits.

    Returns:
        A 2D array of shape `(rows * (8 + gap) - gap, cols * (8 + gap) - gap)`.
    """
    images = np.asarray(images, dtype="float32")[: rows * cols].reshape(-1, 8, 8)
    if len(images) < rows * cols:
        raise ValueError(f"Need {rows * cols} images to tile, got {len(images)}.")
    step = 8 + gap
    canvas = np.zeros((rows * step - gap, cols * step - gap), dtype="float32")
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        canvas[row * step : row * step + 8, col * step : col * step + 8] = image
    return canvas


def show_digits(ax, images: np.ndarray, rows: int, cols: int, title: str) -> None:
    """Draws `tile_digits(images, rows, cols)` in `ax`, dark digits on white."""
    ax.imshow(
        tile_digits(images, rows, cols),
        cmap="gray_r",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def show_predictions(
    subfigure,
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    shape: tuple[int, int],
    title: str,
    seed: int,
    separator: str = " ",
) -> None:
    """Draws random digits in `subfigure`, each titled with its predicted label.

    The model predicts the class of every image (`predict`, then the
    highest score); `rows * cols` of them, drawn without replacement with
    `np.random.default_rng(seed)`, are shown one per axes of a `rows` x
    `cols` grid. A wrong prediction's title is red and gives the true label
    too.

    Args:
        subfigure: A matplotlib `Figure` or `SubFigure`.
        model: A classifier of `images`, returning class scores.
        images: The model's inputs, digits of 64 pixels each (any shape).
        labels: Their true class ids.
        shape: `(rows, cols)` of the grid.
        title: Title above the grid.
        seed: Seed of the choice of the digits.
        separator: Text between the prediction and the true label.
    """
    predictions = np.argmax(model.predict(images, verbose=0), axis=-1)
    rows, cols = shape
    chosen = np.random.default_rng(seed).choice(len(images), rows * cols, False)
    subfigure.suptitle(title)
    for ax, index in zip(subfigure.subplots(rows, cols).flat, chosen, strict=True):
        ax.imshow(np.reshape(images[index], (8, 8)), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        predicted, true = int(predictions[index]), int(labels[index])
        if predicted == true:
            ax.set_title(f"pred {predicted}", color="black")
        else:
            ax.set_title(f"pred {predicted}{separator}(true {true})", color="red")


def show_judged_samples(ax, judged: dict[str, Any], title: str) -> None:
    """Draws 100 digits `judge_generated` judged, 10x10, sorted by their class.

    Args:
        ax: A matplotlib `Axes`.
        judged: The dict `judge_generated` returns.
        title: Title of the grid.
    """
    samples = sorted_by_class(judged["classifier"], judged["samples"][:100])
    show_digits(ax, samples, 10, 10, title)


def sorted_by_class(classifier: keras.Model, images: np.ndarray) -> np.ndarray:
    """`images` in the order of the class the judge predicts for them."""
    classes = np.argmax(classifier.predict(images, verbose=0), axis=-1)
    return images[np.argsort(classes, kind="stable")]


def plot_history(ax, history: dict[str, list[float]], keys: list[str]) -> None:
    """Plots the per-epoch values of `keys` of a `fit()` history in `ax`."""
    for key in keys:
        values = history[key]
        ax.plot(np.arange(1, len(values) + 1), values, label=key)
    ax.set_xlabel("epoch")
    ax.set_title("Training losses per epoch")
    ax.grid(alpha=0.3)
    ax.legend()


def print_judge_scores(prefix: str, scores: dict[str, float]) -> None:
    """Prints the scores of `generative_scores.judge_scores`, a few a line."""
    print(f"{prefix} mean max class probability: {scores['mean_max_probability']:.4f}")
    print(
        f"{prefix} class entropy: {scores['class_entropy']:.4f} "
        f"({int(scores['classes_covered'])} of {NUM_CLASSES} classes)"
    )
    print(
        f"{prefix} frechet distance: {scores['frechet_distance']:.4f} "
        f"(uniform noise: {scores['noise_frechet_distance']:.4f}, "
        f"ratio {scores['frechet_ratio']:.4f})"
    )
