"""`RolloutDataset`: on-policy rollouts of vectorized environments, with GAE."""

import numpy as np

from keras_custom.reinforcement.advantages import generalized_advantage_estimation
from keras_custom.reinforcement.experience_dataset import (
    ExperienceDataset,
    positive_int,
)


def sample_categorical(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of `logits`, drawn with the Gumbel-max trick."""
    gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, size=logits.shape)))
    return np.argmax(logits + gumbel, axis=-1)


class RolloutDataset(ExperienceDataset):
    """Rollouts of the current policy for `ActorCritic`, one per step.

    Each batch steps every environment `rollout_steps` times with actions
    sampled from the model's policy, then computes the advantages by
    generalized advantage estimation from the model's values
    (`generalized_advantage_estimation`), and returns the
    `rollout_steps * num_envs` transitions `{"observation", "action",
    "advantage", "return"}`. Episodes that end within a rollout are cut
    there; an episode cut by a time limit (`truncated`) bootstraps the value
    of its last observation. Give it to `fit()` with `steps_per_epoch`
    (updates per epoch). See `ExperienceDataset` for when batches are made.

    Args:
        env: A `gymnasium.Env` with discrete actions, or a list of them (the
            vectorized environments, stepped together).
        model: The `ActorCritic` (anything with `policy_and_value`).
        rollout_steps: Steps of each environment per batch (n in n-step).
        gamma: Discount factor.
        gae_lambda: GAE smoothing factor, in [0, 1].
        normalize_advantages: Whether each batch's advantages are scaled to
            zero mean and unit standard deviation.
        seed: Seed of the environments' first reset and of the sampling.
        save_state: Whether `keras_custom.callbacks.BackupAndRestore` saves
            the dataset's state (environments, observations, random
            generator, counters) with its checkpoints, for an exact resume
            (see `ExperienceDataset`).

    Example:

    ```python
    import gymnasium as gym
    import keras
    from keras_custom import ActorCritic
    from keras_custom.reinforcement import RolloutDataset

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    value = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model = ActorCritic(policy, value)
    model.compile()
    envs = [gym.make("CartPole-v1") for _ in range(4)]
    rollouts = RolloutDataset(envs, model, rollout_steps=8, seed=0)
    model.fit(rollouts, steps_per_epoch=5, epochs=2, verbose=0)
    ```

    Reference:
        Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning",
        ICML 2016 (https://arxiv.org/abs/1602.01783), the synchronous A2C
        variant.
    """

    def __init__(
        self,
        env,
        model,
        rollout_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        normalize_advantages: bool = True,
        seed: int | None = None,
        save_state: bool = False,
    ):
        super().__init__(env, model, seed, save_state=save_state)
        if not callable(getattr(model, "policy_and_value", None)):
            raise ValueError(
                "`RolloutDataset` needs a model with `policy_and_value` "
                f"(an `ActorCritic`). Got: {model!r}."
            )
        if not 0.0 <= gae_lambda <= 1.0 or not 0.0 <= gamma <= 1.0:
            raise ValueError(
                f"`gamma` and `gae_lambda` must be in [0, 1]. Got: {gamma}, "
                f"{gae_lambda}."
            )
        self.rollout_steps = positive_int(rollout_steps, "rollout_steps")
        self.gamma = float(gamma)
        self.gae_lambda = float(gae_lambda)
        self.normalize_advantages = bool(normalize_advantages)

    def next_batch(self) -> dict:
        steps, envs = self.rollout_steps, self.num_envs
        observations = np.empty((steps, envs) + self.observations.shape[1:], "float32")
        actions = np.empty((steps, envs), "int64")
        rewards = np.empty((steps, envs), "float32")
        values = np.empty((steps, envs), "float32")
        dones = np.empty((steps, envs), bool)
        for t in range(steps):
            observations[t] = self.observations
            logits, values[t] = self.model.policy_and_value(observations[t])
            actions[t] = sample_categorical(logits, self.rng)
            next_observations, rewards[t], terminated, truncated = self.step(actions[t])
            cut = truncated & ~terminated
            if cut.any():
                _, final_values = self.model.policy_and_value(next_observations[cut])
                rewards[t, cut] += self.gamma * final_values
            dones[t] = terminated | truncated
        _, last_values = self.model.policy_and_value(self.observations)
        advantages, returns = generalized_advantage_estimation(
            rewards, values, last_values, dones, self.gamma, self.gae_lambda
        )
        if self.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return {
            "observation": observations.reshape(
                (steps * envs,) + observations.shape[2:]
            ),
            "action": actions.reshape(-1),
            "advantage": advantages.reshape(-1),
            "return": returns.reshape(-1),
        }
