"""Small real data sets bundled with keras_custom, loaded like `keras.datasets`."""

from keras_custom.datasets import digits

__all__ = ["digits"]
