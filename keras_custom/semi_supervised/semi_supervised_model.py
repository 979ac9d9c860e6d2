"""What the semi-supervised models share: batches, predictions, configuration."""

import keras
from keras import ops

from keras_custom.core import CustomModel, replica_random, serialize_scalar
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.semi_supervised.batches import split_batch


def check_layers(**parts) -> None:
    """Raises a `ValueError` naming the first part that is not a Keras layer."""
    for name, part in parts.items():
        if not isinstance(part, keras.layers.Layer):
            raise ValueError(f"`{name}` must be a Keras model or layer. Got: {part!r}.")


class SemiSupervisedModel(CustomModel):
    """Base of `FixMatch` and `MeanTeacher`: a classifier trained on labeled
    and unlabeled examples by one loss.

    A batch is `((x_labeled, x_unlabeled), y_labeled)` in training and may be
    plain `(x, y)` in `evaluate()` (then `x_unlabeled` is `None`). A
    subclass writes `_loss_terms`, which returns the named terms with the
    total under `"loss"` and the outputs on the labeled examples that the
    compiled metrics compare with the labels; the core minimizes the total
    with `self.optimizer` and logs every term (`compute_loss`).

    Args:
        from_logits: Whether the classifier returns logits.
        optimizer: Optimizer of the classifier.
        **kwargs: Forwarded to `CustomModel`.
    """

    #: `compute_loss` runs its own forward passes.
    predicts_before_loss = False
    #: The attribute name of the classifier trained, whose inputs the
    #: batches must fit and `export()` serves.
    serving_network: str
    #: The attribute name of the network that `model(x)`, `predict()` and
    #: `evaluate()` use.
    predicting_network: str
    #: Constructor arguments that are Keras objects, (de)serialized by config.
    _serialized_arguments: tuple = ()
    #: Constructor arguments that are floats or schedules.
    _scalar_arguments: tuple = ()

    def __init__(self, from_logits: bool, optimizer: OptimizerLike, **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        self.from_logits = bool(from_logits)
        self.classification_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=self.from_logits
        )

    def call(self, x, training=False):
        if isinstance(x, (tuple, list)) and len(x) == 2:
            x = x[0]  # the labeled part of a `(x_labeled, x_unlabeled)` batch
        return getattr(self, self.predicting_network)(x, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The named loss terms of a batch; updates the compiled metrics.

        Training needs the unlabeled part of the batch; `evaluate()` also
        takes plain `(x, y)` data.
        """
        x_labeled, x_unlabeled, y, sample_weight = split_batch(
            (x, y, sample_weight),
            self,
            needs_unlabeled=training,
            network=getattr(self, self.serving_network),
        )
        terms, outputs = self._loss_terms(
            x_labeled, x_unlabeled, y, sample_weight, training
        )
        # The outputs on the labeled examples exist only in here.
        self.compute_metrics(x_labeled, y, outputs, sample_weight)
        return terms

    def _loss_terms(self, x_labeled, x_unlabeled, y, sample_weight, training):
        """Returns `(terms, labeled_outputs)`; `terms["loss"]` is the total."""
        raise NotImplementedError

    def _augment(self, augmenter, x):
        """`augmenter` applied to `x` with the noise drawn for its global batch."""
        return replica_random.apply_to_global_batch(
            lambda batch: augmenter(batch, training=True), x
        )

    def _probabilities(self, outputs):
        outputs = ops.cast(outputs, "float32")
        return ops.softmax(outputs, axis=-1) if self.from_logits else outputs

    def get_config(self) -> dict:
        config = super().get_config()
        for key in self._serialized_arguments:
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        for key in self._scalar_arguments:
            config[key] = serialize_scalar(getattr(self, key))
        config["from_logits"] = self.from_logits
        return config
