"""`MeanTeacher`: a student and its moving-average teacher agree on noisy inputs."""

import keras
from keras import ops

from keras_custom.core import validate_scalar
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.layers import TargetNetwork
from keras_custom.semi_supervised.semi_supervised_model import (
    SemiSupervisedModel,
    check_layers,
)


@keras.saving.register_keras_serializable(package="keras_custom")
class MeanTeacher(SemiSupervisedModel):
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
    predicting_network = "teacher"
    _serialized_arguments = ("student", "augmenter")
    _scalar_arguments = ("ema_decay", "consistency_weight")

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
        super().__init__(from_logits, optimizer, **kwargs)
        check_layers(student=student)
        self.student = student
        self.teacher = TargetNetwork(student, name="teacher")
        self.augmenter = (
            keras.layers.GaussianNoise(0.1) if augmenter is None else augmenter
        )
        self.ema_decay = validate_scalar(ema_decay, "ema_decay")
        self.consistency_weight = validate_scalar(
            consistency_weight, "consistency_weight"
        )
        self.consistency_loss_fn = keras.losses.MeanSquaredError()
        self.add_optimizer("optimizer", None, student, default="adam")
        for name in ("loss", "supervised_loss", "consistency_loss"):
            self.add_tracker(name)
        self.built = student.built

    def train_step(self, data):
        """The default step on `compute_loss`, then the teacher's update."""
        logs = super().train_step(data)
        self.teacher.update(lambda: self.scalar(self.ema_decay))
        return logs

    def _noisy(self, x_labeled, x_unlabeled):
        """Both parts with noise, each drawn for its global batch."""
        return ops.concatenate(
            [self._augment(self.augmenter, x) for x in (x_labeled, x_unlabeled)],
            axis=0,
        )

    def _consistency(self, x_labeled, x_unlabeled, training):
        """The consistency loss, and the student's outputs on both parts."""
        teacher_outputs = self.teacher(
            self._noisy(x_labeled, x_unlabeled), training=training
        )
        student_outputs = self.student(
            self._noisy(x_labeled, x_unlabeled), training=training
        )
        consistency_loss = self.consistency_loss_fn(
            self._probabilities(teacher_outputs), self._probabilities(student_outputs)
        )
        return consistency_loss, student_outputs

    def _loss_terms(self, x_labeled, x_unlabeled, y, sample_weight, training):
        consistency_loss = None
        if training:  # the student's outputs on noisy labeled examples
            consistency_loss, student_outputs = self._consistency(
                x_labeled, x_unlabeled, training
            )
            outputs = student_outputs[: ops.shape(x_labeled)[0]]
        else:  # the teacher's on the labeled examples as they are
            outputs = self.teacher(x_labeled, training=False)
            if x_unlabeled is not None:
                consistency_loss, _ = self._consistency(
                    x_labeled, x_unlabeled, training
                )
        supervised_loss = self.classification_loss(y, outputs, sample_weight)
        terms = {"loss": supervised_loss, "supervised_loss": supervised_loss}
        if consistency_loss is not None:
            weight = self.scalar(self.consistency_weight)
            terms["loss"] = supervised_loss + weight * consistency_loss
            terms["consistency_loss"] = consistency_loss
        return terms, outputs
