"""`ExperienceDataset`: batches collected from environments as `fit()` asks."""

import pickle
from collections.abc import Iterator, Sequence

import numpy as np

from keras_custom.core import unbuffered_dataset

# Keras takes any `DataAdapter` given to `fit()` as it is
# (`keras.src.trainers.data_adapters.get_data_adapter`). A
# `keras.utils.PyDataset` would be read ahead by a background thread, so
# its batches would be collected with whatever weights that thread
# happened to see; an adapter of our own controls when a batch is made.
from keras_custom.core.keras_internals import DataAdapter


def _environment_state(env) -> bytes:
    """A snapshot of an environment: the environment pickled, wrappers and all.

    A `gymnasium` environment keeps its physical state, its random generator
    and its wrappers' counters (the time limit's elapsed steps) in plain
    attributes, all of which a pickle holds.
    """
    try:
        return pickle.dumps(env, protocol=5)
    except Exception as error:
        raise ValueError(
            "An experience dataset with `save_state=True` saves its "
            f"environments with pickle, and {env!r} cannot be pickled "
            f"({error}). Build it without rendering, or with `save_state="
            "False`."
        ) from error


def _restore_environment(env, snapshot: bytes) -> None:
    """Puts the state of `_environment_state`'s snapshot into `env`.

    Each level of the wrapper chain (`env`, `env.env`, ...) takes the
    attributes of the same level of the snapshot, so `env` stays the object
    the caller holds.
    """
    saved = pickle.loads(snapshot)
    target = env
    while True:
        if type(saved) is not type(target):
            raise ValueError(
                f"The saved environment is a {type(saved).__name__} where the "
                f"dataset's is a {type(target).__name__}: build the same "
                "environments as the run that saved the checkpoint."
            )
        inner_saved = vars(saved).get("env")
        inner_target = vars(target).get("env")
        vars(target).update({k: v for k, v in vars(saved).items() if k != "env"})
        if inner_saved is None or inner_target is None:
            return
        saved, target = inner_saved, inner_target


def positive_int(value, name: str) -> int:
    """`value` as an `int`, or a `ValueError` naming the argument `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Got: {value!r}.")
    return int(value)


def as_environments(env) -> list:
    """`env` (one environment or a sequence of them) as a non-empty list."""
    envs = list(env) if isinstance(env, Sequence) else [env]
    if not envs:
        raise ValueError("An experience dataset needs at least one environment.")
    for each in envs:
        if not (callable(getattr(each, "reset", None)) and callable(each.step)):
            raise ValueError(
                "Environments must follow the `gymnasium.Env` API (`reset()` "
                f"and `step(action)`). Got: {each!r}."
            )
    return envs


class ExperienceDataset(DataAdapter):
    """Batches made from environments, each when a training step asks for it.

    The base of `ReplayBufferDataset` and `RolloutDataset`: give one to
    `fit()` (or `evaluate()`) in place of data, with `steps_per_epoch` (or
    `steps`) setting the number of batches, since experience never runs
    out. A batch is collected when the step that trains on it starts, with
    the weights every earlier step left, never read ahead by a background
    thread: the policy that acts is the current one, and a run with fixed
    seeds is repeatable. Each environment (the `gymnasium.Env` API:
    `reset(seed=...)` and `step(action)` returning five values) is reset
    with `seed + index` the first time and by its own random state after
    each episode; environments are stepped together, their observations
    batched through the model at once.

    Subclasses give `next_batch()`. Finished episodes are recorded in
    `episode_returns` and `episode_lengths` (read by the `EpisodeReturn`
    callback); `environment_steps` counts the steps of all environments.

    `get_state()` and `set_state()` snapshot and restore everything that
    decides the batches to come: the environments (pickled, wrappers
    included), the current observations, the random generator, the counters
    and the episode records. With `save_state=True`,
    `keras_custom.callbacks.BackupAndRestore` saves that state with each
    checkpoint and restores it, so a killed run resumes as if never stopped.
    The environments must then be picklable (gymnasium's classic-control
    environments are, unless they render to a window). Subclasses with more
    state extend both methods.

    Args:
        env: A `gymnasium.Env`, or a list of them stepped together.
        model: The model whose policy acts.
        seed: Seed of the environments' first reset and of the dataset's
            own random numbers (sampling, exploration).
        save_state: Whether `keras_custom.callbacks.BackupAndRestore` saves
            the dataset's state with its checkpoints.

    Example:

    Online Q-learning without a replay buffer: each batch is the latest
    epsilon-greedy transition of every environment.

    ```python
    import gymnasium as gym
    import keras
    import numpy as np
    from keras_custom import DQN
    from keras_custom.reinforcement import EpisodeReturn, ExperienceDataset


    class OnlineTransitions(ExperienceDataset):
        def next_batch(self):
            observations = self.observations
            greedy = self.model.greedy_actions(observations)
            explore = self.rng.random(self.num_envs) < 0.1
            random = self.rng.integers(0, 2, size=self.num_envs)
            actions = np.where(explore, random, greedy).astype("int64")
            next_observations, rewards, terminated, _ = self.step(actions)
            return {"observation": observations, "action": actions,
                    "reward": rewards, "next_observation": next_observations,
                    "terminated": terminated}


    q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = DQN(q_network, target_update_period=10)
    model.compile()
    envs = [gym.make("CartPole-v1") for _ in range(8)]
    transitions = OnlineTransitions(envs, model, seed=0)
    model.fit(transitions, steps_per_epoch=10, epochs=2, verbose=0,
              callbacks=[EpisodeReturn(transitions)])
    print(transitions.environment_steps, transitions.episode_returns[:3])
    ```
    """

    def __init__(self, env, model, seed: int | None = None, save_state: bool = False):
        self.envs = as_environments(env)
        if not callable(getattr(model, "greedy_actions", None)):
            raise ValueError(
                "An experience dataset acts with a model that has "
                f"`greedy_actions` (DQN, ActorCritic). Got: {model!r}."
            )
        self.model = model
        self.seed = seed
        self.save_state = bool(save_state)
        self.rng = np.random.default_rng(seed)
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.environment_steps = 0
        self._observations = None
        self._returns = np.zeros(len(self.envs))
        self._lengths = np.zeros(len(self.envs), "int64")
        self._pending = None
        self._example = None

    @property
    def num_envs(self) -> int:
        """The number of environments stepped together."""
        return len(self.envs)

    @property
    def observations(self) -> np.ndarray:
        """The current observation of every environment, stacked."""
        if self._observations is None:
            self._observations = np.stack(
                [
                    self._reset(env, None if self.seed is None else self.seed + i)
                    for i, env in enumerate(self.envs)
                ]
            )
        return self._observations

    @staticmethod
    def _reset(env, seed) -> np.ndarray:
        observation, _ = env.reset(seed=seed)
        return np.asarray(observation, "float32")

    def step(self, actions) -> tuple[np.ndarray, ...]:
        """Steps every environment with its action.

        An environment whose episode ends is reset, and its episode's return
        and length are recorded.

        Returns:
            `(next_observations, rewards, terminated, truncated)`, one row
            per environment; `next_observations` are the observations the
            actions led to (the last one of an episode that ended), while
            `observations` holds those of the next step.
        """
        current = self.observations.copy()
        next_observations = np.empty_like(current)
        rewards = np.zeros(self.num_envs, "float32")
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        for index, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            # A discrete action as a Python int, a continuous one as its array.
            action = action.item() if np.ndim(action) == 0 else action
            observation, reward, ends, cut, _ = env.step(action)
            next_observations[index] = observation
            rewards[index], terminated[index], truncated[index] = reward, ends, cut
            self._returns[index] += reward
            self._lengths[index] += 1
            if ends or cut:
                self.episode_returns.append(float(self._returns[index]))
                self.episode_lengths.append(int(self._lengths[index]))
                self._returns[index], self._lengths[index] = 0.0, 0
                observation = self._reset(env, None)
            current[index] = observation
        self._observations = current
        self.environment_steps += self.num_envs
        return next_observations, rewards, terminated, truncated

    def next_batch(self) -> dict:
        """Collects experience and returns the next batch, a dict of arrays."""
        raise NotImplementedError

    # ------------------------------------------------------------------
    # State, for an exact resume
    # ------------------------------------------------------------------

    def get_state(self) -> dict:
        """A snapshot of everything that decides the batches to come.

        Returns:
            A dict of NumPy arrays and Python values (the environments as
            pickled bytes), independent of the dataset's later steps.

        Example:

        ```python
        import gymnasium as gym
        import keras
        from keras_custom import DQN
        from keras_custom.reinforcement import ReplayBufferDataset

        q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model = DQN(q_network)
        model.compile()
        replay = ReplayBufferDataset(gym.make("CartPole-v1"), model,
                                     batch_size=8, learning_starts=16, seed=0)
        replay.next_batch()
        state = replay.get_state()
        first = replay.next_batch()
        replay.set_state(state)
        again = replay.next_batch()
        assert all((first[k] == again[k]).all() for k in first)
        ```
        """
        return {
            "num_envs": self.num_envs,
            "environments": [_environment_state(env) for env in self.envs],
            "observations": _copy(self._observations),
            "rng": self.rng.bit_generator.state,
            "environment_steps": self.environment_steps,
            "episode_returns": list(self.episode_returns),
            "episode_lengths": list(self.episode_lengths),
            "returns": self._returns.copy(),
            "lengths": self._lengths.copy(),
            "pending": None if self._pending is None else dict(self._pending),
        }

    def set_state(self, state: dict) -> None:
        """Restores a snapshot of `get_state()` (see there for an example)."""
        if state["num_envs"] != self.num_envs:
            raise ValueError(
                f"The saved state has {state['num_envs']} environments; this "
                f"dataset has {self.num_envs}."
            )
        for env, snapshot in zip(self.envs, state["environments"], strict=True):
            _restore_environment(env, snapshot)
        self._observations = _copy(state["observations"])
        self.rng.bit_generator.state = state["rng"]
        self.environment_steps = int(state["environment_steps"])
        self.episode_returns = list(state["episode_returns"])
        self.episode_lengths = list(state["episode_lengths"])
        self._returns = state["returns"].copy()
        self._lengths = state["lengths"].copy()
        self._pending = state["pending"]

    def give_back(self, batch: dict) -> None:
        """Keeps `batch`, read but not trained on, as the next one served.

        On JAX, `fit()` reads a batch to build the model before its first
        step and then starts a new iterator; the core gives that batch
        back here so that the first step trains on it, as on TensorFlow.
        """
        self._pending = batch

    def __iter__(self) -> Iterator[dict]:
        while True:
            yield self._take()

    def _take(self) -> dict:
        if self._pending is not None:
            batch, self._pending = self._pending, None
            return batch
        return self.next_batch()

    # ------------------------------------------------------------------
    # What `fit()` asks of a data adapter
    # ------------------------------------------------------------------

    def get_tf_dataset(self):
        if self._example is None:
            self._pending = self._example = self.next_batch()
        return unbuffered_dataset(self.__iter__, self._example)

    def get_numpy_iterator(self):
        return iter(self)

    def get_jax_iterator(self):
        return iter(self)

    def get_torch_dataloader(self):
        return iter(self)

    @property
    def num_batches(self):
        return None  # endless: `fit(steps_per_epoch=...)` sets the count

    @property
    def batch_size(self):
        return None

    @property
    def has_partial_batch(self):
        return False

    @property
    def partial_batch_size(self):
        return None


def _copy(array):
    return None if array is None else np.array(array)
