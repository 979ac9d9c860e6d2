"""Robust training: sharpness-aware minimization and adversarial training."""

from keras_custom.robust.adversarial import AdversarialModel
from keras_custom.robust.sharpness_aware import SharpnessAwareModel

__all__ = ["AdversarialModel", "SharpnessAwareModel"]
