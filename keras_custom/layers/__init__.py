"""Layers of keras_custom: heads and target networks of self-supervised models."""

from keras_custom.layers.prediction_head import PredictionHead
from keras_custom.layers.projection_head import ProjectionHead
from keras_custom.layers.target_network import TargetNetwork

__all__ = ["PredictionHead", "ProjectionHead", "TargetNetwork"]
