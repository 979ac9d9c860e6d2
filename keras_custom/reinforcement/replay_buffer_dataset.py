"""`ReplayBufferDataset`: a replay buffer filled by an epsilon-greedy policy."""

import keras
import numpy as np

from keras_custom.core.schedules import Scalar, validate_scalar
from keras_custom.reinforcement.experience_dataset import (
    ExperienceDataset,
    positive_int,
)


class ReplayBufferDataset(ExperienceDataset):
    """Transitions for `DQN`, sampled uniformly from a replay buffer.

    Each batch first steps every environment `steps_per_batch` times with
    the model's epsilon-greedy policy and stores the transitions in a ring
    buffer of `capacity`, then samples `batch_size` of them uniformly:
    `{"observation", "action", "reward", "next_observation",
    "terminated"}`. Before the first batch the buffer is filled with
    `learning_starts` steps of uniformly random actions. Epsilon is a float
    or a Keras schedule (e.g. `keras.optimizers.schedules.PolynomialDecay`)
    evaluated at `environment_steps`. A time-limit cut (`truncated`) is not
    stored as terminal, so its value is bootstrapped. Give it to `fit()`
    with `steps_per_epoch` (updates per epoch). See `ExperienceDataset` for
    when batches are made.

    With `save_state=True`, `keras_custom.callbacks.BackupAndRestore` saves
    the dataset with each checkpoint: the buffer's filled rows, its position
    and size, the environments (pickled), the random generator of
    exploration and sampling, the environment-step counter (which sets
    epsilon) and the episode records. A run killed at any batch then resumes
    exactly: with op determinism on, the resumed `DQN` ends with the weights
    of an uninterrupted run. It is off by default, since every checkpoint
    then writes the buffer (up to `capacity` transitions).

    Args:
        env: A `gymnasium.Env` with discrete actions, or a list of them.
        model: The `DQN` (anything with `greedy_actions`).
        batch_size: Transitions per batch.
        capacity: Transitions the buffer keeps; the oldest are replaced.
        learning_starts: Random-action steps (of all environments) stored
            before the first batch.
        steps_per_batch: Steps of each environment per batch (the "train
            frequency"; `1` is one environment step per update).
        epsilon: Probability of a uniformly random action, a float or a
            schedule of the environment steps. Defaults to a linear decay
            from 1 to 0.05 over 10,000 steps.
        seed: Seed of the environments' first reset, the exploration and
            the sampling.
        save_state: Whether `keras_custom.callbacks.BackupAndRestore` saves
            the buffer and the rest of the dataset's state with its
            checkpoints, for an exact resume.

    Example:

    ```python
    import gymnasium as gym
    import keras
    from keras_custom import DQN
    from keras_custom.reinforcement import ReplayBufferDataset

    q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = DQN(q_network, target_update_period=10)
    model.compile()
    replay = ReplayBufferDataset(
        gym.make("CartPole-v1"), model, batch_size=32, learning_starts=100,
        seed=0)
    model.fit(replay, steps_per_epoch=20, epochs=2, verbose=0)
    ```

    Resuming exactly after the process is killed: run the same script again.

    ```python
    import os
    import tempfile

    import gymnasium as gym
    import keras
    from keras_custom import DQN
    from keras_custom.callbacks import BackupAndRestore
    from keras_custom.reinforcement import ReplayBufferDataset

    # A fixed directory: a re-run of the script resumes from it.
    backup_dir = os.path.join(tempfile.gettempdir(), "dqn_backup")
    keras.utils.set_random_seed(0)
    q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = DQN(q_network, target_update_period=10)
    model.compile()
    replay = ReplayBufferDataset(
        gym.make("CartPole-v1"), model, batch_size=32, learning_starts=100,
        seed=0, save_state=True)
    model.fit(replay, steps_per_epoch=20, epochs=2, verbose=0,
              callbacks=[BackupAndRestore(backup_dir, save_freq=5)])
    ```

    Reference:
        Mnih et al., "Human-level control through deep reinforcement
        learning", Nature 2015 (experience replay, epsilon-greedy).
    """

    def __init__(
        self,
        env,
        model,
        batch_size: int = 64,
        capacity: int = 100_000,
        learning_starts: int = 1_000,
        steps_per_batch: int = 1,
        epsilon: Scalar | None = None,
        seed: int | None = None,
        save_state: bool = False,
    ):
        super().__init__(env, model, seed, save_state=save_state)
        self._batch_size = positive_int(batch_size, "batch_size")
        self.capacity = positive_int(capacity, "capacity")
        self.learning_starts = int(learning_starts)
        if self.learning_starts < 0:
            raise ValueError(
                f"`learning_starts` must be 0 or more. Got: {learning_starts!r}."
            )
        self.steps_per_batch = positive_int(steps_per_batch, "steps_per_batch")
        if self.capacity < self._batch_size:
            raise ValueError(
                f"`capacity` ({capacity}) must hold at least one batch ({batch_size})."
            )
        if epsilon is None:
            epsilon = keras.optimizers.schedules.PolynomialDecay(1.0, 10_000, 0.05)
        self.epsilon = validate_scalar(epsilon, "epsilon")
        self.num_actions = []
        for env_ in self.envs:
            count = getattr(getattr(env_, "action_space", None), "n", None)
            if count is None:
                raise ValueError(
                    "`ReplayBufferDataset` needs environments with discrete "
                    f"actions (`action_space.n`). Got: {env_!r}."
                )
            self.num_actions.append(int(count))
        self.size = 0
        self._position = 0
        self._buffer = None

    @property
    def batch_size(self) -> int:
        """Transitions per batch."""
        return self._batch_size

    def current_epsilon(self) -> float:
        """The exploration rate at the current environment step."""
        if isinstance(self.epsilon, float):
            return self.epsilon
        return float(keras.ops.convert_to_numpy(self.epsilon(self.environment_steps)))

    def _random_actions(self) -> np.ndarray:
        return np.array([self.rng.integers(n) for n in self.num_actions])

    def collect(self, random_actions: bool = False) -> None:
        """Steps every environment once and stores the transitions."""
        observations = self.observations
        actions = self._random_actions()
        if not random_actions:
            explore = self.rng.random(self.num_envs) < self.current_epsilon()
            greedy = self.model.greedy_actions(observations)
            actions = np.where(explore, actions, greedy)
        next_observations, rewards, terminated, _ = self.step(actions)
        self._store(
            {
                "observation": observations,
                "action": actions.astype("int64"),
                "reward": rewards,
                "next_observation": next_observations,
                "terminated": terminated,
            }
        )

    def _store(self, transitions: dict) -> None:
        if self._buffer is None:
            self._buffer = {
                key: np.zeros((self.capacity,) + value.shape[1:], value.dtype)
                for key, value in transitions.items()
            }
        rows = (self._position + np.arange(self.num_envs)) % self.capacity
        for key, value in transitions.items():
            self._buffer[key][rows] = value
        self._position = (self._position + self.num_envs) % self.capacity
        self.size = min(self.size + self.num_envs, self.capacity)

    def next_batch(self) -> dict:
        while self.size < max(self.learning_starts, self._batch_size):
            self.collect(random_actions=True)
        for _ in range(self.steps_per_batch):
            self.collect()
        rows = self.rng.integers(0, self.size, size=self._batch_size)
        return {key: value[rows] for key, value in self._buffer.items()}

    def get_state(self) -> dict:
        """`ExperienceDataset.get_state()` with the buffer's filled rows."""
        state = super().get_state()
        state.update(
            {
                "capacity": self.capacity,
                "size": self.size,
                "position": self._position,
                "buffer": None
                if self._buffer is None
                else {k: v[: self.size].copy() for k, v in self._buffer.items()},
            }
        )
        return state

    def set_state(self, state: dict) -> None:
        """Restores a snapshot of `get_state()`, the buffer included."""
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"The saved replay buffer holds {state['capacity']} "
                f"transitions; this dataset's `capacity` is {self.capacity}."
            )
        super().set_state(state)
        self.size, self._position = int(state["size"]), int(state["position"])
        self._buffer = None
        if state["buffer"] is not None:
            self._buffer = {}
            for key, rows in state["buffer"].items():
                column = np.zeros((self.capacity,) + rows.shape[1:], rows.dtype)
                column[: self.size] = rows
                self._buffer[key] = column
