"""The core of keras_custom: `CustomModel` and the mechanisms it owns."""

from keras_custom.core import replica_random
from keras_custom.core.custom_model import CustomModel
from keras_custom.core.loss_objects import as_loss
from keras_custom.core.schedules import scalar_value, serialize_scalar, validate_scalar
from keras_custom.core.tensorflow_backend import (
    input_gradients,
    scale_for_replicas,
    unscale_for_replicas,
)

__all__ = [
    "CustomModel",
    "as_loss",
    "input_gradients",
    "replica_random",
    "scalar_value",
    "scale_for_replicas",
    "serialize_scalar",
    "unscale_for_replicas",
    "validate_scalar",
]
