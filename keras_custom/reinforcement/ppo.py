"""`PPO`: proximal policy optimization with the clipped surrogate objective."""

import math
from collections.abc import Mapping

import keras
import numpy as np
from keras import ops

from keras_custom.core import all_gather, inference_function, serialize_scalar
from keras_custom.core.named_optimizers import OptimizerLike
from keras_custom.core.schedules import Scalar, validate_scalar
from keras_custom.reinforcement.actor_critic import ActorCritic
from keras_custom.reinforcement.experience_dataset import positive_int
from keras_custom.reinforcement.rollout_dataset import sample_categorical
from keras_custom.reinforcement.transitions import column, transition_batch

_LOG_2PI = math.log(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="keras_custom")
class PPO(ActorCritic):
    """Proximal policy optimization (PPO-Clip) on rollouts, driven by `fit()`.

    `policy_network` maps observations to the logits of a categorical
    distribution over discrete actions or, with `continuous_actions=True`,
    to the mean of a diagonal Gaussian whose log standard deviation is a
    state-independent variable of the model (`log_std`, one per action
    dimension, trained with the networks and saved with them).
    `value_network` maps observations to the state value; or give one model
    with the outputs `[logits_or_mean, values]` as `policy_network` alone,
    as for `ActorCritic`. Each batch is a minibatch of rollout transitions
    `{"observation", "action", "log_probability", "advantage", "return"}`,
    `log_probability` being the behaviour policy's log-probability of the
    action when it was taken. `PPORolloutDataset` collects them: it steps
    vectorized `gymnasium` environments with actions sampled from the
    policy, computes the advantages by generalized advantage estimation,
    and serves each rollout as `update_epochs` shuffled passes of
    `minibatches` minibatches, so that one `fit()` runs all of PPO's
    updates (`steps_per_epoch` counts minibatch updates).

    With `ratio = exp(log pi(action) - log_probability)` and the advantages
    `A` normalized over each minibatch (zero mean, unit population standard
    deviation, over the whole minibatch under a distribution strategy), the
    loss is

    `policy_loss + value_weight * value_loss - entropy_weight * entropy`

    with `policy_loss = -mean(min(ratio * A, clip(ratio, 1 - clip_ratio,
    1 + clip_ratio) * A))`, `value_loss = mean((return - value)^2)` (no
    value clipping) and `entropy` the mean entropy of the policy. Also
    logged: `approx_kl = mean((ratio - 1) - log(ratio))`, the
    low-variance, never-negative estimator of KL(old || new) that
    Stable-Baselines3 uses, and `clip_fraction`, the fraction of
    transitions with `|ratio - 1| > clip_ratio`.

    With `target_kl`, `PPORolloutDataset` stops the updates of a rollout
    early, as Stable-Baselines3 and Spinning Up do: before it serves each
    further minibatch of the rollout it computes that minibatch's
    `approx_kl` under the current weights, and if it exceeds
    `1.5 * target_kl` it drops the rest of the rollout (that minibatch
    included) and collects the next rollout. The check runs in the data
    flow, between two steps, so the training step itself stays a pure
    function of the batch (the same under `tf.function`, XLA and JAX).

    `model(x)` and `predict` return the policy's logits (the Gaussian's
    mean), `greedy_actions(observations)` their argmax (the mean),
    `policy_and_value(observations)` both heads' outputs and
    `sample_actions(observations, rng)` sampled actions with their
    log-probabilities and values.

    Args:
        policy_network: A built Keras model from observations to action
            logits (Gaussian means) of shape `(batch, action_dims)`.
        value_network: A built Keras model from observations to values of
            shape `(batch, 1)` or `(batch,)`, or `None` when
            `policy_network` returns `[logits, values]`.
        clip_ratio: The clipping range epsilon of the surrogate objective,
            a float or a schedule.
        value_weight: Weight of the value loss, a float or a schedule.
        entropy_weight: Weight of the entropy bonus, a float or a schedule.
        update_epochs: Passes over each rollout (`PPORolloutDataset`).
        minibatches: Minibatches of each pass; they must divide the
            rollout's transitions.
        target_kl: Optional KL divergence above which (times 1.5) the rest
            of a rollout's updates are skipped.
        continuous_actions: Whether actions are real vectors drawn from a
            Gaussian rather than discrete ids.
        initial_log_std: Initial value of the Gaussian's log standard
            deviation (continuous actions only).
        normalize_advantages: Whether the advantages are normalized per
            minibatch.
        optimizer: Optimizer of the networks and `log_std` (default Adam).
        **kwargs: Forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    import gymnasium as gym
    import keras
    import numpy as np
    from keras_custom import PPO
    from keras_custom.reinforcement import PPORolloutDataset

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    value = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model = PPO(policy, value, clip_ratio=0.2, update_epochs=2, minibatches=4)
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    envs = [gym.make("CartPole-v1") for _ in range(4)]
    rollouts = PPORolloutDataset(envs, model, rollout_steps=16, seed=0)
    # Each rollout of 64 transitions is 2 passes of 4 minibatches of 16.
    history = model.fit(rollouts, steps_per_epoch=16, epochs=2, verbose=0)
    history.history["approx_kl"], history.history["clip_fraction"]

    # A continuous policy: the network gives the Gaussian's mean.
    mean = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    values = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    gaussian = PPO(mean, values, continuous_actions=True, initial_log_std=-0.5)
    actions, log_probabilities, _ = gaussian.sample_actions(
        np.zeros((5, 3), "float32"), np.random.default_rng(0))
    assert actions.shape == (5, 1) and log_probabilities.shape == (5,)
    ```

    Reference:
        Schulman et al., "Proximal Policy Optimization Algorithms", 2017
        (https://arxiv.org/abs/1707.06347), equations 7 and 9;
        Schulman et al., "High-Dimensional Continuous Control Using
        Generalized Advantage Estimation", ICLR 2016
        (https://arxiv.org/abs/1506.02438).
    """

    transition_keys = (
        "observation",
        "action",
        "log_probability",
        "advantage",
        "return",
    )
    logged = (
        "loss",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
    )

    def __init__(
        self,
        policy_network: keras.Model,
        value_network: keras.Model | None = None,
        clip_ratio: Scalar = 0.2,
        value_weight: Scalar = 0.5,
        entropy_weight: Scalar = 0.0,
        update_epochs: int = 4,
        minibatches: int = 4,
        target_kl: float | None = None,
        continuous_actions: bool = False,
        initial_log_std: float = 0.0,
        normalize_advantages: bool = True,
        optimizer: OptimizerLike = None,
        **kwargs,
    ):
        super().__init__(
            policy_network,
            value_network,
            value_weight=value_weight,
            entropy_weight=entropy_weight,
            optimizer=optimizer,
            **kwargs,
        )
        self.clip_ratio = validate_scalar(clip_ratio, "clip_ratio")
        if isinstance(self.clip_ratio, float) and not self.clip_ratio > 0.0:
            raise ValueError(f"`clip_ratio` must be positive. Got: {clip_ratio!r}.")
        self.update_epochs = positive_int(update_epochs, "update_epochs")
        self.minibatches = positive_int(minibatches, "minibatches")
        if target_kl is not None:
            if isinstance(target_kl, bool) or not float(target_kl) > 0.0:
                raise ValueError(
                    "`target_kl` must be a positive number or None. Got: "
                    f"{target_kl!r}."
                )
            target_kl = float(target_kl)
        self.target_kl = target_kl
        self.continuous_actions = bool(continuous_actions)
        self.initial_log_std = float(initial_log_std)
        self.normalize_advantages = bool(normalize_advantages)
        # The Gaussian's dimensions (the number of logits when known).
        self.action_dims = _output_dims(policy_network, self.continuous_actions)
        self.log_std = None
        if self.continuous_actions:
            self.log_std = self.add_weight(
                shape=(self.action_dims,),
                initializer=keras.initializers.Constant(self.initial_log_std),
                name="log_std",
            )
        self._kl_function = None

    # ------------------------------------------------------------------
    # The policy's distribution
    # ------------------------------------------------------------------

    def _log_probabilities(self, outputs, actions):
        """`(log pi(actions), entropies)` of the policy with `outputs`, per row."""
        if self.continuous_actions:
            log_std = ops.cast(self.log_std, "float32")
            actions = ops.reshape(ops.cast(actions, "float32"), ops.shape(outputs))
            scaled = (actions - outputs) * ops.exp(-log_std)
            log_probabilities = ops.sum(
                -0.5 * ops.square(scaled) - log_std - 0.5 * _LOG_2PI, axis=-1
            )
            entropy = ops.sum(log_std + 0.5 * (1.0 + _LOG_2PI))
            return log_probabilities, entropy * ops.ones_like(log_probabilities)
        log_p = ops.log_softmax(outputs, axis=-1)
        actions = ops.cast(ops.reshape(actions, (-1,)), "int32")
        taken = ops.sum(log_p * ops.one_hot(actions, ops.shape(outputs)[-1]), axis=-1)
        return taken, -ops.sum(ops.exp(log_p) * log_p, axis=-1)

    def transition_loss(self, transitions: dict, training: bool) -> dict:
        """The total loss and `policy_loss`, `value_loss`, `entropy`,
        `approx_kl` and `clip_fraction` of a minibatch."""
        outputs, values = self._heads(transitions["observation"], training)
        log_probabilities, entropies = self._log_probabilities(
            outputs, transitions["action"]
        )
        old = ops.cast(ops.reshape(transitions["log_probability"], (-1,)), "float32")
        advantages = ops.cast(ops.reshape(transitions["advantage"], (-1,)), "float32")
        if self.normalize_advantages:
            # Statistics of the whole minibatch, on one device or several.
            every = all_gather(advantages)
            advantages = (advantages - ops.mean(every)) / (ops.std(every) + 1e-8)
        log_ratio = log_probabilities - old
        ratio = ops.exp(log_ratio)
        epsilon = self.scalar(self.clip_ratio)
        clipped = ops.clip(ratio, 1.0 - epsilon, 1.0 + epsilon)
        policy_loss = -ops.mean(ops.minimum(ratio * advantages, clipped * advantages))
        value_loss = self.value_loss_fn(column(transitions["return"]), column(values))
        entropy = ops.mean(entropies)
        loss = (
            policy_loss
            + self.scalar(self.value_weight) * value_loss
            - self.scalar(self.entropy_weight) * entropy
        )
        log_ratio = ops.stop_gradient(log_ratio)
        ratio = ops.stop_gradient(ratio)
        return {
            "loss": loss,
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": ops.mean((ratio - 1.0) - log_ratio),
            "clip_fraction": ops.mean(
                ops.cast(ops.greater(ops.abs(ratio - 1.0), epsilon), "float32")
            ),
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """`transition_loss` of the minibatch `x`, its keys and shapes checked."""
        if isinstance(x, Mapping) and y is None and "log_probability" not in x:
            raise ValueError(
                f"Model '{self.name}' needs 'log_probability', the behaviour "
                "policy's log-probability of each action, in every batch; the "
                f"batch has {sorted(x)}. `PPORolloutDataset` records it."
            )
        if self.continuous_actions and isinstance(x, Mapping) and "action" in x:
            self._check_continuous_actions(x["action"])
            keys = tuple(k for k in self.transition_keys if k != "action")
            rest = {k: v for k, v in x.items() if k != "action"}
            transitions = transition_batch(rest, y, keys, self.name)
            transitions["action"] = x["action"]
        else:
            transitions = transition_batch(x, y, self.transition_keys, self.name)
        return self.transition_loss(transitions, training)

    def _check_continuous_actions(self, actions) -> None:
        shape = tuple(actions.shape)
        dims = self.action_dims
        if not (len(shape) == 2 and shape[-1] in (dims, None)) and not (
            dims == 1 and len(shape) == 1
        ):
            raise ValueError(
                f"Model '{self.name}' has continuous actions of {dims} "
                f"dimension(s): 'action' must have the shape (batch, {dims}). "
                f"Got 'action' of shape {shape}."
            )
        dtype = keras.backend.standardize_dtype(actions.dtype)
        if "float" not in dtype:
            raise ValueError(
                f"Model '{self.name}' has continuous actions: 'action' must "
                f"hold real numbers. Got 'action' of dtype {dtype}."
            )

    # ------------------------------------------------------------------
    # Acting, outside `fit()`
    # ------------------------------------------------------------------

    def greedy_actions(self, observations) -> np.ndarray:
        """The most likely actions (the Gaussian's mean) for a NumPy batch."""
        if not self.continuous_actions:
            return super().greedy_actions(observations)
        mean = self._compiled("greedy_actions", lambda x: self.act(x, False))
        return np.asarray(mean(observations))

    def sample_actions(
        self, observations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions sampled from the policy, for a NumPy batch of observations.

        The sampling uses `rng`, so that a dataset with a seed is
        repeatable; continuous actions are not clipped (clip them to the
        action space only to step the environment, and keep the sample's
        log-probability).

        Args:
            observations: A NumPy batch of observations.
            rng: The NumPy random generator to sample with.

        Returns:
            `(actions, log_probabilities, values)`: actions of shape
            `(batch,)` (int64 ids) or `(batch, action_dims)` (float32), and
            the float32 log-probabilities of the actions and values, of
            shape `(batch,)`.
        """
        if not self.continuous_actions:
            logits, values = self.policy_and_value(observations)
            logits = np.asarray(logits, "float64")
            actions = sample_categorical(logits, rng)
            shifted = logits - logits.max(-1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            taken = log_p[np.arange(len(actions)), actions]
            return actions.astype("int64"), taken.astype("float32"), values
        heads = self._compiled(
            "sample_heads", lambda x: (*self._heads(x, False), self.log_std + 0.0)
        )
        mean, values, log_std = heads(observations)
        mean, log_std = np.asarray(mean, "float64"), np.asarray(log_std, "float64")
        noise = rng.standard_normal(mean.shape)
        actions = mean + np.exp(log_std) * noise
        log_p = np.sum(-0.5 * noise**2 - log_std - 0.5 * _LOG_2PI, axis=-1)
        return actions.astype("float32"), log_p.astype("float32"), values

    def approximate_kl(self, observations, actions, log_probabilities) -> float:
        """`mean((ratio - 1) - log ratio)` of transitions under the current
        weights: the early-stopping check of `target_kl` (NumPy inputs)."""
        if self._kl_function is None:

            def kl(x, a, old):
                outputs, _ = self._heads(x, False)
                new, _ = self._log_probabilities(outputs, a)
                log_ratio = new - ops.reshape(old, (-1,))
                return ops.mean(ops.exp(log_ratio) - 1.0 - log_ratio)

            self._kl_function = inference_function(kl, self)
        return float(
            self._kl_function(
                np.asarray(observations, "float32"),
                np.asarray(actions),
                np.asarray(log_probabilities, "float32"),
            )
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "clip_ratio": serialize_scalar(self.clip_ratio),
                "update_epochs": self.update_epochs,
                "minibatches": self.minibatches,
                "target_kl": self.target_kl,
                "continuous_actions": self.continuous_actions,
                "initial_log_std": self.initial_log_std,
                "normalize_advantages": self.normalize_advantages,
            }
        )
        return config


def _output_dims(policy_network, required: bool) -> int | None:
    """The number of logits (action dimensions) of the policy's output, or
    `None` for a discrete policy that does not say (a subclassed model)."""
    outputs = getattr(policy_network, "outputs", None)
    if outputs is None:
        if not required:
            return None
        raise ValueError(
            "With `continuous_actions=True`, `policy_network` must be a "
            "functional or Sequential Keras model, whose `outputs` give the "
            f"number of action dimensions. Got: {policy_network!r}."
        )
    head = outputs[0]
    if len(head.shape) != 2 or head.shape[-1] is None:
        raise ValueError(
            "The policy's output must have the shape (batch, action_dims). "
            f"Got: {tuple(head.shape)}."
        )
    return int(head.shape[-1])
