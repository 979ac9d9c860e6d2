"""Logical CPU devices, so `MirroredStrategy` can be tested on one CPU."""

import tensorflow as tf


def split_cpu(num_devices: int = 2) -> int:
    """Splits the first physical CPU into `num_devices` logical devices.

    Call it once, before TensorFlow runs any operation (in a `conftest.py`,
    for example), so that `tf.distribute.MirroredStrategy` can be tested with
    several replicas on a machine without accelerators. Later calls, after
    TensorFlow has started, leave the devices as they are.

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
    return [device.name for device in tf.config.list_logical_devices("CPU")]
