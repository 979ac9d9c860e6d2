"""Schedules of keras_custom, each a Keras `LearningRateSchedule`."""

from keras_custom.schedules.cosine_increase import CosineIncrease

__all__ = ["CosineIncrease"]
