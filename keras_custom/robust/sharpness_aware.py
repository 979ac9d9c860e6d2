"""`SharpnessAwareModel`: sharpness-aware minimization (SAM)."""

from typing import Any

import keras
from keras import ops

from keras_custom.core import CustomModel
from keras_custom.core.named_optimizers import OptimizerLike


@keras.saving.register_keras_serializable(package="keras_custom")
class SharpnessAwareModel(CustomModel):
    """Wraps a model so that `fit()` trains it by sharpness-aware minimization.

    Each step takes the gradient `g` of the loss at the weights `w`, moves
    the weights to `w + rho * g / ||g||` (the worst case in a ball of radius
    `rho`, to first order), takes the gradient there, restores `w`, and
    applies that second gradient with the model's optimizer (any Keras
    optimizer, with its clipping and accumulation). `||g||` is the norm of
    the gradient of the global batch, over all trainable weights. The loss
    and metrics are those given to `compile()` (or the constructor), and
    logged at `w`. Batch-normalization statistics are updated by both
    forward passes.

    Args:
        model: The model to train, a built Keras model.
        rho: Radius of the neighbourhood.
        optimizer: Optimizer applying the sharpness-aware gradient (default
            as in `CustomModel`).
        loss: Loss, as in `compile(loss=...)`.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.robust import SharpnessAwareModel

    classifier = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = SharpnessAwareModel(classifier, rho=0.05)
    model.compile(optimizer="sgd", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 4)), rng.integers(0, 3, 32), verbose=0)
    ```

    Reference:
        Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
        Generalization", ICLR 2021 (https://arxiv.org/abs/2010.01412).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "model"

    def __init__(
        self,
        model: keras.Model,
        rho: float = 0.05,
        optimizer: OptimizerLike = None,
        loss: Any = None,
        **kwargs,
    ):
        super().__init__(optimizer=optimizer, loss=loss, **kwargs)
        if not isinstance(model, keras.layers.Layer):
            raise ValueError(f"`model` must be a Keras model. Got: {model!r}.")
        if float(rho) <= 0:
            raise ValueError(f"`rho` must be > 0. Got: {rho!r}.")
        self.model = model
        self.rho = float(rho)
        self.add_tracker("loss")
        self.built = model.built

    def call(self, x, training=False):
        return self.model(x, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._check_loss_inputs(y, "train_step")

        def forward():
            y_pred = self.model(x, training=True)
            loss = self._computed_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            return loss, y_pred

        variables = self.optimizer_variables("optimizer")
        (loss, y_pred), gradients = self.gradients(forward, variables)
        present = [g for g in gradients if g is not None]
        norm = ops.sqrt(
            ops.sum(
                ops.stack(
                    [ops.sum(ops.square(ops.cast(g, "float32"))) for g in present]
                )
            )
        )
        scale = ops.where(ops.isfinite(norm), self.rho / (norm + 1e-12), 0.0)
        perturbations = [
            None if g is None else ops.cast(scale, g.dtype) * g for g in gradients
        ]
        for variable, perturbation in zip(variables, perturbations, strict=True):
            if perturbation is not None:
                variable.assign_add(perturbation)

        def restore():
            for variable, perturbation in zip(variables, perturbations, strict=True):
                if perturbation is not None:
                    variable.assign_sub(perturbation)

        self.minimize(forward, variables, before_apply=restore)
        return self._supervised_logs(loss, y, y_pred, sample_weight, x)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "rho": self.rho,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(**config)
