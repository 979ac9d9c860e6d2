"""The core of keras_custom: `CustomModel` and the mechanisms it owns.

Besides `CustomModel`, the few helpers a paradigm's mathematics needs
across replicas or outside `fit()`'s steps, so that no module outside the
core uses TensorFlow or the replica count itself.
"""

from keras_custom.core import replica_random
from keras_custom.core.backend import (
    all_gather,
    assign_moving_average,
    first_replica_part,
    inference_function,
    input_gradients,
    op_determinism,
    unbuffered_dataset,
)
from keras_custom.core.custom_model import CustomModel
from keras_custom.core.loss_objects import as_loss
from keras_custom.core.schedules import scalar_value, serialize_scalar, validate_scalar

__all__ = [
    "CustomModel",
    "all_gather",
    "as_loss",
    "assign_moving_average",
    "first_replica_part",
    "inference_function",
    "input_gradients",
    "op_determinism",
    "replica_random",
    "scalar_value",
    "serialize_scalar",
    "unbuffered_dataset",
    "validate_scalar",
]
