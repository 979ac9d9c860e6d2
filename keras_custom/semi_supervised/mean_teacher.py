"""`MeanTeacher`: a student and its moving-average teacher agree on noisy inputs."""

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
from keras_custom.layers import TargetNetwork
from keras_custom.semi_supervised.batches import split_batch


@keras.saving.register_keras_serializable(package="keras_custom")
class MeanTeacher(CustomModel):
    """Semi-supervised training against a moving average of the model itself.

    The teacher is a `keras_custom.layers.TargetNetwork` copy of the
    student that receives no gradients and, after each optimizer step, moves
    to `ema_decay * teacher + (1 - ema_decay) * student`. Each batch is
    `((x_labeled, x_unlabeled), y_labeled)` (see `SemiSupervisedDataset`);
    student and teacher see all its inputs with independent noise from
    `augmenter`. The loss is the student's cross-entropy on the labeled
    examples plus `consistency_weight` (a float or a ramp-up schedule) times
    the mean squared difference between the student's and the teacher's
    class probabilities on every example.

    The teacher is the model that is evaluated and predicts: `model(x)`,
    `predict` and `evaluate` use it. Logs `loss`, `supervised_loss`,
    `consistency_loss` and compiled metrics (the student's on the labeled
    examples in training, the teacher's in `evaluate()`, which on plain
    `(x, y)` data logs `loss`, `supervised_loss` and the metrics).

    Args:
        student: The classifier to train, a built Keras model returning
            logits (or probabilities with `from_logits=False`).
        ema_decay: The teacher's moving-average decay, a float or schedule.
        consistency_weight: Weight of the consistency loss, a float or a
            schedule (the paper ramps it up).
        augmenter: Layer adding the noise (applied with `training=True`);
            defaults to `keras.layers.GaussianNoise(0.1)`.
        from_logits: Whether the student returns logits.
        optimizer: Optimizer of the student (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import MeanTeacher

    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = MeanTeacher(student, ema_decay=0.99, consistency_weight=2.0)
    model.compile()
    rng = np.random.default_rng(0)
    x_labeled, x_unlabeled = rng.normal(size=(2, 32, 4))
    model.fit((x_labeled, x_unlabeled), np.arange(32) % 3, verbose=0)
    ```

    Reference:
        Tarvainen and Valpola, "Mean teachers are better role models",
        NeurIPS 2017 (https://arxiv.org/abs/1703.01780).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "student"

    def __init__(
        self,
        student: keras.Model,
        ema_decay: Scalar = 0.99,
        consistency_weight: Scalar = 1.0,
        augmenter: keras.layers.Layer | None = None,
        from_logits: bool = True,
        optimizer: OptimizerLike = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, **kwargs)
        if not isinstance(student, keras.layers.Layer):
            raise ValueError(f"`student` must be a Keras model. Got: {student!r}.")
        self.student = student
        self.teacher = TargetNetwork(student, name="teacher")
        self.augmenter = (
            keras.layers.GaussianNoise(0.1) if augmenter is None else augmenter
        )
        self.ema_decay = validate_scalar(ema_decay, "ema_decay")
        self.consistency_weight = validate_scalar(
            consistency_weight, "consistency_weight"
        )
        self.from_logits = bool(from_logits)
        self.classification_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=self.from_logits
        )
        self.consistency_loss_fn = keras.losses.MeanSquaredError()
        self.add_optimizer("optimizer", None, student, default="adam")
        for name in ("loss", "supervised_loss", "consistency_loss"):
            self.add_tracker(name)
        self.built = student.built

    def call(self, x, training=False):
        if isinstance(x, (tuple, list)) and len(x) == 2:
            x = x[0]  # the labeled part of a `(x_labeled, x_unlabeled)` batch
        return self.teacher(x, training=training)

    def _noisy(self, x_labeled, x_unlabeled):
        """Both parts with noise, each drawn for its global batch."""
        return ops.concatenate(
            [
                replica_random.apply_to_global_batch(
                    lambda batch: self.augmenter(batch, training=True), part
                )
                for part in (x_labeled, x_unlabeled)
            ],
            axis=0,
        )

    def _probabilities(self, outputs):
        outputs = ops.cast(outputs, "float32")
        return ops.softmax(outputs, axis=-1) if self.from_logits else outputs

    def _loss_terms(self, x_labeled, x_unlabeled, y, sample_weight, training):
        teacher_outputs = self.teacher(
            self._noisy(x_labeled, x_unlabeled), training=training
        )
        student_outputs = self.student(
            self._noisy(x_labeled, x_unlabeled), training=training
        )
        labeled_outputs = student_outputs[: ops.shape(x_labeled)[0]]
        supervised_loss = self.classification_loss(y, labeled_outputs, sample_weight)
        consistency_loss = self.consistency_loss_fn(
            self._probabilities(teacher_outputs), self._probabilities(student_outputs)
        )
        weight = self.scalar(self.consistency_weight)
        loss = supervised_loss + weight * consistency_loss
        logs = {
            "supervised_loss": unscale_for_replicas(supervised_loss),
            "consistency_loss": unscale_for_replicas(consistency_loss),
        }
        return loss, labeled_outputs, logs

    def train_step(self, data):
        x_labeled, x_unlabeled, y, sample_weight = split_batch(
            data, self, True, self.student
        )
        loss, labeled_outputs, logs = self.minimize(
            lambda: self._loss_terms(x_labeled, x_unlabeled, y, sample_weight, True)
        )
        self.teacher.update(lambda: self.scalar(self.ema_decay))
        metrics = self.compute_metrics(x_labeled, y, labeled_outputs, sample_weight)
        return {"loss": loss, **logs, **metrics}

    def test_step(self, data):
        x_labeled, x_unlabeled, y, sample_weight = split_batch(
            data, self, False, self.student
        )
        outputs = self.teacher(x_labeled, training=False)
        supervised_loss = unscale_for_replicas(
            self.classification_loss(y, outputs, sample_weight)
        )
        loss, logs = supervised_loss, {"supervised_loss": supervised_loss}
        if x_unlabeled is not None:
            _, _, terms = self._loss_terms(
                x_labeled, x_unlabeled, y, sample_weight, False
            )
            logs["consistency_loss"] = terms["consistency_loss"]
            weight = self.scalar(self.consistency_weight)
            loss = loss + weight * terms["consistency_loss"]
        metrics = self.compute_metrics(x_labeled, y, outputs, sample_weight)
        return {"loss": loss, **logs, **metrics}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "student": keras.saving.serialize_keras_object(self.student),
                "augmenter": keras.saving.serialize_keras_object(self.augmenter),
                "ema_decay": serialize_scalar(self.ema_decay),
                "consistency_weight": serialize_scalar(self.consistency_weight),
                "from_logits": self.from_logits,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        for key in ("student", "augmenter"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)
