"""The VAE demo: a `keras_custom.VAE` reconstructing and generating 8x8 digits."""

from pathlib import Path
from typing import Any

import numpy as np

from keras_custom.demo import _common
from keras_custom.recipes import generative, generative_scores


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
) -> dict[str, Any]:
    """Trains a `VAE` on the 8x8 digits, then reconstructs and generates digits.

    The recipe is `keras_custom.recipes.generative.train_vae`: an MLP
    encoder to an 8-dimensional Gaussian posterior and an MLP decoder to
    sigmoid pixels, trained by a plain `fit(x_train)` on the negative
    evidence lower bound. It prints the mean squared error of the
    reconstructions of the test digits next to that of predicting the mean
    training image, and the judge's scores (see the GAN demo) of 1,000
    digits decoded from the standard normal prior. It writes `vae.keras`
    (the trained `VAE`) and `vae.png` (a 10x10 grid of generated digits,
    sorted by the judge's class, test digits with their reconstructions,
    and the training losses) to `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Number of training epochs; `None` means
            `generative.VAE_EPOCHS`.
        seed: Seed of the recipe, of the judge, of the latents drawn and of
            the choice of the test digits reconstructed.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"reconstruction_error"` and `"mean_image_error"` (floats,
        see `generative_scores.reconstruction_errors`), `"judge_accuracy"`,
        `"scores"` (the dict of `generative_scores.judge_scores` for the prior
        samples), `"history"` (the `fit()` history dict), `"model_path"` and
        `"figure_path"` (`pathlib.Path`s).
    """
    plt = _common.import_pyplot()
    output_dir.mkdir(parents=True, exist_ok=True)
    (x_train, _), (x_test, _) = generative.load_digits()

    model = generative.train_vae(seed=seed, epochs=epochs, verbose=verbose)
    history = model.history.history
    print(
        f"vae final losses: loss {history['loss'][-1]:.4f}, reconstruction_loss "
        f"{history['reconstruction_loss'][-1]:.4f}, kl_loss "
        f"{history['kl_loss'][-1]:.4f}"
    )
    error, mean_image_error = generative_scores.reconstruction_errors(
        model, x_train, x_test
    )
    print(
        f"vae test reconstruction error: {error:.4f} "
        f"(training mean image: {mean_image_error:.4f}, "
        f"ratio {error / mean_image_error:.4f})"
    )
    judged = _common.judge_generated("vae", model, x_train, seed)
    model_path = _common.save_model(model, output_dir, "vae")

    figure_path = output_dir / "vae.png"
    fig = plt.figure(figsize=(12, 6.5), layout="constrained")
    fig.suptitle(
        "keras-custom demo: VAE on the 8x8 digits (test reconstruction error "
        f"{error:.4f} vs mean image {mean_image_error:.4f}; prior samples: "
        f"mean max class probability {judged['scores']['mean_max_probability']:.3f})",
        fontsize=11,
    )
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.1])
    _common.show_judged_samples(
        left.subplots(),
        judged,
        "100 digits from the prior, sorted by the judge's class",
    )
    pairs, curves = right.subplots(2, 1, height_ratios=[1, 1.6])
    chosen = np.random.default_rng(seed).choice(len(x_test), 10, replace=False)
    reconstructions = model.predict(x_test[chosen], verbose=0)
    _common.show_digits(
        pairs,
        np.concatenate([x_test[chosen], reconstructions]),
        2,
        10,
        "Test digits (top) and their reconstructions (bottom)",
    )
    _common.plot_history(curves, history, ["loss", "reconstruction_loss", "kl_loss"])
    _common.save_figure(plt, fig, figure_path)
    return {
        "reconstruction_error": error,
        "mean_image_error": mean_image_error,
        "judge_accuracy": judged["judge_accuracy"],
        "scores": judged["scores"],
        "history": history,
        "model_path": model_path,
        "figure_path": figure_path,
    }
