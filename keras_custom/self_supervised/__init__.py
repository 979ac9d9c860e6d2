"""Self-supervised models: SimCLR, SimSiam, BYOL, Barlow Twins and VICReg."""

from keras_custom.self_supervised.augmenter import small_image_augmenter
from keras_custom.self_supervised.barlow_twins import BarlowTwins
from keras_custom.self_supervised.byol import BYOL
from keras_custom.self_supervised.self_supervised_model import SelfSupervisedModel
from keras_custom.self_supervised.simclr import SimCLR
from keras_custom.self_supervised.simsiam import SimSiam
from keras_custom.self_supervised.vicreg import VICReg

__all__ = [
    "BYOL",
    "BarlowTwins",
    "SelfSupervisedModel",
    "SimCLR",
    "SimSiam",
    "VICReg",
    "small_image_augmenter",
]
