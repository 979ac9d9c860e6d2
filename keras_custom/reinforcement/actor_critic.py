"""`ActorCritic`: advantage actor-critic (A2C) with an entropy bonus."""

import keras
import numpy as np
from keras import ops

from keras_custom.core import serialize_scalar, validate_scalar
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.reinforcement.reinforcement_model import ReinforcementModel
from keras_custom.reinforcement.transitions import column


@keras.saving.register_keras_serializable(package="keras_custom")
class ActorCritic(ReinforcementModel):
    """Advantage actor-critic (A2C) on rollouts, driven by `fit()`.

    `policy_network` maps observations to the logits of a categorical
    distribution over discrete actions; `value_network` maps them to the
    state value. For a shared trunk, give one model with two outputs,
    `[logits, values]`, as `policy_network` and leave `value_network` out
    (two models sharing layers would be saved as two separate copies, so
    they are refused). Each batch is a dict of rollout
    transitions `{"observation", "action", "advantage", "return"}`, the
    advantages from generalized advantage estimation (see `RolloutDataset`,
    which steps vectorized `gymnasium` environments with the current policy
    and computes them). The loss is

    `policy_loss + value_weight * value_loss - entropy_weight * entropy`

    with `policy_loss = -mean(log pi(action) * advantage)`,
    `value_loss = mean((return - value)^2)` and `entropy` the mean entropy
    of the policy. Logs `loss`, `policy_loss`, `value_loss` and `entropy`;
    `evaluate()` on rollouts logs the same without updating. `model(x)` and
    `predict` return the policy's logits, `greedy_actions(observations)`
    their argmax, and `policy_and_value(observations)` both heads' outputs.

    Args:
        policy_network: A built Keras model from observations to action
            logits of shape `(batch, num_actions)`.
        value_network: A built Keras model from observations to values of
            shape `(batch, 1)` or `(batch,)`, or `None` when
            `policy_network` returns `[logits, values]`.
        value_weight: Weight of the value loss, a float or a schedule.
        entropy_weight: Weight of the entropy bonus, a float or a schedule.
        optimizer: Optimizer of both networks (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import ActorCritic

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    value = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model = ActorCritic(policy, value, value_weight=0.5, entropy_weight=0.01)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    rollout = {
        "observation": rng.normal(size=(64, 4)).astype("float32"),
        "action": rng.integers(0, 2, size=64),
        "advantage": rng.normal(size=64).astype("float32"),
        "return": rng.normal(size=64).astype("float32"),
    }
    history = model.fit(rollout, batch_size=32, verbose=0)
    logits, values = model.policy_and_value(rollout["observation"][:3])
    ```

    Reference:
        Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning",
        ICML 2016 (https://arxiv.org/abs/1602.01783); Schulman et al.,
        "High-Dimensional Continuous Control Using Generalized Advantage
        Estimation", ICLR 2016 (https://arxiv.org/abs/1506.02438).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "policy_network"
    transition_keys = ("observation", "action", "advantage", "return")
    _serialized_arguments = ("policy_network", "value_network")
    logged = ("loss", "policy_loss", "value_loss", "entropy")

    def __init__(
        self,
        policy_network: keras.Model,
        value_network: keras.Model | None = None,
        value_weight: Scalar = 0.5,
        entropy_weight: Scalar = 0.01,
        optimizer: OptimizerLike = None,
        **kwargs,
    ):
        networks = {"policy_network": policy_network}
        if value_network is not None:
            networks["value_network"] = value_network
        super().__init__(networks, optimizer=optimizer, **kwargs)
        if value_network is not None:
            shared = {id(v) for v in policy_network.weights} & {
                id(v) for v in value_network.weights
            }
            if shared:
                raise ValueError(
                    "`policy_network` and `value_network` share weights, "
                    "which would be saved as two separate copies. For a "
                    "shared trunk, build one model with the outputs "
                    "`[logits, values]` and pass it as `policy_network` "
                    "alone."
                )
        self.policy_network = policy_network
        self.value_network = value_network
        self.value_weight = validate_scalar(value_weight, "value_weight")
        self.entropy_weight = validate_scalar(entropy_weight, "entropy_weight")
        self.value_loss_fn = keras.losses.MeanSquaredError()
        self.add_optimizer("optimizer", None, None, default="adam")
        self.built = True

    def _heads(self, observations, training: bool):
        """`(logits, values)` in float32, values of shape `(batch,)`."""
        if self.value_network is None:
            outputs = self.policy_network(observations, training=training)
            if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
                raise ValueError(
                    "Without `value_network`, `policy_network` must return "
                    f"`[logits, values]`. It returned: {outputs!r}."
                )
            logits, values = outputs
        else:
            logits = self.policy_network(observations, training=training)
            values = self.value_network(observations, training=training)
        return (
            ops.cast(logits, "float32"),
            ops.reshape(ops.cast(values, "float32"), (-1,)),
        )

    def act(self, observations, training: bool):
        """The policy's logits for `observations`."""
        return self._heads(observations, training)[0]

    def policy_and_value(self, observations) -> tuple[np.ndarray, np.ndarray]:
        """`(logits, values)` for a NumPy batch; values of shape `(batch,)`."""
        heads = self._compiled("policy_and_value", lambda x: self._heads(x, False))
        return heads(observations)

    def transition_loss(self, transitions: dict, training: bool) -> dict:
        """The total loss, `policy_loss`, `value_loss` and `entropy`."""
        logits, values = self._heads(transitions["observation"], training)
        log_probabilities = ops.log_softmax(logits, axis=-1)
        actions = ops.cast(ops.reshape(transitions["action"], (-1,)), "int32")
        taken = ops.sum(
            log_probabilities * ops.one_hot(actions, ops.shape(logits)[-1]), axis=-1
        )
        advantages = ops.cast(ops.reshape(transitions["advantage"], (-1,)), "float32")
        policy_loss = -ops.mean(taken * advantages)
        value_loss = self.value_loss_fn(column(transitions["return"]), column(values))
        entropy = -ops.mean(ops.sum(ops.exp(log_probabilities) * log_probabilities, -1))
        loss = (
            policy_loss
            + self.scalar(self.value_weight) * value_loss
            - self.scalar(self.entropy_weight) * entropy
        )
        return {
            "loss": loss,
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
        }

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "value_weight": serialize_scalar(self.value_weight),
                "entropy_weight": serialize_scalar(self.entropy_weight),
            }
        )
        return config
