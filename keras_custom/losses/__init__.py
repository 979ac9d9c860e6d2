"""Losses of keras_custom, each a `keras.losses.Loss`."""

from keras_custom.losses.barlow_twins_loss import BarlowTwinsLoss
from keras_custom.losses.negative_cosine_similarity import NegativeCosineSimilarity
from keras_custom.losses.nt_xent import NTXent
from keras_custom.losses.vicreg_loss import VICRegLoss

__all__ = ["BarlowTwinsLoss", "NTXent", "NegativeCosineSimilarity", "VICRegLoss"]
