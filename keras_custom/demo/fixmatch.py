"""The FixMatch demo: a `keras_custom.FixMatch` learning digits from 50 labels."""

from pathlib import Path
from typing import Any

import numpy as np

from keras_custom.demo import _common
from keras_custom.recipes import data, semi_supervised
from keras_custom.recipes.classifiers import accuracy
from keras_custom.semi_supervised import FixMatch

#: Default number of epochs of the demo: the recipe's (passes over the
#: unlabeled digits).
FIXMATCH_DEMO_EPOCHS = semi_supervised.FIXMATCH_EPOCHS
#: Number of test digits drawn with their predictions in `fixmatch.png`.
SHOWN_DIGITS = 12


def _save_figure(
    plt,
    history: dict[str, list[float]],
    accuracies: tuple[float, float, float],
    model: FixMatch,
    images: np.ndarray,
    labels: np.ndarray,
    path: Path,
    seed: int,
) -> None:
    """Draws the learning curves and predicted test digits, and saves them."""
    fixmatch_accuracy, baseline_accuracy, full_accuracy = accuracies
    fig = plt.figure(figsize=(15, 7), layout="constrained")
    fig.suptitle(
        f"keras-custom demo: FixMatch on the 8x8 digits with "
        f"{data.LABELS_PER_CLASS} labels per class (test accuracy "
        f"{fixmatch_accuracy:.4f}; supervised on the same labels "
        f"{baseline_accuracy:.4f}, on all labels {full_accuracy:.4f})",
        fontsize=12,
    )
    curves, samples = fig.subfigures(2, 1, height_ratios=[1.3, 1])
    epochs = np.arange(1, len(history["loss"]) + 1)
    loss_ax, mask_ax, accuracy_ax = curves.subplots(1, 3)
    for key in ("supervised_loss", "unsupervised_loss"):
        loss_ax.plot(epochs, history[key], label=key)
    loss_ax.set(title="Losses per epoch", xlabel="epoch", yscale="log")
    mask_ax.plot(epochs, history["mask_rate"], color="tab:green")
    mask_ax.set(
        title="mask_rate: unlabeled digits above the threshold",
        xlabel="epoch",
        ylim=(0, 1.02),
    )
    accuracy_ax.plot(
        epochs, history["val_accuracy"], label="FixMatch, trained weights (val)"
    )
    accuracy_ax.axhline(
        fixmatch_accuracy, color="tab:blue", ls="--", label="FixMatch, averaged weights"
    )
    accuracy_ax.axhline(
        baseline_accuracy, color="gray", ls=":", label="supervised, same labels"
    )
    accuracy_ax.axhline(
        full_accuracy, color="black", ls="-.", label="supervised, all labels"
    )
    accuracy_ax.set(title="Test accuracy per epoch", xlabel="epoch", ylim=(0, 1.02))
    for ax in (loss_ax, mask_ax, accuracy_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend()
    accuracy_ax.legend(loc="lower right")

    _common.show_predictions(
        samples,
        model,
        images,
        labels,
        (1, SHOWN_DIGITS),
        "Random test digits: FixMatch's prediction (red: wrong, with the true label)",
        seed,
        separator="\n",
    )
    _common.save_figure(plt, fig, path)


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
) -> dict[str, Any]:
    """Trains a `FixMatch` on 5 labels per class and the unlabeled digits.

    The recipe is `keras_custom.recipes.semi_supervised.train_fixmatch`
    (evaluated on the test digits after each epoch): 50 labeled training
    digits, the other 1,387 unlabeled, a small convolutional classifier, a
    one-pixel shift as the weak view and `semi_supervised.strong_augmenter`
    as the strong one, pseudo-labels above a confidence of 0.95, and a
    moving average of the weights for the final model. Its test accuracy is
    printed next to those of the same classifier trained on the 50 labels
    alone (`semi_supervised.train_supervised_baseline`) and on all 1,437
    labels (`semi_supervised.train_fully_supervised`), with the share of the
    gap between the two that FixMatch closes (`semi_supervised.gap_closed`).
    It writes `fixmatch.keras` (the trained `FixMatch`, whose `predict`
    gives the classifier's logits) and `fixmatch.png` (the supervised and
    unsupervised losses, the mask rate and the test accuracy per epoch, and
    a row of test digits with their predictions) to `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Number of passes over the unlabeled digits; `None` means
            `FIXMATCH_DEMO_EPOCHS`.
        seed: Seed of the recipe (initialization, augmentation, batches) and
            of the baseline.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"fixmatch_accuracy"`, `"baseline_accuracy"` and
        `"full_supervision_accuracy"` (test accuracies), `"gap_closed"`,
        `"history"` (the `fit()` history dict), `"model_path"`
        and `"figure_path"` (`pathlib.Path`s).
    """
    plt = _common.import_pyplot()
    if epochs is None:
        epochs = FIXMATCH_DEMO_EPOCHS
    output_dir.mkdir(parents=True, exist_ok=True)
    _, (x_test, y_test) = data.load_digits()

    baseline = semi_supervised.train_supervised_baseline(seed)
    baseline_accuracy = accuracy(baseline, x_test, y_test)
    full_accuracy = accuracy(
        semi_supervised.train_fully_supervised(seed), x_test, y_test
    )
    model = semi_supervised.train_fixmatch(
        seed,
        epochs=epochs,
        validation_data=(x_test, y_test),
        verbose=verbose,
    )
    history = model.history.history
    fixmatch_accuracy = accuracy(model, x_test, y_test)
    gap = semi_supervised.gap_closed(
        fixmatch_accuracy, baseline_accuracy, full_accuracy
    )
    labels = data.LABELS_PER_CLASS * data.NUM_CLASSES
    print(f"fixmatch test accuracy: {fixmatch_accuracy:.4f}")
    print(
        f"fixmatch baseline test accuracy: {baseline_accuracy:.4f} "
        f"(supervised, the same {labels} labels alone)"
    )
    print(
        f"fixmatch full supervision test accuracy: {full_accuracy:.4f} "
        f"(supervised, all {len(data.load_digits()[0][1]):,} labels)"
    )
    print(f"fixmatch gap closed: {gap:.3f} (0: the baseline, 1: full supervision)")
    print(f"fixmatch final mask rate: {history['mask_rate'][-1]:.4f}")

    model_path = _common.save_model(model, output_dir, "fixmatch")
    figure_path = output_dir / "fixmatch.png"
    _save_figure(
        plt,
        history,
        (fixmatch_accuracy, baseline_accuracy, full_accuracy),
        model,
        x_test,
        y_test,
        figure_path,
        seed,
    )
    return {
        "fixmatch_accuracy": fixmatch_accuracy,
        "baseline_accuracy": baseline_accuracy,
        "full_supervision_accuracy": full_accuracy,
        "gap_closed": gap,
        "history": history,
        "model_path": model_path,
        "figure_path": figure_path,
    }
