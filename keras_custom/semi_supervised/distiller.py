"""`Distiller`: knowledge distillation from a frozen teacher to a student."""

import copy

import keras
from keras import ops

from keras_custom.core import CustomModel, as_loss
from keras_custom.core.input_checks import require_labels
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.semi_supervised.semi_supervised_model import (
    check_layers,
)


def _as_loss_object(loss):
    """A `keras.losses.Loss` for a leaf of a Keras `DistillationLoss`.

    Keras resolves the name "kl_divergence" to a plain function, which its
    `LogitsDistillation` then applies to logits, without the softmax and the
    temperature squared it gives a `KLDivergence` instance; and a `Loss`
    object computes in its own dtype (float32 under `mixed_float16`), as the
    student loss does.
    """
    if loss is keras.losses.kl_divergence:
        return keras.losses.KLDivergence()
    return as_loss(loss, default=None)


def _distillation_losses(identifier, temperature: float) -> list:
    if identifier is None:
        return [
            keras.distillation.LogitsDistillation(
                temperature=temperature, loss=keras.losses.KLDivergence()
            )
        ]
    items = identifier if isinstance(identifier, (list, tuple)) else [identifier]
    losses = []
    for item in items:
        if isinstance(item, dict):
            item = keras.saving.deserialize_keras_object(item)
        if not isinstance(item, keras.distillation.DistillationLoss):
            raise ValueError(
                "`distillation_loss` must be a `keras.distillation."
                "DistillationLoss` (`LogitsDistillation`, `FeatureDistillation`) "
                f"or a list of them. Got: {item!r}."
            )
        item = copy.copy(item)
        item.loss = keras.tree.map_structure(_as_loss_object, item.loss)
        losses.append(item)
    return losses


@keras.saving.register_keras_serializable(package="keras_custom")
class Distiller(CustomModel):
    """Trains a student on labels and on a frozen teacher's softened outputs.

    The loss is `alpha * student_loss + (1 - alpha) * distillation_loss`:
    the student's supervised loss on the labels, and by default the
    Kullback-Leibler divergence between the teacher's and the student's
    softmax at `temperature`, multiplied by `temperature ** 2` (Keras's own
    `keras.distillation.LogitsDistillation`). Any Keras `DistillationLoss`
    may be given instead, or a list of them (summed):
    `FeatureDistillation` with layer names compares intermediate features
    of functional models. The teacher is frozen and runs in inference mode.

    Logs `loss`, `student_loss` and `distillation_loss`, and compiled
    metrics on the student's outputs; `evaluate()` evaluates the student
    (with the same keys). `model(x)` and `predict(x)` are the student's.

    Args:
        teacher: A trained, built Keras model (frozen by the distiller).
        student: A built Keras model with the teacher's outputs' structure.
        temperature: Softmax temperature of the default distillation loss.
        alpha: Weight of the student's supervised loss, in `[0, 1]`.
        student_loss: Supervised loss; defaults to
            `SparseCategoricalCrossentropy(from_logits=True)`.
        distillation_loss: A `keras.distillation.DistillationLoss` or a list
            of them; defaults to `LogitsDistillation(temperature)` with
            `keras.losses.KLDivergence()`.
        optimizer: Optimizer of the student (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import Distiller

    def classifier(units):
        return keras.Sequential([keras.Input((4,)),
                                 keras.layers.Dense(units, activation="relu"),
                                 keras.layers.Dense(3)])

    distiller = Distiller(teacher=classifier(32), student=classifier(4),
                          temperature=3.0, alpha=0.1)
    distiller.compile(metrics=["accuracy"])
    rng = np.random.default_rng(0)
    history = distiller.fit(rng.normal(size=(32, 4)), rng.integers(0, 3, 32),
                            verbose=0)
    sorted(history.history)
    # ['accuracy', 'distillation_loss', 'loss', 'student_loss']
    ```

    Reference:
        Hinton et al., "Distilling the Knowledge in a Neural Network", 2015
        (https://arxiv.org/abs/1503.02531).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "student"

    def __init__(
        self,
        teacher: keras.Model,
        student: keras.Model,
        temperature: float = 3.0,
        alpha: float = 0.1,
        student_loss=None,
        distillation_loss=None,
        optimizer: OptimizerLike = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, **kwargs)
        check_layers(teacher=teacher, student=student)
        if float(temperature) <= 0:
            raise ValueError(f"`temperature` must be > 0. Got: {temperature!r}.")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]. Got: {alpha!r}.")
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.student_loss = as_loss(
            student_loss, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        # Plain attributes: the losses hold no weights, and the feature
        # extractors share the teacher's and student's (saved once, there).
        self._set_untracked(
            "_distillation_losses",
            _distillation_losses(distillation_loss, self.temperature),
        )
        self._set_untracked("_distillation_loss_config", distillation_loss)
        self._set_untracked("_features", {})
        for loss in self._distillation_losses:
            loss.validate_model_compatibility(teacher, student)
            for model, layer_name in (
                (teacher, getattr(loss, "teacher_layer_name", None)),
                (student, getattr(loss, "student_layer_name", None)),
            ):
                if layer_name is not None:
                    # Keyed by a string: `export()` saves this dict, and a
                    # SavedModel takes no other keys.
                    self._features[f"{model.name}/{layer_name}"] = keras.Model(
                        model.inputs, model.get_layer(layer_name).output
                    )
        self.add_optimizer("optimizer", None, student, default="adam")
        for name in ("loss", "student_loss", "distillation_loss"):
            self.add_tracker(name)
        self.built = teacher.built and student.built

    def call(self, x, training=False):
        return self.student(x, training=training)

    def _outputs(self, model, layer_name, x, final, training):
        if layer_name is None:
            return final
        return self._features[f"{model.name}/{layer_name}"](x, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The weighted sum of the student and distillation losses, by name.

        `y_pred` is the student's output on `x`; the frozen teacher runs in
        inference mode.
        """
        require_labels(y, self, "its student loss needs targets `y`")
        if y_pred is None:
            y_pred = self(x, training=training)
        teacher_outputs = ops.stop_gradient(self.teacher(x, training=False))
        student_loss = self.student_loss(y, y_pred, sample_weight)
        distillation = []
        for loss in self._distillation_losses:
            teacher_features = self._outputs(
                self.teacher,
                getattr(loss, "teacher_layer_name", None),
                x,
                teacher_outputs,
                False,
            )
            student_features = self._outputs(
                self.student,
                getattr(loss, "student_layer_name", None),
                x,
                y_pred,
                training,
            )
            distillation.append(
                loss.compute_loss(ops.stop_gradient(teacher_features), student_features)
            )
        distillation_loss = ops.sum(ops.stack(distillation))
        return {
            "loss": self.alpha * student_loss + (1.0 - self.alpha) * distillation_loss,
            "student_loss": student_loss,
            "distillation_loss": distillation_loss,
        }

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": keras.saving.serialize_keras_object(self.student),
                "temperature": self.temperature,
                "alpha": self.alpha,
                "student_loss": keras.saving.serialize_keras_object(self.student_loss),
                "distillation_loss": keras.saving.serialize_keras_object(
                    self._distillation_loss_config
                ),
            }
        )
        return config
