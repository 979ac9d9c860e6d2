"""`FixMatch`: semi-supervised learning by confident pseudo-labels."""

import keras
from keras import ops

from keras_custom.core import validate_scalar
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.semi_supervised.semi_supervised_model import (
    SemiSupervisedModel,
    check_layers,
)


@keras.saving.register_keras_serializable(package="keras_custom")
class FixMatch(SemiSupervisedModel):
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
    predicting_network = "model"
    _serialized_arguments = ("model", "weak_augmenter", "strong_augmenter")
    _scalar_arguments = ("threshold", "unlabeled_weight")

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
        super().__init__(from_logits, optimizer, **kwargs)
        check_layers(
            model=model,
            weak_augmenter=weak_augmenter,
            strong_augmenter=strong_augmenter,
        )
        self.model = model
        self.weak_augmenter = weak_augmenter
        self.strong_augmenter = strong_augmenter
        self.threshold = validate_scalar(threshold, "threshold")
        self.unlabeled_weight = validate_scalar(unlabeled_weight, "unlabeled_weight")
        self.add_optimizer("optimizer", None, None, default="adam")
        for name in ("loss", "supervised_loss", "unsupervised_loss", "mask_rate"):
            self.add_tracker(name)
        self.built = model.built

    def _loss_terms(self, x_labeled, x_unlabeled, y, sample_weight, training):
        if x_unlabeled is None:  # plain `(x, y)` evaluation data
            outputs = self.model(x_labeled, training=training)
            loss = self.classification_loss(y, outputs, sample_weight)
            return {"loss": loss, "supervised_loss": loss}, outputs
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
        terms = {
            "loss": supervised_loss + weight * unsupervised_loss,
            "supervised_loss": supervised_loss,
            "unsupervised_loss": unsupervised_loss,
            "mask_rate": ops.mean(mask),
        }
        return terms, labeled_outputs
