"""`ProbedAutoencoder`: a training paradigm of your own on `CustomModel`.

The code of the guide "Write your own paradigm" (docs/write_your_own.md),
which includes it section by section.
"""

# --8<-- [start:init]
import keras
from keras import ops

from keras_custom import CustomModel
from keras_custom.core import serialize_scalar, validate_scalar


@keras.saving.register_keras_serializable(package="my_project")
class ProbedAutoencoder(CustomModel):
    """A sparse autoencoder, and a linear probe that reads its codes.

    The encoder and the decoder learn to reconstruct `x`, with an L1 penalty
    on the codes weighted by `sparsity_weight` (a float or a schedule). The
    probe learns to predict the labels `y` from the codes without changing
    the encoder. `model(x)` and `predict(x)` return the probe's logits.
    """

    def __init__(
        self,
        encoder,
        decoder,
        probe,
        sparsity_weight=1e-3,
        autoencoder_optimizer=None,
        probe_optimizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.probe = probe
        self.sparsity_weight = validate_scalar(sparsity_weight, "sparsity_weight")
        # One optimizer per part: a name, an initial value (or None), the
        # layers it updates, and the default used when none is given.
        self.add_optimizer(
            "autoencoder_optimizer", autoencoder_optimizer, [encoder, decoder], "adam"
        )
        self.add_optimizer("probe_optimizer", probe_optimizer, probe, "adam")
        # One tracker per logged value; `val_` twins come with them.
        self.add_tracker("autoencoder_loss")
        self.add_tracker("probe_loss")
        self.add_tracker("probe_accuracy")
        self.reconstruction_loss = keras.losses.MeanSquaredError()
        self.probe_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        # Built parts leave nothing to build (BackupAndRestore asks).
        self.built = encoder.built and decoder.built and probe.built

    # --8<-- [end:init]

    # --8<-- [start:steps]
    def call(self, x, training=False):
        codes = self.encoder(x, training=training)
        return self.probe(codes, training=training)

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                f"Model '{self.name}' needs labels for its probe: `fit(x, y)`."
            )
        return x, y

    def _autoencoder_loss(self, x, training):
        codes = self.encoder(x, training=training)
        reconstruction = self.decoder(codes, training=training)
        # A Keras `Loss` and a raw `ops.mean` are both means over the batch;
        # the raw one is cast because under `mixed_float16` the codes are
        # float16 and a Keras `Loss` computes in float32.
        sparsity = ops.mean(ops.abs(ops.cast(codes, "float32")))
        weight = self.scalar(self.sparsity_weight, "autoencoder_optimizer")
        return self.reconstruction_loss(x, reconstruction) + weight * sparsity

    def _probe_terms(self, codes, y, training):
        logits = self.probe(codes, training=training)
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        hits = ops.cast(ops.equal(predicted, ops.cast(y, "int32")), "float32")
        # The loss to minimize under "loss", and what else to log.
        return {"loss": self.probe_loss(y, logits), "accuracy": ops.mean(hits)}

    def train_step(self, data):
        x, y = self._unpack(data)
        autoencoder_loss = self.minimize(
            lambda: self._autoencoder_loss(x, training=True),
            optimizer="autoencoder_optimizer",
        )
        codes = ops.stop_gradient(self.encoder(x, training=False))
        probe = self.minimize(
            lambda: self._probe_terms(codes, y, training=True),
            optimizer="probe_optimizer",
        )
        return {
            "autoencoder_loss": autoencoder_loss,
            "probe_loss": probe["loss"],
            "probe_accuracy": probe["accuracy"],
        }

    def test_step(self, data):
        x, y = self._unpack(data)
        codes = self.encoder(x, training=False)
        probe = self._probe_terms(codes, y, training=False)
        return {
            "autoencoder_loss": self._autoencoder_loss(x, training=False),
            "probe_loss": probe["loss"],
            "probe_accuracy": probe["accuracy"],
        }

    # --8<-- [end:steps]

    # --8<-- [start:config]
    def get_config(self):
        # `CustomModel.get_config` already holds every named optimizer.
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "probe": keras.saving.serialize_keras_object(self.probe),
                "sparsity_weight": serialize_scalar(self.sparsity_weight),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "probe"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)


# --8<-- [end:config]
