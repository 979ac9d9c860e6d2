"""The backend Keras runs on, and the core's functions for it.

The only module of keras_custom that asks which backend runs: the rest of
the core calls the functions named here, which come from
`tensorflow_backend` and `tensorflow_functions` on TensorFlow and from
`jax_backend` and `jax_functions` on JAX. Each pair has the same names
and contracts.
"""

import keras

#: The Keras backends keras_custom runs on.
SUPPORTED_BACKENDS = ("tensorflow", "jax")

NAME = keras.backend.backend()

if NAME == "jax":
    from keras_custom.core.jax_backend import (
        all_gather,
        all_reduce_sum,
        apply_gradients,
        assign_moving_average,
        first_replica_part,
        has_distribution_strategy,
        input_gradients,
        local_rows,
        num_replicas_in_sync,
        op_determinism,
        outside_step,
        replica_index,
        replica_share,
        strategy_scope,
        value_and_gradients,
    )
    from keras_custom.core.jax_functions import (
        inference_function,
        one_step_function,
        step_function,
        unbuffered_dataset,
    )
else:
    from keras_custom.core.tensorflow_backend import (
        all_gather,
        all_reduce_sum,
        apply_gradients,
        assign_moving_average,
        first_replica_part,
        has_distribution_strategy,
        input_gradients,
        local_rows,
        num_replicas_in_sync,
        op_determinism,
        outside_step,
        replica_index,
        replica_share,
        strategy_scope,
        value_and_gradients,
    )
    from keras_custom.core.tensorflow_functions import (
        inference_function,
        one_step_function,
        step_function,
        unbuffered_dataset,
    )

__all__ = [
    "NAME",
    "SUPPORTED_BACKENDS",
    "all_gather",
    "all_reduce_sum",
    "apply_gradients",
    "assign_moving_average",
    "first_replica_part",
    "has_distribution_strategy",
    "inference_function",
    "input_gradients",
    "local_rows",
    "num_replicas_in_sync",
    "one_step_function",
    "op_determinism",
    "outside_step",
    "replica_index",
    "replica_share",
    "step_function",
    "strategy_scope",
    "unbuffered_dataset",
    "value_and_gradients",
]
