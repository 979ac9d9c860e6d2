"""`DQN`: deep Q-learning with a target network and double Q-learning."""

import keras
from keras import ops

from keras_custom.core import serialize_scalar, validate_scalar
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar
from keras_custom.layers import TargetNetwork
from keras_custom.reinforcement.reinforcement_model import ReinforcementModel
from keras_custom.reinforcement.transitions import column


@keras.saving.register_keras_serializable(package="keras_custom")
class DQN(ReinforcementModel):
    """Deep Q-learning from batches of transitions, driven by `fit()`.

    `q_network` maps observations to one Q-value per discrete action. Each
    batch is a dict of transitions `{"observation", "action", "reward",
    "next_observation", "terminated"}` (see `ReplayBufferDataset`, which
    fills and samples a replay buffer from a `gymnasium` environment). The
    temporal-difference target is
    `reward + gamma * (1 - terminated) * Q_target(next_observation, a*)`,
    where `a*` is the online network's greedy action with double Q-learning
    and the target network's otherwise; the loss is the Huber loss between
    it and `Q(observation, action)`.

    The target network is a `keras_custom.layers.TargetNetwork` copy of
    `q_network` that receives no gradients. Every `target_update_period`
    optimizer steps it moves to `tau * online + (1 - tau) * target`:
    `tau=1` is the hard copy of the paper, a small `tau` with period 1 the
    soft update of DDPG. The period counts updates (optimizer steps), not
    environment steps as in Stable-Baselines3's `target_update_interval`:
    a hard copy every 10 updates, say, is far more often than SB3's every
    10 environment steps with 128 updates per 256 steps, and diverges on
    CartPole. It is saved, restored and resumed with the model.

    Logs `loss` and `q_mean` (the mean Q-value of the actions taken);
    `evaluate()` on transitions logs the same without updating. `model(x)`
    and `predict` return the online Q-values of observations, and
    `greedy_actions(observations)` their argmax.

    Args:
        q_network: A built Keras model from observations to Q-values of
            shape `(batch, num_actions)`.
        gamma: Discount factor, in [0, 1].
        tau: Fraction of the way the target moves to the online network at
            each update, a float or a schedule; 1 is a hard copy.
        target_update_period: Optimizer steps between target updates.
        double_q: Whether the online network chooses the next action
            (double Q-learning) rather than the target network.
        huber_delta: Where the Huber loss turns from quadratic to linear.
        optimizer: Optimizer of `q_network` (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import DQN

    q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = DQN(q_network, gamma=0.99, target_update_period=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    transitions = {
        "observation": rng.normal(size=(64, 4)).astype("float32"),
        "action": rng.integers(0, 2, size=64),
        "reward": np.ones(64, "float32"),
        "next_observation": rng.normal(size=(64, 4)).astype("float32"),
        "terminated": rng.random(64) < 0.1,
    }
    history = model.fit(transitions, batch_size=32, verbose=0)
    actions = model.greedy_actions(transitions["observation"][:3])
    ```

    Reference:
        Mnih et al., "Human-level control through deep reinforcement
        learning", Nature 2015; van Hasselt et al., "Deep Reinforcement
        Learning with Double Q-learning", AAAI 2016
        (https://arxiv.org/abs/1509.06461).
    """

    #: The network whose inputs `export()` serves.
    serving_network = "q_network"
    transition_keys = (
        "observation",
        "action",
        "reward",
        "next_observation",
        "terminated",
    )
    _serialized_arguments = ("q_network",)
    logged = ("loss", "q_mean")

    def __init__(
        self,
        q_network: keras.Model,
        gamma: float = 0.99,
        tau: Scalar = 1.0,
        target_update_period: int = 500,
        double_q: bool = True,
        huber_delta: float = 1.0,
        optimizer: OptimizerLike = None,
        **kwargs,
    ):
        super().__init__({"q_network": q_network}, optimizer=optimizer, **kwargs)
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"`gamma` must be in [0, 1]. Got: {gamma}.")
        if isinstance(target_update_period, bool) or int(target_update_period) < 1:
            raise ValueError(
                "`target_update_period` must be a positive integer. Got: "
                f"{target_update_period!r}."
            )
        if float(huber_delta) <= 0:
            raise ValueError(f"`huber_delta` must be positive. Got: {huber_delta}.")
        self.q_network = q_network
        self.target = TargetNetwork(q_network, name="target_q_network")
        self.gamma = float(gamma)
        self.tau = validate_scalar(tau, "tau")
        self.target_update_period = int(target_update_period)
        self.double_q = bool(double_q)
        self.huber_delta = float(huber_delta)
        self.td_loss = keras.losses.Huber(delta=self.huber_delta)
        self.add_optimizer("optimizer", None, q_network, default="adam")
        self.built = True

    def act(self, observations, training: bool):
        """The online Q-values of `observations`."""
        return self.q_network(observations, training=training)

    def transition_loss(self, transitions: dict, training: bool) -> dict:
        """The Huber loss of the temporal-difference error, and `q_mean`."""
        observations = transitions["observation"]
        next_observations = transitions["next_observation"]
        q_values = ops.cast(self.q_network(observations, training=training), "float32")
        num_actions = ops.shape(q_values)[-1]
        actions = ops.cast(ops.reshape(transitions["action"], (-1,)), "int32")
        q_taken = ops.sum(q_values * ops.one_hot(actions, num_actions), axis=-1)
        next_target_q = ops.cast(self.target(next_observations), "float32")
        if self.double_q:
            next_online_q = ops.stop_gradient(
                self.q_network(next_observations, training=training)
            )
            next_actions = ops.argmax(next_online_q, axis=-1)
        else:
            next_actions = ops.argmax(next_target_q, axis=-1)
        next_q = ops.sum(next_target_q * ops.one_hot(next_actions, num_actions), -1)
        rewards = ops.cast(ops.reshape(transitions["reward"], (-1,)), "float32")
        continues = 1.0 - ops.cast(
            ops.reshape(transitions["terminated"], (-1,)), "float32"
        )
        targets = ops.stop_gradient(rewards + self.gamma * continues * next_q)
        return {
            "loss": self.td_loss(column(targets), column(q_taken)),
            "q_mean": ops.mean(q_taken),
        }

    def _update_target(self) -> None:
        iterations = self.optimizer.iterations
        period = self.target_update_period

        def decay():
            due = ops.equal(ops.mod(iterations, period), 0)
            return ops.where(due, 1.0 - self.scalar(self.tau), 1.0)

        self.target.update(decay)

    def train_step(self, data):
        """The gradient step of `transition_loss`, then the target update."""
        logs = super().train_step(data)
        self._update_target()
        return logs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "gamma": self.gamma,
                "tau": serialize_scalar(self.tau),
                "target_update_period": self.target_update_period,
                "double_q": self.double_q,
                "huber_delta": self.huber_delta,
            }
        )
        return config
