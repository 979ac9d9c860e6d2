"""Test session setup: quiet TensorFlow, two logical CPUs for MirroredStrategy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_custom.testing import split_cpu  # noqa: E402

split_cpu(2)
