"""keras_custom: keras.Model subclasses that drive custom training through fit()."""

from keras_custom import datasets, metrics
from keras_custom.core import CustomModel
from keras_custom.generative import GAN, VAE, WGANGP, ConditionalGAN

__version__ = "0.1.0"

__all__ = [
    "GAN",
    "VAE",
    "WGANGP",
    "ConditionalGAN",
    "CustomModel",
    "datasets",
    "metrics",
    "__version__",
]
