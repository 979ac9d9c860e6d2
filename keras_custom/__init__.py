"""keras_custom: keras.Model subclasses that drive custom training through fit()."""

import warnings
from importlib import metadata

import keras

if keras.backend.backend() not in ("tensorflow", "jax"):
    raise ImportError(
        "keras_custom runs on the TensorFlow or the JAX backend of Keras, but "
        f"Keras is running on {keras.backend.backend()!r}. Set the "
        "environment variable KERAS_BACKEND=tensorflow (or jax, after "
        '`pip install "keras-custom[jax]"`) before Keras is imported (for '
        "example `export KERAS_BACKEND=tensorflow`, or "
        '`os.environ["KERAS_BACKEND"] = "tensorflow"` at the top of a '
        'notebook), or set "backend" in ~/.keras/keras.json.'
    )

from keras_custom.core import keras_internals  # noqa: E402

if keras_internals.unsupported_versions():
    # pip keeps a fresh install inside the supported range (pyproject.toml
    # bounds Keras and TensorFlow below their next, untested, minor
    # version); an environment changed afterwards is told so.
    warnings.warn(
        "keras_custom has not been tested with "
        f"{' and '.join(keras_internals.unsupported_versions())}: "
        f"{keras_internals.supported_range()}.",
        stacklevel=2,
    )

from keras_custom import (  # noqa: E402
    callbacks,
    datasets,
    layers,
    losses,
    metrics,
    optimizers,
    reinforcement,
    schedules,
)
from keras_custom.core import CustomModel
from keras_custom.core.backend import SUPPORTED_BACKENDS
from keras_custom.generative import GAN, VAE, WGANGP, ConditionalGAN, DiffusionModel
from keras_custom.reinforcement import DQN, PPO, ActorCritic
from keras_custom.robust import AdversarialModel, SharpnessAwareModel
from keras_custom.self_supervised import BYOL, BarlowTwins, SimCLR, SimSiam, VICReg
from keras_custom.semi_supervised import Distiller, FixMatch, MeanTeacher

try:
    __version__ = metadata.version("keras-custom")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "ActorCritic",
    "AdversarialModel",
    "BYOL",
    "DQN",
    "Distiller",
    "FixMatch",
    "MeanTeacher",
    "PPO",
    "SharpnessAwareModel",
    "GAN",
    "VAE",
    "WGANGP",
    "BarlowTwins",
    "ConditionalGAN",
    "CustomModel",
    "DiffusionModel",
    "SimCLR",
    "SimSiam",
    "VICReg",
    "callbacks",
    "datasets",
    "layers",
    "losses",
    "metrics",
    "optimizers",
    "reinforcement",
    "schedules",
    "SUPPORTED_BACKENDS",
    "__version__",
]
