"""The SimSiam demo: a `keras_custom.SimSiam` learning digits without labels.

Besides `run()`, the demo's two figure helpers are public, for the
notebooks: `pca_2d` (a NumPy principal component analysis of embeddings)
and `plot_embedding` (a scatter plot of them, coloured by digit).
"""

from pathlib import Path
from typing import Any

import numpy as np

from keras_custom.demo import _common
from keras_custom.recipes import data, self_supervised, self_supervised_scores

#: The self-supervised model of the demo, one of
#: `keras_custom.recipes.self_supervised.MODEL_NAMES`.
MODEL_NAME = "simsiam"
#: Default number of epochs of the demo. SimSiam's scores after 50 epochs
#: are close to those after the recipe's `self_supervised.EPOCHS` (80), in a
#: little more than half the time.
SIMSIAM_DEMO_EPOCHS = 50


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projects l2-normalized features on their first two principal components.

    Each feature vector is divided by its l2 norm (the k-nearest-neighbour
    score compares features by cosine similarity), the vectors are
    centered, and the singular value decomposition of the centered matrix
    (`numpy.linalg.svd`) gives the two directions of largest variance.

    Args:
        features: Array `(count, d)` of features, `count >= 2`, `d >= 2`.

    Returns:
        Tuple `(points, explained)`: an array `(count, 2)` of the
        coordinates along the two components (their signs are arbitrary),
        and an array `(2,)` of the fractions of the total variance of the
        normalized features that the two components explain.

    Example:

    ```python
    import numpy as np
    from keras_custom.demo.self_supervised import pca_2d

    features = np.random.default_rng(0).normal(size=(100, 8))
    features[:, 0] *= 10.0  # one dominant direction
    points, explained = pca_2d(features)
    points.shape  # (100, 2)
    explained[0] > 0.5  # True
    ```
    """
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 2:
        raise ValueError(
            f"`features` must have shape (count, d), count and d >= 2; "
            f"got {features.shape}."
        )
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    normalized = features / np.maximum(norms, 1e-12)
    centered = normalized - normalized.mean(axis=0)
    _, singular_values, right = np.linalg.svd(centered, full_matrices=False)
    variances = np.square(singular_values)
    explained = variances[:2] / max(float(np.sum(variances)), 1e-12)
    return centered @ right[:2].T, explained


def plot_embedding(
    ax,
    features: np.ndarray,
    labels: np.ndarray,
    title: str,
    num_classes: int = data.NUM_CLASSES,
) -> None:
    """Draws the `pca_2d` projection of `features` in `ax`, coloured by class.

    Every point is one example, coloured by its label (matplotlib's
    `tab10` colours); each class's digit is written at the median of its
    points, and the axis labels give the variance each component explains.

    Args:
        ax: A matplotlib `Axes`.
        features: Array `(count, d)` of features.
        labels: Integer class ids `(count,)`, in `[0, num_classes)`.
        title: Title of the plot.
        num_classes: Number of classes (at most 10, the `tab10` colours).
    """
    import matplotlib

    labels = np.asarray(labels).astype("int64").reshape(-1)
    points, explained = pca_2d(features)
    colours = matplotlib.colormaps["tab10"]
    for label in range(num_classes):
        chosen = points[labels == label]
        if not len(chosen):
            continue
        ax.scatter(chosen[:, 0], chosen[:, 1], s=9, alpha=0.7, color=colours(label))
        x, y = np.median(chosen, axis=0)
        ax.text(
            x,
            y,
            str(label),
            fontsize=13,
            fontweight="bold",
            ha="center",
            va="center",
            color=colours(label),
            bbox={
                "boxstyle": "circle,pad=0.2",
                "fc": "white",
                "ec": colours(label),
                "alpha": 0.8,
            },
        )
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of the variance)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def _print_scores(scores: dict[str, float], baseline: dict[str, float]) -> None:
    """Prints the scores of `evaluate_encoder`, next to the baseline's."""
    print(
        f"{MODEL_NAME} k-NN accuracy: {scores['knn_accuracy']:.4f} "
        f"(random init: {baseline['knn_accuracy']:.4f})"
    )
    print(
        f"{MODEL_NAME} few-shot linear accuracy: {scores['few_shot_accuracy']:.4f} "
        f"(random init: {baseline['few_shot_accuracy']:.4f})"
    )
    print(
        f"{MODEL_NAME} embedding std: {scores['embedding_std']:.4f} "
        f"(collapse threshold: {scores['collapse_threshold']:.4f})"
    )


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
) -> dict[str, Any]:
    """Trains a `SimSiam` on the 8x8 digits without labels and scores its features.

    The recipe is
    `keras_custom.recipes.self_supervised.train_self_supervised("simsiam")`:
    a small convolutional encoder, a batch-normalized projector and a
    bottleneck predictor, trained by a plain `fit(x_train)` on two augmented
    views of each training image, with no labels. The encoder is then
    frozen and scored on the test digits
    (`keras_custom.recipes.self_supervised_scores.evaluate_encoder`) next
    to the same encoder at its random initialization: the accuracy of a
    5-nearest-neighbour classifier (cosine similarity, all training digits
    labeled), that of a linear classifier fit on 10 labeled training digits
    per class, and the spread of the normalized features (a collapsed
    representation has none). It writes `simsiam.keras` (the trained
    `SimSiam`, whose `predict` gives the encoder's features) and
    `simsiam.png` (the test digits' features projected on their first two
    principal components and coloured by digit, before and after
    training, and the loss per epoch) to `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Number of training epochs; `None` means
            `SIMSIAM_DEMO_EPOCHS`.
        seed: Seed of the recipe (initialization, augmentation, shuffling)
            and of the choice of the few labeled digits.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"knn_accuracy"`, `"few_shot_accuracy"` and
        `"embedding_std"` (floats), `"scores"` and `"baseline_scores"` (the
        dicts of `self_supervised_scores.evaluate_encoder` for the trained
        encoder and the untrained one), `"history"` (the `fit()` history dict),
        `"model_path"` and `"figure_path"` (`pathlib.Path`s).
    """
    plt = _common.import_pyplot()
    if epochs is None:
        epochs = SIMSIAM_DEMO_EPOCHS
    output_dir.mkdir(parents=True, exist_ok=True)
    _, (x_test, y_test) = data.load_digits()

    # The untrained model's encoder has the initial weights of the trained one.
    untrained = self_supervised.build_self_supervised(MODEL_NAME, seed=seed)
    baseline = self_supervised_scores.evaluate_encoder(untrained, few_shot_seed=seed)
    untrained_features = self_supervised_scores.encoder_features(untrained, x_test)

    model = self_supervised.train_self_supervised(
        MODEL_NAME, seed=seed, epochs=epochs, verbose=verbose
    )
    history = model.history.history
    print(f"{MODEL_NAME} final loss: {history['loss'][-1]:.4f} (best: -1)")
    scores = self_supervised_scores.evaluate_encoder(model, few_shot_seed=seed)
    _print_scores(scores, baseline)

    model_path = _common.save_model(model, output_dir, MODEL_NAME)

    figure_path = output_dir / f"{MODEL_NAME}.png"
    fig, (before, after, curve) = plt.subplots(
        1, 3, figsize=(16, 5.4), width_ratios=[1, 1, 0.9], layout="constrained"
    )
    fig.suptitle(
        f"keras-custom demo: SimSiam on the 8x8 digits, {epochs} epochs without "
        f"labels (test k-NN accuracy {scores['knn_accuracy']:.3f}, 10-shot linear "
        f"{scores['few_shot_accuracy']:.3f}; random init "
        f"{baseline['knn_accuracy']:.3f} and {baseline['few_shot_accuracy']:.3f})",
        fontsize=11,
    )
    plot_embedding(
        before, untrained_features, y_test, "Test digits: random-init encoder (PCA)"
    )
    plot_embedding(
        after,
        self_supervised_scores.encoder_features(model, x_test),
        y_test,
        "Test digits: SimSiam encoder (PCA)",
    )
    _common.plot_history(curve, history, ["loss"])
    curve.axhline(-1.0, color="gray", ls=":", label="best (-1)")
    curve.set_title("Negative cosine similarity per epoch")
    curve.legend()
    _common.save_figure(plt, fig, figure_path)
    return {
        "knn_accuracy": scores["knn_accuracy"],
        "few_shot_accuracy": scores["few_shot_accuracy"],
        "embedding_std": scores["embedding_std"],
        "scores": scores,
        "baseline_scores": baseline,
        "history": history,
        "model_path": model_path,
        "figure_path": figure_path,
    }
