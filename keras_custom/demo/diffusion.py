"""The diffusion demo: `keras_custom.DiffusionModel`s generating 8x8 digits."""

import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_custom.demo import _common
from keras_custom.recipes import diffusion, generative, generative_scores

#: Digits sampled and judged, for each model.
SAMPLES = 1000


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
) -> dict[str, Any]:
    """Trains two `DiffusionModel`s on the 8x8 digits and judges their samples.

    The recipes are `keras_custom.recipes.diffusion.train_diffusion` and
    `train_conditional_diffusion`: a residual MLP denoiser of the noisy
    digit and the time step (and, conditional, the digit's class), trained
    by a plain `fit(x_train)` (`fit(x_train, y_train)`) to predict the
    noise, with a moving average of its weights that samples. 1,000 digits
    of each, from 50 DDIM steps, are judged as the GAN demo's are: the
    unconditional model's mean maximum class probability, class entropy and
    Fréchet distance, and the conditional model's agreement with the
    requested digit under classifier-free guidance (`w = 1`). It prints the
    time the sampling took, and writes `diffusion.keras`,
    `conditional_diffusion.keras` and `diffusion.png` (a row of guided
    samples per digit, 100 unconditional samples sorted by the judge's
    class, and both training losses) to `output_dir`.

    Args:
        output_dir: Folder to write the models and the figure to; created if
            missing.
        epochs: Number of training epochs of both models; `None` means
            `diffusion.DIFFUSION_EPOCHS` and
            `diffusion.CONDITIONAL_DIFFUSION_EPOCHS`.
        seed: Seed of the recipes, of the judge and of the sampled noise.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"judge_accuracy"`, `"scores"` (the unconditional model's
        `generative_scores.judge_scores`), `"conditional_scores"` (the
        conditional model's, with `"label_agreement"`),
        `"sampling_seconds"`, `"history"` and `"conditional_history"` (the
        `fit()` histories), `"model_path"`, `"conditional_model_path"` and
        `"figure_path"` (`pathlib.Path`s).
    """
    plt = _common.import_pyplot()
    output_dir.mkdir(parents=True, exist_ok=True)
    (x_train, _), _ = generative.load_digits()

    model = diffusion.train_diffusion(seed=seed, epochs=epochs, verbose=verbose)
    conditional = diffusion.train_conditional_diffusion(
        seed=seed, epochs=epochs, verbose=verbose
    )
    history = model.history.history
    conditional_history = conditional.history.history
    print(
        f"diffusion final losses: loss {history['loss'][-1]:.4f}, "
        f"conditional loss {conditional_history['loss'][-1]:.4f}"
    )
    classifier, features = _common.trained_judge(seed)
    judge_accuracy = generative_scores.judge_accuracy(classifier)
    print(f"judge accuracy on the test digits: {judge_accuracy:.4f}")

    diffusion.generate_digits(model, 10, seed=seed)  # compiles the sampler
    start = time.perf_counter()
    samples = diffusion.generate_digits(model, SAMPLES, seed=seed)
    sampling_seconds = time.perf_counter() - start
    print(
        f"diffusion sampling of {SAMPLES} digits with "
        f"{diffusion.SAMPLING_STEPS} DDIM steps: {sampling_seconds:.2f} s"
    )
    scores = generative_scores.judge_scores(
        classifier, features, samples, real=x_train, noise_seed=seed
    )
    _common.print_judge_scores("diffusion", scores)

    labels = np.arange(SAMPLES) % 10
    guided = diffusion.generate_digits(conditional, SAMPLES, seed=seed, labels=labels)
    conditional_scores = generative_scores.judge_scores(
        classifier, features, guided, real=x_train, labels=labels, noise_seed=seed
    )
    print(
        "conditional diffusion label agreement: "
        f"{conditional_scores['label_agreement']:.4f}"
    )
    model_path = _common.save_model(model, output_dir, "diffusion")
    conditional_path = _common.save_model(
        conditional, output_dir, "conditional_diffusion"
    )

    figure_path = output_dir / "diffusion.png"
    fig, (rows, grid, curves) = plt.subplots(
        1, 3, figsize=(16, 6), width_ratios=[1, 1, 1.1], layout="constrained"
    )
    fig.suptitle(
        "keras-custom demo: DiffusionModel on the 8x8 digits (judge: mean max "
        f"class probability {scores['mean_max_probability']:.3f}, Fréchet "
        f"distance {scores['frechet_distance']:.2f}; guided samples of the "
        f"requested digit: {conditional_scores['label_agreement']:.3f})",
        fontsize=11,
    )
    # Samples i, i + 10, ... are of digit i % 10: row r shows digit r.
    by_digit = guided[:100].reshape(10, 10, -1).transpose(1, 0, 2).reshape(100, -1)
    _common.show_digits(rows, by_digit, 10, 10, "Guided samples, one digit a row")
    judged = {"classifier": classifier, "samples": samples}
    _common.show_judged_samples(
        grid, judged, "100 unconditional samples, sorted by the judge's class"
    )
    curves.plot(np.arange(1, len(history["loss"]) + 1), history["loss"], label="loss")
    curves.plot(
        np.arange(1, len(conditional_history["loss"]) + 1),
        conditional_history["loss"],
        label="conditional loss",
    )
    curves.set_xlabel("epoch")
    curves.set_title("Training losses per epoch")
    curves.grid(alpha=0.3)
    curves.legend()
    _common.save_figure(plt, fig, figure_path)
    return {
        "judge_accuracy": judge_accuracy,
        "scores": scores,
        "conditional_scores": conditional_scores,
        "sampling_seconds": sampling_seconds,
        "history": history,
        "conditional_history": conditional_history,
        "model_path": model_path,
        "conditional_model_path": conditional_path,
        "figure_path": figure_path,
    }
