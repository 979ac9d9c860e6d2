"""Layers of keras_custom: heads and target networks of self-supervised models."""

from keras_custom.layers.global_batch_normalization import GlobalBatchNormalization
from keras_custom.layers.prediction_head import PredictionHead
from keras_custom.layers.projection_head import ProjectionHead
from keras_custom.layers.target_network import TargetNetwork

__all__ = [
    "GlobalBatchNormalization",
    "PredictionHead",
    "ProjectionHead",
    "TargetNetwork",
]
