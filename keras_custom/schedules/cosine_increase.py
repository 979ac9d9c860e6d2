"""`CosineIncrease`: a cosine ramp up to a final value (e.g. BYOL's EMA decay)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_custom")
class CosineIncrease(keras.optimizers.schedules.LearningRateSchedule):
    """Rises from `initial_value` to `final_value` along a half cosine.

    `value(k) = final - (final - initial) * (1 + cos(pi * min(k, steps) / steps)) / 2`:
    BYOL's target decay, from 0.996 to 1 over training. It is
    `final_value` minus Keras's `CosineDecay` of the gap, so any argument
    that takes a Keras schedule takes it, and it is saved with the model.

    Args:
        initial_value: Value at step 0.
        final_value: Value from `steps` on.
        steps: Length of the ramp, in optimizer steps.
        name: Name of the schedule.

    Example:

    ```python
    from keras_custom.schedules import CosineIncrease

    decay = CosineIncrease(0.996, 1.0, steps=1000)
    float(decay(0)), float(decay(1000))  # (0.996, 1.0)
    ```

    Reference:
        Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
        (https://arxiv.org/abs/2006.07733), section 3.2.
    """

    def __init__(
        self,
        initial_value: float,
        final_value: float,
        steps: int,
        name: str = "cosine_increase",
    ):
        if int(steps) < 1:
            raise ValueError(f"`steps` must be a positive integer. Got: {steps!r}.")
        self.initial_value = float(initial_value)
        self.final_value = float(final_value)
        self.steps = int(steps)
        self.name = name
        self._gap = keras.optimizers.schedules.CosineDecay(
            self.final_value - self.initial_value, self.steps
        )

    def __call__(self, step):
        return ops.cast(self.final_value, "float32") - self._gap(step)

    def get_config(self) -> dict:
        return {
            "initial_value": self.initial_value,
            "final_value": self.final_value,
            "steps": self.steps,
            "name": self.name,
        }
