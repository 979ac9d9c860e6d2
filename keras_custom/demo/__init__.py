"""Demos of keras_custom, run by the `keras-custom demo` command.

Each demo trains a model on the bundled 8x8 digits (or, `actor_critic`, on
a `gymnasium` environment), prints its results, and writes a `.keras` model
and a `.png` figure to an output folder:

- `classifier`: a `CustomModel` MLP classifier (`classifier.keras`,
  `classifier.png`);
- `gan`: a `keras_custom.GAN` (`gan.keras`, `gan.png`, a grid of generated
  digits);
- `vae`: a `keras_custom.VAE` (`vae.keras`, `vae.png`, a grid of generated
  digits and reconstructions);
- `diffusion`: an unconditional and a class-conditional
  `keras_custom.DiffusionModel` (`diffusion.keras`,
  `conditional_diffusion.keras`, `diffusion.png`, a row of guided samples
  per digit, unconditional samples and the losses);
- `simsiam`: a `keras_custom.SimSiam` trained without labels, its encoder
  scored by k-nearest-neighbour and few-shot linear accuracy
  (`simsiam.keras`, `simsiam.png`, the test digits' features projected on
  two principal components and coloured by digit, and the loss per epoch);
- `fixmatch`: a `keras_custom.FixMatch` trained on 5 labels per class and
  the other training digits unlabeled, next to the same classifier trained
  on the 50 labels alone (`fixmatch.keras`, `fixmatch.png`, its losses,
  mask rate and test accuracy per epoch, and test digits with their
  predictions);
- `actor_critic`: a `keras_custom.ActorCritic` (A2C) balancing the pole of
  gymnasium's CartPole-v1, its greedy policy evaluated over 20 episodes
  (`actor_critic.keras`, `actor_critic.png`, the training episode return
  per epoch with the greedy and random policies' returns, and the losses).

A demo is one module of this package with a `run()` function, registered in
`DEMOS` and named in `keras_custom_cli.DEMO_NAMES` (which the command line
reads without importing TensorFlow); a new one becomes available as
`keras-custom demo --only NAME`. The networks and training recipes of the
demos live in `keras_custom.recipes`, one module per family of models
(`generative`, `self_supervised`, `semi_supervised`, `reinforcement`, ...),
shared with the quality tests, the benchmarks and the notebooks.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keras_custom.demo import (
    actor_critic,
    classifier,
    diffusion,
    fixmatch,
    gan,
    self_supervised,
    vae,
)
from keras_custom.demo._common import (
    DEFAULT_OUTPUT_DIR,
    DemoFunction,
    MissingDependencyError,
)
from keras_custom.demo.classifier import CLASSIFIER_EPOCHS

__all__ = [
    "CLASSIFIER_EPOCHS",
    "DEFAULT_OUTPUT_DIR",
    "DEMOS",
    "DemoFunction",
    "MissingDependencyError",
    "actor_critic",
    "classifier",
    "diffusion",
    "fixmatch",
    "gan",
    "run",
    "self_supervised",
    "vae",
]

# Name -> demo function. Every function takes the keyword arguments
# `output_dir`, `epochs` (`None` for its own default), `seed` and `verbose`,
# and returns a dict of results that includes the paths it wrote.
DEMOS: dict[str, DemoFunction] = {
    "classifier": classifier.run,
    "gan": gan.run,
    "vae": vae.run,
    "diffusion": diffusion.run,
    "simsiam": self_supervised.run,
    "fixmatch": fixmatch.run,
    "actor_critic": actor_critic.run,
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
        verbose: Verbosity of `fit()`: 1 for the Keras progress bar, 2 for
            one line per epoch (for output that is not a terminal), 0 for
            none.

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
