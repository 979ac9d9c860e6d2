"""Two logical CPUs, for the harness's `MirroredStrategy` check."""

# --8<-- [start:conftest]
from keras_custom.testing import split_cpu

split_cpu(2)  # before TensorFlow runs anything
# --8<-- [end:conftest]
