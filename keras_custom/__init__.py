"""keras_custom: keras.Model subclasses that drive custom training through fit()."""

from keras_custom import datasets
from keras_custom.core import CustomModel

__version__ = "0.1.0"

__all__ = ["CustomModel", "datasets", "__version__"]
