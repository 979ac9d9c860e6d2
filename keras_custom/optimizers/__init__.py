"""Optimizers of keras_custom, each a Keras `Optimizer`."""

from keras_custom.optimizers.multi_optimizer import MultiOptimizer

__all__ = ["MultiOptimizer"]
