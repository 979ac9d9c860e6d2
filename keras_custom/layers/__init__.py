"""Layers of keras_custom: heads and target networks of self-supervised models,
and the time-step embedding of diffusion networks."""

from keras_custom.layers.global_batch_normalization import GlobalBatchNormalization
from keras_custom.layers.prediction_head import PredictionHead
from keras_custom.layers.projection_head import ProjectionHead
from keras_custom.layers.target_network import TargetNetwork
from keras_custom.layers.timestep_embedding import TimestepEmbedding

__all__ = [
    "GlobalBatchNormalization",
    "PredictionHead",
    "ProjectionHead",
    "TargetNetwork",
    "TimestepEmbedding",
]
