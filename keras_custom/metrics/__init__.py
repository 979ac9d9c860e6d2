"""Metrics of keras_custom."""

from keras_custom.metrics.frechet_distance import FrechetDistance

__all__ = ["FrechetDistance"]
