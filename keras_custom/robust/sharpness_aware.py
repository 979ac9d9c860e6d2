"""`SharpnessAwareModel`: sharpness-aware minimization (SAM)."""

from typing import Any

import keras
from keras import ops

from keras_custom.core import default_steps
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.robust.model_wrapper import ModelWrapper


@keras.saving.register_keras_serializable(package="keras_custom")
class SharpnessAwareModel(ModelWrapper):
    """Wraps a model so that `fit()` trains it by sharpness-aware minimization.

    Each step takes the gradient `g` of the loss at the weights `w`, moves
    the weights to `w + rho * g / ||g||` (the worst case in a ball of radius
    `rho`, to first order), takes the gradient there, restores `w`, and
    applies that second gradient with the model's optimizer (any Keras
    optimizer, with its clipping and accumulation). `||g||` is the norm of
    the gradient of the global batch, over all trainable weights. The loss
    is `compute_loss`'s: the one given to `compile()` (or the constructor)
    unless a subclass overrides the hook. It and the compiled metrics are
    logged at `w`; `evaluate()` is Keras's. Batch-normalization statistics
    are updated by both forward passes.

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

    def __init__(
        self,
        model: keras.Model,
        rho: float = 0.05,
        optimizer: OptimizerLike = None,
        loss: Any = None,
        **kwargs,
    ):
        super().__init__(model, optimizer=optimizer, loss=loss, **kwargs)
        if float(rho) <= 0:
            raise ValueError(f"`rho` must be > 0. Got: {rho!r}.")
        self.rho = float(rho)
        self.add_tracker("loss")

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        default_steps.check_loss_inputs(self, y, "train_step")

        def forward():
            y_pred = self(x, training=True)
            loss = default_steps.computed_loss(
                self, x, y, y_pred, sample_weight, training=True
            )
            return loss, y_pred

        # Ascend: the gradient at `w` gives the worst-case perturbation.
        variables = self.optimizer_variables("optimizer")
        (loss, y_pred), gradients = self.gradients(forward, variables)
        perturbations = self._perturbations(gradients)
        self._shift(variables, perturbations, 1.0)
        # Descend: the gradient at `w + e`, applied to `w` once restored.
        self.minimize(
            forward,
            variables,
            before_apply=lambda: self._shift(variables, perturbations, -1.0),
        )
        return default_steps.step_logs(self, loss, x, y, y_pred, sample_weight)

    def _perturbations(self, gradients) -> list:
        """`rho * g / ||g||` per gradient `g` (`None` kept); 0 if `||g||` is not
        finite."""
        present = [g for g in gradients if g is not None]
        norm = ops.sqrt(
            ops.sum(
                ops.stack(
                    [ops.sum(ops.square(ops.cast(g, "float32"))) for g in present]
                )
            )
        )
        scale = ops.where(ops.isfinite(norm), self.rho / (norm + 1e-12), 0.0)
        return [None if g is None else ops.cast(scale, g.dtype) * g for g in gradients]

    @staticmethod
    def _shift(variables, perturbations, sign: float) -> None:
        for variable, perturbation in zip(variables, perturbations, strict=True):
            if perturbation is not None:
                variable.assign_add(sign * perturbation)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho}
