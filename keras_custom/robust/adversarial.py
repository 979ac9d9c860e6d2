"""`AdversarialModel`: adversarial training with FGSM or PGD examples."""

from typing import Any

import keras
from keras import ops

from keras_custom.core import input_gradients, replica_random
from keras_custom.core.input_checks import (
    check_single_input,
    network_input,
    require_labels,
)
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.robust.model_wrapper import ModelWrapper

ATTACKS = ("fgsm", "pgd")


def _accuracy(y, y_pred):
    """Classification accuracy for integer or one-hot labels and logits."""
    predictions = ops.argmax(y_pred, axis=-1)
    if len(y.shape) == len(y_pred.shape) and y.shape[-1] not in (1, None):
        labels = ops.argmax(y, axis=-1)
    else:
        labels = ops.reshape(y, ops.shape(predictions))
    return ops.mean(
        ops.cast(
            ops.equal(ops.cast(labels, "int32"), ops.cast(predictions, "int32")),
            "float32",
        )
    )


@keras.saving.register_keras_serializable(package="keras_custom")
class AdversarialModel(ModelWrapper):
    """Wraps a classifier so that `fit()` trains it on adversarial examples too.

    Each step perturbs the batch inside an L-infinity ball of radius
    `epsilon` to increase the loss: FGSM takes one step of `epsilon` along
    the sign of the input gradient; PGD starts at a random point of the ball
    and takes `steps` steps of `step_size`, projecting back onto the ball
    each time. Inputs stay within `input_range`. The attack uses the model
    in inference mode; the gradients come from
    `keras_custom.core.input_gradients`. The model is then trained on
    `(1 - adversarial_weight) * clean_loss + adversarial_weight *
    adversarial_loss` with the loss given to `compile()` (or the
    constructor); that sum is its `compute_loss`.

    Logs `loss`, `clean_loss`, `adversarial_loss`, `clean_accuracy` and
    `adversarial_accuracy` (classification accuracy of logits or
    probabilities against integer or one-hot labels), and compiled metrics
    on the clean predictions; `evaluate()` attacks
    the evaluation data the same way, so `adversarial_accuracy` there is the
    robust accuracy. `model(x)` and `predict(x)` are the wrapped model's.

    Args:
        model: The classifier to train, a built Keras model.
        epsilon: Radius of the L-infinity ball.
        attack: `"fgsm"` or `"pgd"`.
        steps: Number of PGD steps.
        step_size: PGD step size; defaults to `2.5 * epsilon / steps`.
        adversarial_weight: Weight of the adversarial loss in `[0, 1]`.
        input_range: `(low, high)` bounds of valid inputs, or `None`.
        seed: Seed of PGD's random start.
        optimizer: Optimizer of the model (default as in `CustomModel`).
        loss: Loss, as in `compile(loss=...)`.
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.robust import AdversarialModel

    classifier = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = AdversarialModel(classifier, epsilon=0.1, attack="pgd", steps=3)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(32, 4)), rng.integers(0, 3, 32)
    model.fit(x, y, verbose=0)
    robust = model.evaluate(x, y, verbose=0, return_dict=True)["adversarial_accuracy"]
    ```

    Reference:
        Goodfellow et al., "Explaining and Harnessing Adversarial Examples",
        ICLR 2015 (https://arxiv.org/abs/1412.6572); Madry et al., "Towards
        Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018
        (https://arxiv.org/abs/1706.06083).
    """

    #: `compute_loss` attacks the batch before any forward pass.
    predicts_before_loss = False

    def __init__(
        self,
        model: keras.Model,
        epsilon: float = 0.1,
        attack: str = "fgsm",
        steps: int = 10,
        step_size: float | None = None,
        adversarial_weight: float = 0.5,
        input_range: tuple[float, float] | None = (0.0, 1.0),
        seed: int | None = None,
        optimizer: OptimizerLike = None,
        loss: Any = None,
        **kwargs,
    ):
        super().__init__(model, optimizer=optimizer, loss=loss, **kwargs)
        if attack not in ATTACKS:
            raise ValueError(f"`attack` must be one of {ATTACKS}. Got: {attack!r}.")
        if float(epsilon) <= 0:
            raise ValueError(f"`epsilon` must be > 0. Got: {epsilon!r}.")
        if int(steps) < 1:
            raise ValueError(f"`steps` must be a positive integer. Got: {steps!r}.")
        if not 0.0 <= float(adversarial_weight) <= 1.0:
            raise ValueError(
                f"`adversarial_weight` must be in [0, 1]. Got: {adversarial_weight!r}."
            )
        if input_range is not None:
            low, high = (float(v) for v in input_range)
            if not low < high:
                raise ValueError(
                    f"`input_range` must be (low, high) with low < high. "
                    f"Got: {input_range!r}."
                )
            input_range = (low, high)
        self.epsilon = float(epsilon)
        self.attack = attack
        self.steps = int(steps)
        self.step_size = None if step_size is None else float(step_size)
        self.adversarial_weight = float(adversarial_weight)
        self.input_range = input_range
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        for name in (
            "loss",
            "clean_loss",
            "adversarial_loss",
            "clean_accuracy",
            "adversarial_accuracy",
        ):
            self.add_tracker(name)

    # ------------------------------------------------------------------

    def _compiled_loss(self, x, y, y_pred, sample_weight, training):
        """Keras's loss of the model: the compiled loss and regularization."""
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    def _clip(self, x_adv, x):
        x_adv = ops.clip(x_adv, x - self.epsilon, x + self.epsilon)
        if self.input_range is not None:
            x_adv = ops.clip(x_adv, *self.input_range)
        return x_adv

    def adversarial_examples(self, x, y):
        """The attack's adversarial version of the batch `x` with labels `y`."""
        x = ops.convert_to_tensor(x)

        def loss_of(inputs):
            outputs = self.model(inputs, training=False)
            return self._compiled_loss(inputs, y, outputs, None, training=False)

        def ascend(x_adv, step):
            _, gradient = input_gradients(loss_of, x_adv)
            return self._clip(x_adv + step * ops.sign(gradient), x)

        if self.attack == "fgsm":
            return ops.stop_gradient(ascend(x, self.epsilon))
        start = replica_random.uniform(
            ops.shape(x)[0], tuple(x.shape[1:]), self.seed_generator, dtype=x.dtype
        )
        x_adv = self._clip(x + self.epsilon * (2.0 * start - 1.0), x)
        step = self.step_size or 2.5 * self.epsilon / self.steps
        for _ in range(self.steps):
            x_adv = ascend(x_adv, step)
        return ops.stop_gradient(x_adv)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """The weighted clean and adversarial losses and accuracies, by name.

        Attacks the batch first, then runs the model on both versions;
        updates the compiled metrics with the clean predictions.
        """
        require_labels(y, self)
        check_single_input(x, self, network_input(self.model))
        x_adv = self.adversarial_examples(x, y)
        clean_pred = self.model(x, training=training)
        adversarial_pred = self.model(x_adv, training=training)
        clean_loss = self._compiled_loss(x, y, clean_pred, sample_weight, training)
        adversarial_loss = self._compiled_loss(
            x_adv, y, adversarial_pred, sample_weight, training
        )
        self.compute_metrics(x, y, clean_pred)
        weight = self.adversarial_weight
        return {
            "loss": (1.0 - weight) * clean_loss + weight * adversarial_loss,
            "clean_loss": clean_loss,
            "adversarial_loss": adversarial_loss,
            "clean_accuracy": _accuracy(y, clean_pred),
            "adversarial_accuracy": _accuracy(y, adversarial_pred),
        }

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "attack": self.attack,
            "steps": self.steps,
            "step_size": self.step_size,
            "adversarial_weight": self.adversarial_weight,
            "input_range": self.input_range,
            "seed": self.seed,
        }
