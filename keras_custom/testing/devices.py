"""Logical CPU devices, so distribution can be tested on one CPU.

On TensorFlow, logical devices for `MirroredStrategy`; on JAX, host
devices for `keras.distribution.DataParallel`.
"""

import os

import keras
import tensorflow as tf

_JAX_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def _split_jax_cpu(num_devices: int) -> int:
    import jax

    flags = os.environ.get("XLA_FLAGS", "")
    if _JAX_DEVICE_COUNT_FLAG not in flags:
        # Read when JAX first uses its CPU backend; later, no effect.
        os.environ["XLA_FLAGS"] = (
            f"{flags} {_JAX_DEVICE_COUNT_FLAG}={num_devices}".strip()
        )
    return len(jax.devices("cpu"))


def split_cpu(num_devices: int = 2) -> int:
    """Splits the first physical CPU into `num_devices` logical devices.

    Call it once, before TensorFlow runs any operation (in a `conftest.py`,
    for example), so that `tf.distribute.MirroredStrategy` can be tested with
    several replicas on a machine without accelerators. Later calls, after
    TensorFlow has started, leave the devices as they are. On the JAX
    backend it sets `XLA_FLAGS=--xla_force_host_platform_device_count`
    instead, before JAX first runs, for `keras.distribution.DataParallel`.

    Args:
        num_devices: Number of logical CPU devices wanted.

    Returns:
        The number of logical CPU devices there are now.

    Example:

    ```python
    # conftest.py
    from keras_custom.testing import split_cpu

    split_cpu(2)
    ```
    """
    if keras.backend.backend() == "jax":
        return _split_jax_cpu(num_devices)
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0],
            [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)],
        )
    except RuntimeError:
        pass  # TensorFlow is already running; its devices cannot change.
    return len(tf.config.list_logical_devices("CPU"))


def logical_cpus() -> list[str]:
    """Names of the logical CPU devices.

    Example:

    ```python
    from keras_custom.testing import logical_cpus, split_cpu

    split_cpu(2)  # no effect once TensorFlow has started
    devices = logical_cpus()  # ['/device:CPU:0', '/device:CPU:1'] after a split
    ```
    """
    if keras.backend.backend() == "jax":
        import jax

        return [str(device) for device in jax.devices("cpu")]
    return [device.name for device in tf.config.list_logical_devices("CPU")]
