"""The public conformance harness of keras_custom (needs `pytest`)."""

from keras_custom.testing.conformance import (
    ConformanceTests,
    assert_weights_close,
    mirrored_strategy,
    optimizer_states,
)
from keras_custom.testing.devices import logical_cpus, split_cpu

__all__ = [
    "ConformanceTests",
    "assert_weights_close",
    "logical_cpus",
    "mirrored_strategy",
    "optimizer_states",
    "split_cpu",
]
