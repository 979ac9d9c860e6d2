"""What the demos share: the output folder, matplotlib, digit grids, the judge."""

import functools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_custom.demo import networks

DEFAULT_OUTPUT_DIR = "keras_custom_demo"

DemoFunction = Callable[..., dict[str, Any]]


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
    """`networks.train_judge(seed)`, trained once per process and seed."""
    return networks.train_judge(seed=seed)


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
    """Prints the scores of `networks.judge_scores`, one `name: value` a line."""
    print(f"{prefix} mean max class probability: {scores['mean_max_probability']:.4f}")
    print(
        f"{prefix} class entropy: {scores['class_entropy']:.4f} "
        f"({int(scores['classes_covered'])} of {networks.NUM_CLASSES} classes)"
    )
    print(
        f"{prefix} frechet distance: {scores['frechet_distance']:.4f} "
        f"(uniform noise: {scores['noise_frechet_distance']:.4f}, "
        f"ratio {scores['frechet_ratio']:.4f})"
    )
