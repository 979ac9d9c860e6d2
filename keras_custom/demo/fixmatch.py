"""The FixMatch demo: a `keras_custom.FixMatch` learning digits from 50 labels.

Besides `run()`, the demo's two training helpers are public, for the
notebooks: `train_fixmatch_on_split` and `train_supervised_on_split` follow
the recipes `semi_supervised_recipes.train_fixmatch` and
`semi_supervised_recipes.train_supervised_baseline` step by step, and also
take the number of labels per class, the number of epochs and validation
data.
"""

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_custom.demo import semi_supervised_recipes as recipes
from keras_custom.demo._common import DEFAULT_OUTPUT_DIR, import_pyplot
from keras_custom.semi_supervised import FixMatch, SemiSupervisedDataset

#: Default number of epochs of the demo: the recipe's (150 passes over the
#: unlabeled digits, about 25 seconds on a two-core CPU).
FIXMATCH_DEMO_EPOCHS = recipes.FIXMATCH_EPOCHS
#: Number of test digits drawn with their predictions in `fixmatch.png`.
SHOWN_DIGITS = 12


def train_fixmatch_on_split(
    labels_per_class: int = recipes.LABELS_PER_CLASS,
    seed: int = 0,
    epochs: int = recipes.FIXMATCH_EPOCHS,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    verbose: int = 0,
) -> FixMatch:
    """Trains `FixMatch` as `recipes.train_fixmatch`, on any number of labels.

    The networks, augmenters, hyperparameters and seeds are those of
    `semi_supervised_recipes.train_fixmatch`; with the defaults the two
    train the same model. The split is
    `recipes.label_split(labels_per_class)`.

    Args:
        labels_per_class: Labeled training digits per class; the other
            training digits are unlabeled.
        seed: Random seed of the initialization, the augmenters and the
            batches.
        epochs: Passes over the unlabeled digits.
        validation_data: Optional `(x, y)` evaluated after each epoch (it
            adds `val_loss`, `val_supervised_loss` and `val_accuracy` to the
            history).
        verbose: Verbosity of `fit()`.

    Returns:
        The trained `FixMatch`; `model.model` is the classifier and
        `model.history.history` the `fit()` history.

    Example:

    ```python
    from keras_custom.demo.fixmatch import train_fixmatch_on_split

    model = train_fixmatch_on_split(labels_per_class=2, epochs=1)
    sorted(model.history.history)
    # ['accuracy', 'loss', 'mask_rate', 'supervised_loss', 'unsupervised_loss']
    ```
    """
    keras.utils.set_random_seed(seed)
    x_labeled, y_labeled, x_unlabeled = recipes.label_split(labels_per_class)
    model = FixMatch(
        recipes.build_classifier(),
        recipes.weak_augmenter(seed),
        recipes.strong_augmenter(seed + 10),
        threshold=recipes.FIXMATCH_THRESHOLD,
        unlabeled_weight=recipes.FIXMATCH_UNLABELED_WEIGHT,
        optimizer=keras.optimizers.Adam(recipes.FIXMATCH_LEARNING_RATE),
        name="fixmatch",
    )
    model.compile(metrics=["accuracy"])
    data = SemiSupervisedDataset(
        x_labeled,
        y_labeled,
        x_unlabeled,
        batch_size=recipes.FIXMATCH_BATCH_SIZE,
        unlabeled_ratio=recipes.FIXMATCH_UNLABELED_RATIO,
        seed=seed,
    )
    model.fit(data, epochs=epochs, validation_data=validation_data, verbose=verbose)
    return model


def train_supervised_on_split(
    labels_per_class: int = recipes.LABELS_PER_CLASS,
    seed: int = 0,
    verbose: int = 0,
) -> keras.Model:
    """Trains the supervised baseline as `recipes.train_supervised_baseline`.

    `recipes.build_classifier()` behind `recipes.weak_augmenter(seed)`,
    trained on the labeled digits of `recipes.label_split(labels_per_class)`
    alone, in full batches, for `recipes.BASELINE_STEPS` steps of Adam; with
    the default 5 labels per class, the recipe's model.

    Args:
        labels_per_class: Labeled training digits per class.
        seed: Random seed of the initialization and the augmentation.
        verbose: Verbosity of `fit()`.

    Returns:
        The trained classifier (logits), without the augmentation.
    """
    keras.utils.set_random_seed(seed)
    x_labeled, y_labeled, _ = recipes.label_split(labels_per_class)
    classifier = recipes.build_classifier()
    trainer = keras.Sequential(
        [keras.Input(recipes.IMAGE_SHAPE), recipes.weak_augmenter(seed), classifier],
        name="augmented_classifier",
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(recipes.BASELINE_LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    repeats = recipes.BASELINE_STEPS // recipes.BASELINE_EPOCHS
    trainer.fit(
        np.tile(x_labeled, (repeats, 1, 1, 1)),
        np.tile(y_labeled, repeats),
        batch_size=len(x_labeled),
        epochs=recipes.BASELINE_EPOCHS,
        shuffle=False,
        verbose=verbose,
    )
    return classifier


def _save_figure(
    plt,
    history: dict[str, list[float]],
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    accuracies: tuple[float, float],
    path: Path,
    seed: int,
) -> None:
    """Draws the learning curves and predicted test digits, and saves them."""
    fixmatch_accuracy, baseline_accuracy = accuracies
    fig = plt.figure(figsize=(15, 7), layout="constrained")
    fig.suptitle(
        f"keras-custom demo: FixMatch on the 8x8 digits with "
        f"{recipes.LABELS_PER_CLASS} labels per class (test accuracy "
        f"{fixmatch_accuracy:.4f}; supervised on the same labels "
        f"{baseline_accuracy:.4f})",
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
    accuracy_ax.plot(epochs, history["val_accuracy"], label="FixMatch (val_accuracy)")
    accuracy_ax.axhline(
        baseline_accuracy, color="gray", ls=":", label="supervised, same labels"
    )
    accuracy_ax.set(title="Test accuracy per epoch", xlabel="epoch", ylim=(0, 1.02))
    for ax in (loss_ax, mask_ax, accuracy_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend()
    accuracy_ax.legend(loc="lower right")

    chosen = np.random.default_rng(seed).choice(len(images), SHOWN_DIGITS, False)
    samples.suptitle(
        "Random test digits: FixMatch's prediction (red: wrong, with the true label)"
    )
    for ax, index in zip(samples.subplots(1, SHOWN_DIGITS).flat, chosen, strict=True):
        ax.imshow(images[index, ..., 0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        predicted, true = int(predictions[index]), int(labels[index])
        if predicted == true:
            ax.set_title(f"pred {predicted}", color="black")
        else:
            ax.set_title(f"pred {predicted}\n(true {true})", color="red")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(
    output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR,
    epochs: int | None = None,
    seed: int = 0,
    verbose: int = 1,
) -> dict[str, Any]:
    """Trains a `FixMatch` on 5 labels per class and the unlabeled digits.

    The recipe is `semi_supervised_recipes.train_fixmatch` (through
    `train_fixmatch_on_split`, which also evaluates on the test digits after
    each epoch): 50 labeled training digits, the other 1,387 unlabeled, a
    small convolutional classifier, a one-pixel shift as the weak view and
    `recipes.strong_augmenter` as the strong one, pseudo-labels above a
    confidence of 0.95. Its test accuracy is printed next to that of the
    same classifier trained on the 50 labels alone
    (`recipes.train_supervised_baseline`). It writes `fixmatch.keras` (the
    trained `FixMatch`, whose `predict` gives the classifier's logits) and
    `fixmatch.png` (the supervised and unsupervised losses, the mask rate
    and the test accuracy per epoch, and a row of test digits with their
    predictions) to `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Number of passes over the unlabeled digits; `None` means
            `FIXMATCH_DEMO_EPOCHS`.
        seed: Seed of the recipe (initialization, augmentation, batches) and
            of the baseline.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"fixmatch_accuracy"` and `"baseline_accuracy"` (test
        accuracies), `"history"` (the `fit()` history dict), `"model_path"`
        and `"figure_path"` (`pathlib.Path`s).
    """
    plt = import_pyplot()
    if epochs is None:
        epochs = FIXMATCH_DEMO_EPOCHS
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _, (x_test, y_test) = recipes.load_digits()

    baseline = train_supervised_on_split(seed=seed)
    baseline_accuracy = recipes.accuracy(baseline, x_test, y_test)
    model = train_fixmatch_on_split(
        seed=seed,
        epochs=epochs,
        validation_data=(x_test, y_test),
        verbose=verbose,
    )
    history = model.history.history
    fixmatch_accuracy = recipes.accuracy(model, x_test, y_test)
    labels = recipes.LABELS_PER_CLASS * recipes.NUM_CLASSES
    print(f"fixmatch test accuracy: {fixmatch_accuracy:.4f}")
    print(
        f"fixmatch baseline test accuracy: {baseline_accuracy:.4f} "
        f"(supervised, the same {labels} labels alone)"
    )
    print(f"fixmatch final mask rate: {history['mask_rate'][-1]:.4f}")

    model_path = output_dir / "fixmatch.keras"
    model.save(model_path)
    figure_path = output_dir / "fixmatch.png"
    predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
    _save_figure(
        plt,
        history,
        x_test,
        y_test,
        predictions,
        (fixmatch_accuracy, baseline_accuracy),
        figure_path,
        seed,
    )
    return {
        "fixmatch_accuracy": fixmatch_accuracy,
        "baseline_accuracy": baseline_accuracy,
        "history": history,
        "model_path": model_path,
        "figure_path": figure_path,
    }
