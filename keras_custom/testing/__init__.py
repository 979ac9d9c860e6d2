"""The public conformance harness of keras_custom (its checks need `pytest`)."""

from keras_custom.testing.conformance import (
    ConformanceTests,
    assert_weights_close,
    mirrored_strategy,
    optimizer_states,
)
from keras_custom.testing.devices import logical_cpus, split_cpu
from keras_custom.testing.local_cluster import launch_local_workers

__all__ = [
    "ConformanceTests",
    "assert_weights_close",
    "launch_local_workers",
    "logical_cpus",
    "mirrored_strategy",
    "optimizer_states",
    "split_cpu",
]
