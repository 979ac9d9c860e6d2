"""The conformance harness on `ProbedAutoencoder`, the guide's example.

Run from the repository root: `python -m pytest -n 2 docs/examples`.
"""

# --8<-- [start:test]
import keras
from probed_autoencoder import ProbedAutoencoder

from keras_custom.datasets import digits
from keras_custom.testing import ConformanceTests


def make_model(sparsity_weight=1e-3):
    encoder = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, activation="relu")]
    )
    decoder = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64)])
    probe = keras.Sequential([keras.Input((16,)), keras.layers.Dense(10)])
    return ProbedAutoencoder(encoder, decoder, probe, sparsity_weight)


class TestProbedAutoencoder(ConformanceTests):
    log_keys = {"autoencoder_loss", "probe_loss", "probe_accuracy"}

    def build_model(self):  # fresh, built, uncompiled
        return make_model()

    def data(self):  # NumPy (x, y): 6 batches of 16
        (x, y), _ = digits.load_data()
        return (x[:96].reshape(-1, 64) / 16.0).astype("float32"), y[:96]


class TestProbedAutoencoderWithSchedule(TestProbedAutoencoder):
    def build_model(self):  # the same checks with a warm-up of the weight
        warm_up = keras.optimizers.schedules.PolynomialDecay(0.0, 10, 1e-3)
        return make_model(sparsity_weight=warm_up)


# --8<-- [end:test]
