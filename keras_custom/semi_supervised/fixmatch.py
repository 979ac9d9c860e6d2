"""`FixMatch`: semi-supervised learning by confident pseudo-labels."""

import keras
from keras import ops

from keras_custom.core import (
    CustomModel,
    replica_random,
    serialize_scalar,
    unscale_for_replicas,
    validate_scalar,
)
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.semi_supervised.batches import split_batch


@keras.saving.register_keras_serializable(package="keras_custom")
class FixMatch(CustomModel):
    """Trains a classifier on a few labels and many unlabeled examples.

    Each batch is `((x_labeled, x_unlabeled), y_labeled)` (see
    `SemiSupervisedDataset`). The labeled examples are weakly augmented and
    trained on with cross-entropy. Each unlabeled example is augmented
    weakly and strongly; where the model's confidence on the weak view
    reaches `threshold`, its prediction becomes a hard pseudo-label for the
    strong view. The loss is `supervised_loss + unlabeled_weight *
    unsupervised_loss`, the latter averaged over all unlabeled examples
    (masked ones count as 0). As in the paper, the three parts go through
    the model in one batch, so batch normalization sees them together.

    Logs `loss`, `supervised_loss`, `unsupervised_loss`, `mask_rate` (the
    fraction of unlabeled examples above the threshold) and compiled metrics
    on the labeled examples. `evaluate()` on plain `(x, y)` data logs
    `loss`, `supervised_loss` and the metrics, with the model in inference
    mode on un-augmented inputs. `model(x)` is the classifier's output.

    Args:
        model: The classifier, a built Keras model returning logits (or
            probabilities with `from_logits=False`).
        weak_augmenter: Layer making the weak view (e.g. a small random
            translation), applied with `training=True`.
        strong_augmenter: Layer making the strong view (e.g.
            `keras_custom.self_supervised.small_image_augmenter()`).
        threshold: Confidence threshold, a float or a schedule.
        unlabeled_weight: Weight of the unsupervised loss, a float or a
            schedule.
        from_logits: Whether the model returns logits.
        optimizer: Optimizer of the classifier (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import FixMatch
    from keras_custom.semi_supervised import SemiSupervisedDataset

    classifier = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = FixMatch(classifier, keras.layers.GaussianNoise(0.05),
                     keras.layers.GaussianNoise(0.3), threshold=0.9)
    model.compile(metrics=["accuracy"])
    rng = np.random.default_rng(0)
    data = SemiSupervisedDataset(rng.normal(size=(12, 4)), np.arange(12) % 3,
                                 rng.normal(size=(200, 4)), batch_size=6,
                                 unlabeled_ratio=4, seed=0)
    history = model.fit(data, epochs=1, verbose=0)
    sorted(history.history)
    # ['accuracy', 'loss', 'mask_rate', 'supervised_loss', 'unsupervised_loss']
    ```

    Reference:
        Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with
        Consistency and Confidence", NeurIPS 2020
        (https://arxiv.org/abs/2001.07685).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "model"

    def __init__(
        self,
        model: keras.Model,
        weak_augmenter: keras.layers.Layer,
        strong_augmenter: keras.layers.Layer,
        threshold: Scalar = 0.95,
        unlabeled_weight: Scalar = 1.0,
        from_logits: bool = True,
        optimizer: OptimizerLike = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, **kwargs)
        for name, part in (
            ("model", model),
            ("weak_augmenter", weak_augmenter),
            ("strong_augmenter", strong_augmenter),
        ):
            if not isinstance(part, keras.layers.Layer):
                raise ValueError(
                    f"`{name}` must be a Keras layer or model. Got: {part!r}."
                )
        self.model = model
        self.weak_augmenter = weak_augmenter
        self.strong_augmenter = strong_augmenter
        self.threshold = validate_scalar(threshold, "threshold")
        self.unlabeled_weight = validate_scalar(unlabeled_weight, "unlabeled_weight")
        self.from_logits = bool(from_logits)
        self.classification_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=self.from_logits
        )
        self.add_optimizer("optimizer", None, None, default="adam")
        for name in ("loss", "supervised_loss", "unsupervised_loss", "mask_rate"):
            self.add_tracker(name)
        self.built = model.built

    def call(self, x, training=False):
        if isinstance(x, (tuple, list)) and len(x) == 2:
            x = x[0]  # the labeled part of a `(x_labeled, x_unlabeled)` batch
        return self.model(x, training=training)

    def _augment(self, augmenter, x):
        return replica_random.apply_to_global_batch(
            lambda batch: augmenter(batch, training=True), x
        )

    def _probabilities(self, outputs):
        outputs = ops.cast(outputs, "float32")
        return ops.softmax(outputs, axis=-1) if self.from_logits else outputs

    def _loss_terms(self, x_labeled, x_unlabeled, y, sample_weight, training):
        weak_labeled = self._augment(self.weak_augmenter, x_labeled)
        weak_unlabeled = self._augment(self.weak_augmenter, x_unlabeled)
        strong_unlabeled = self._augment(self.strong_augmenter, x_unlabeled)
        count, unlabeled_count = ops.shape(x_labeled)[0], ops.shape(x_unlabeled)[0]
        outputs = self.model(
            ops.concatenate([weak_labeled, weak_unlabeled, strong_unlabeled], axis=0),
            training=training,
        )
        labeled_outputs = outputs[:count]
        weak_outputs = outputs[count : count + unlabeled_count]
        strong_outputs = outputs[count + unlabeled_count :]
        supervised_loss = self.classification_loss(y, labeled_outputs, sample_weight)
        probabilities = self._probabilities(ops.stop_gradient(weak_outputs))
        threshold = self.scalar(self.threshold)
        mask = ops.cast(ops.max(probabilities, axis=-1) >= threshold, "float32")
        pseudo_labels = ops.argmax(probabilities, axis=-1)
        unsupervised_loss = self.classification_loss(
            pseudo_labels, strong_outputs, sample_weight=mask
        )
        weight = self.scalar(self.unlabeled_weight)
        loss = supervised_loss + weight * unsupervised_loss
        logs = {
            "supervised_loss": unscale_for_replicas(supervised_loss),
            "unsupervised_loss": unscale_for_replicas(unsupervised_loss),
            "mask_rate": ops.mean(mask),
        }
        return loss, labeled_outputs, logs

    def train_step(self, data):
        x_labeled, x_unlabeled, y, sample_weight = split_batch(
            data, self, True, self.model
        )
        loss, labeled_outputs, logs = self.minimize(
            lambda: self._loss_terms(x_labeled, x_unlabeled, y, sample_weight, True)
        )
        metrics = self.compute_metrics(x_labeled, y, labeled_outputs, sample_weight)
        return {"loss": loss, **logs, **metrics}

    def test_step(self, data):
        x_labeled, x_unlabeled, y, sample_weight = split_batch(
            data, self, False, self.model
        )
        if x_unlabeled is None:
            outputs = self.model(x_labeled, training=False)
            loss = unscale_for_replicas(
                self.classification_loss(y, outputs, sample_weight)
            )
            logs = {"supervised_loss": loss}
        else:
            loss, outputs, logs = self._loss_terms(
                x_labeled, x_unlabeled, y, sample_weight, False
            )
            loss = unscale_for_replicas(loss)
        metrics = self.compute_metrics(x_labeled, y, outputs, sample_weight)
        return {"loss": loss, **logs, **metrics}

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("model", "weak_augmenter", "strong_augmenter"):
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        config.update(
            {
                "threshold": serialize_scalar(self.threshold),
                "unlabeled_weight": serialize_scalar(self.unlabeled_weight),
                "from_logits": self.from_logits,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        for key in ("model", "weak_augmenter", "strong_augmenter"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)
