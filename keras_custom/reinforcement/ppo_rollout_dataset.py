"""`PPORolloutDataset`: rollouts served as shuffled minibatches, for `PPO`."""

import numpy as np

from keras_custom.reinforcement.advantages import generalized_advantage_estimation
from keras_custom.reinforcement.experience_dataset import positive_int
from keras_custom.reinforcement.rollout_dataset import RolloutDataset


class PPORolloutDataset(RolloutDataset):
    """Rollouts of the current policy, each served as several passes of
    shuffled minibatches, so that one `fit()` runs all of `PPO`'s updates.

    A rollout steps every environment `rollout_steps` times with actions
    sampled from the model's policy (`model.sample_actions`), records the
    behaviour policy's log-probability of each action and the value of each
    observation, and computes the advantages and returns by generalized
    advantage estimation (an episode cut by a time limit bootstraps the
    value of its last observation, as in `RolloutDataset`). Its
    `rollout_steps * num_envs` transitions are then served as
    `model.update_epochs` passes, each a fresh random permutation split
    into `model.minibatches` minibatches of equal size: one minibatch per
    training step, `{"observation", "action", "log_probability",
    "advantage", "return"}`. When the last minibatch of a rollout has been
    served, the next step collects a new rollout with the weights the
    updates left. `fit(dataset, steps_per_epoch=n)` therefore takes `n`
    minibatch updates; a rollout is `update_epochs * minibatches` of them.

    Continuous actions are sampled unclipped, and their log-probability is
    that of the unclipped sample; they are clipped to the environment's
    `action_space` (`low`, `high`) only to step the environment.

    With `model.target_kl`, each minibatch after a rollout's first is
    checked before it is served: if `model.approximate_kl` of it under the
    current weights exceeds `1.5 * target_kl` (the threshold of
    Stable-Baselines3 and Spinning Up), the minibatch and the rest of the
    rollout are dropped and a new rollout is collected. `rollout_updates`
    holds the number of updates each rollout got, and `early_stops` the
    number of rollouts cut short.

    Advantages are normalized per minibatch by `PPO` itself
    (`normalize_advantages`), so this dataset leaves them as computed.

    Args:
        env: A `gymnasium.Env`, or a list of them stepped together, with
            discrete or `Box` actions as the model's policy has.
        model: The `PPO` (anything with `sample_actions`, `update_epochs`,
            `minibatches`, `target_kl` and `approximate_kl`).
        rollout_steps: Steps of each environment per rollout.
        gamma: Discount factor.
        gae_lambda: GAE smoothing factor, in [0, 1].
        seed: Seed of the environments' first reset, the sampling of
            actions and the shuffling.
        save_state: Whether `keras_custom.callbacks.BackupAndRestore` saves
            the dataset's state (the current rollout and its remaining
            minibatches included) with its checkpoints.

    Example:

    ```python
    import gymnasium as gym
    import keras
    from keras_custom import PPO
    from keras_custom.reinforcement import PPORolloutDataset

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    value = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model = PPO(policy, value, update_epochs=3, minibatches=2, target_kl=0.02)
    model.compile()
    rollouts = PPORolloutDataset([gym.make("CartPole-v1") for _ in range(2)],
                                 model, rollout_steps=32, seed=0)
    model.fit(rollouts, steps_per_epoch=12, epochs=1, verbose=0)
    rollouts.rollout_updates  # updates of each rollout: 6 unless cut short
    ```

    Reference:
        Schulman et al., "Proximal Policy Optimization Algorithms", 2017
        (https://arxiv.org/abs/1707.06347), algorithm 1; Raffin et al.,
        "Stable-Baselines3", JMLR 2021 (the `target_kl` early stop).
    """

    def __init__(
        self,
        env,
        model,
        rollout_steps: int = 128,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        seed: int | None = None,
        save_state: bool = False,
    ):
        super().__init__(
            env,
            model,
            rollout_steps=rollout_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            normalize_advantages=False,
            seed=seed,
            save_state=save_state,
        )
        needed = ("sample_actions", "update_epochs", "minibatches", "approximate_kl")
        if not all(hasattr(model, name) for name in needed):
            raise ValueError(
                "`PPORolloutDataset` needs a `PPO` model (with "
                f"`sample_actions`, `update_epochs` and `minibatches`). Got: {model!r}."
            )
        self.update_epochs = positive_int(model.update_epochs, "update_epochs")
        self.minibatches = positive_int(model.minibatches, "minibatches")
        size = self.rollout_steps * self.num_envs
        if size % self.minibatches:
            raise ValueError(
                f"A rollout of {self.rollout_steps} steps of {self.num_envs} "
                f"environments ({size} transitions) cannot be split into "
                f"{self.minibatches} equal minibatches: choose `rollout_steps` "
                "and the number of environments so that `minibatches` divides "
                "their product."
            )
        self.minibatch_size = size // self.minibatches
        self.continuous_actions = bool(getattr(model, "continuous_actions", False))
        self.bounds = [_action_bounds(env_) for env_ in self.envs]
        self.rollout_updates: list[int] = []
        self.early_stops = 0
        self._rollout = None
        self._queue: list[np.ndarray] = []

    @property
    def batch_size(self) -> int:
        """Transitions per minibatch."""
        return self.minibatch_size

    def collect_rollout(self) -> dict:
        """Steps every environment `rollout_steps` times; returns the
        rollout's transitions, flattened, with advantages and returns."""
        steps, envs = self.rollout_steps, self.num_envs
        observations = np.empty((steps, envs) + self.observations.shape[1:], "float32")
        rewards = np.empty((steps, envs), "float32")
        values = np.empty((steps, envs), "float32")
        log_probabilities = np.empty((steps, envs), "float32")
        dones = np.empty((steps, envs), bool)
        actions = None
        for t in range(steps):
            observations[t] = self.observations
            sampled, log_probabilities[t], values[t] = self.model.sample_actions(
                observations[t], self.rng
            )
            if actions is None:
                actions = np.empty((steps,) + sampled.shape, sampled.dtype)
            actions[t] = sampled
            next_observations, rewards[t], terminated, truncated = self.step(
                self._environment_actions(sampled)
            )
            cut = truncated & ~terminated
            if cut.any():
                _, final_values = self.model.policy_and_value(next_observations[cut])
                rewards[t, cut] += self.gamma * np.asarray(final_values)
            dones[t] = terminated | truncated
        _, last_values = self.model.policy_and_value(self.observations)
        advantages, returns = generalized_advantage_estimation(
            rewards, values, last_values, dones, self.gamma, self.gae_lambda
        )
        size = steps * envs
        return {
            "observation": observations.reshape((size,) + observations.shape[2:]),
            "action": actions.reshape((size,) + actions.shape[2:]),
            "log_probability": log_probabilities.reshape(-1),
            "advantage": advantages.reshape(-1),
            "return": returns.reshape(-1),
        }

    def _environment_actions(self, actions: np.ndarray) -> np.ndarray:
        """`actions` clipped to each environment's `Box` bounds."""
        if not self.continuous_actions:
            return actions
        clipped = np.array(actions, "float32")
        for index, bounds in enumerate(self.bounds):
            if bounds is not None:
                clipped[index] = np.clip(clipped[index], *bounds)
        return clipped

    def next_batch(self) -> dict:
        """The next minibatch, after collecting a rollout when none is left."""
        target_kl = getattr(self.model, "target_kl", None)
        while self._queue and target_kl is not None and self.rollout_updates[-1]:
            rows = self._queue[0]
            kl = self.model.approximate_kl(
                self._rollout["observation"][rows],
                self._rollout["action"][rows],
                self._rollout["log_probability"][rows],
            )
            if kl <= 1.5 * target_kl:
                break
            self._queue = []
            self.early_stops += 1
        if not self._queue:
            self._rollout = self.collect_rollout()
            size = len(self._rollout["advantage"])
            self._queue = [
                rows
                for _ in range(self.update_epochs)
                for rows in np.split(self.rng.permutation(size), self.minibatches)
            ]
            self.rollout_updates.append(0)
        rows = self._queue.pop(0)
        self.rollout_updates[-1] += 1
        return {key: value[rows] for key, value in self._rollout.items()}

    def get_state(self) -> dict:
        """`ExperienceDataset.get_state()` with the current rollout and the
        minibatches still to serve."""
        state = super().get_state()
        state.update(
            {
                "rollout": None
                if self._rollout is None
                else {k: v.copy() for k, v in self._rollout.items()},
                "queue": [rows.copy() for rows in self._queue],
                "rollout_updates": list(self.rollout_updates),
                "early_stops": self.early_stops,
            }
        )
        return state

    def set_state(self, state: dict) -> None:
        """Restores a snapshot of `get_state()`, the current rollout included."""
        super().set_state(state)
        rollout = state["rollout"]
        self._rollout = None if rollout is None else dict(rollout)
        self._queue = [np.array(rows) for rows in state["queue"]]
        self.rollout_updates = list(state["rollout_updates"])
        self.early_stops = int(state["early_stops"])


def _action_bounds(env) -> tuple[np.ndarray, np.ndarray] | None:
    """`(low, high)` of a `Box` action space, or `None`."""
    space = getattr(env, "action_space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None:
        return None
    return np.asarray(low, "float32"), np.asarray(high, "float32")
