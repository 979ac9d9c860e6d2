"""Teacher-student and semi-supervised models: Distiller, FixMatch, MeanTeacher."""

from keras_custom.semi_supervised.distiller import Distiller
from keras_custom.semi_supervised.fixmatch import FixMatch
from keras_custom.semi_supervised.mean_teacher import MeanTeacher
from keras_custom.semi_supervised.semi_supervised_dataset import SemiSupervisedDataset

__all__ = ["Distiller", "FixMatch", "MeanTeacher", "SemiSupervisedDataset"]
