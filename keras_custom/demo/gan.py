"""The GAN demo: a `keras_custom.GAN` generating 8x8 digits."""

from pathlib import Path
from typing import Any

from keras_custom.demo import _common
from keras_custom.recipes import generative


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
) -> dict[str, Any]:
    """Trains a `GAN` on the 8x8 digits and judges the digits it generates.

    The recipe is `keras_custom.recipes.generative.train_gan`: two small
    MLPs, a batch-normalized generator from 32 latents and a leaky-ReLU
    discriminator, trained by a plain `fit(x_train)` on the images alone.
    The judge (`keras_custom.recipes.generative_scores.train_judge`, a
    classifier of the real digits) then scores 1,000 generated digits: their
    mean maximum class probability (are they recognizable digits?), the
    normalized entropy of their predicted classes (are all ten digits
    there?) and their Fréchet distance to the training digits in the
    judge's feature space, next to that of uniform noise. It writes
    `gan.keras` (the trained `GAN`) and `gan.png` (a 10x10 grid of generated
    digits, sorted by the judge's class, and the training losses) to
    `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Number of training epochs; `None` means
            `generative.GAN_EPOCHS`.
        seed: Seed of the recipe, of the judge and of the latents drawn.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"judge_accuracy"` (the judge's test accuracy), `"scores"`
        (the dict of `generative_scores.judge_scores`), `"history"` (the
        `fit()` history dict), `"model_path"` and `"figure_path"`
        (`pathlib.Path`s).
    """
    plt = _common.import_pyplot()
    output_dir.mkdir(parents=True, exist_ok=True)
    (x_train, _), _ = generative.load_digits()

    model = generative.train_gan(seed=seed, epochs=epochs, verbose=verbose)
    history = model.history.history
    print(
        f"gan final losses: d_loss {history['d_loss'][-1]:.4f}, "
        f"g_loss {history['g_loss'][-1]:.4f}"
    )
    judged = _common.judge_generated("gan", model, x_train, seed)
    scores = judged["scores"]
    model_path = _common.save_model(model, output_dir, "gan")

    figure_path = output_dir / "gan.png"
    fig, (grid, curves) = plt.subplots(
        1, 2, figsize=(12, 6), width_ratios=[1, 1.1], layout="constrained"
    )
    fig.suptitle(
        "keras-custom demo: GAN on the 8x8 digits (judge: mean max class "
        f"probability {scores['mean_max_probability']:.3f}, class entropy "
        f"{scores['class_entropy']:.3f}, Fréchet distance "
        f"{scores['frechet_distance']:.2f} vs noise "
        f"{scores['noise_frechet_distance']:.2f})",
        fontsize=11,
    )
    _common.show_judged_samples(
        grid, judged, "100 generated digits, sorted by the judge's class"
    )
    _common.plot_history(curves, history, ["d_loss", "g_loss"])
    _common.save_figure(plt, fig, figure_path)
    return {
        "judge_accuracy": judged["judge_accuracy"],
        "scores": scores,
        "history": history,
        "model_path": model_path,
        "figure_path": figure_path,
    }
