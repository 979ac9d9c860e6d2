"""`evaluate_policy`: the mean and spread of a greedy policy's returns."""

from collections.abc import Sequence

import numpy as np


def evaluate_policy(
    model,
    env,
    episodes: int = 20,
    seed: int | None = None,
    max_steps: int | None = None,
) -> tuple[float, float]:
    """Runs the model's greedy policy for whole episodes; returns its returns.

    Episode `i` starts from `env.reset(seed=seed + i)` (or the environment's
    own random state without `seed`) and takes `model.greedy_actions` until
    it terminates or is truncated (or after `max_steps` steps). Given a list
    of environments, the episodes run in groups of that size, stepped
    together with one batched call of the policy per step, which makes an
    evaluation several times faster than one environment at a time; episode
    `i` still starts from `seed + i`, so the returns are those of one
    environment for a deterministic environment such as CartPole.

    Args:
        model: A model with `greedy_actions(observations)` (`DQN`,
            `ActorCritic`, `PPO`).
        env: A `gymnasium.Env` with discrete or `Box` actions (a greedy
            continuous action is clipped to the box), or a list of them
            (copies of one environment).
        episodes: Number of episodes.
        seed: Seed of the first episode's reset; episode `i` uses
            `seed + i`.
        max_steps: Optional cap on the steps of an episode.

    Returns:
        `(mean, std)` of the undiscounted episode returns.

    Example:

    ```python
    import gymnasium as gym
    import keras
    from keras_custom import DQN
    from keras_custom.reinforcement import evaluate_policy

    q_network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    envs = [gym.make("CartPole-v1") for _ in range(4)]
    mean, std = evaluate_policy(DQN(q_network), envs, episodes=8, seed=0)
    ```
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"`episodes` must be a positive integer. Got: {episodes!r}.")
    if not callable(getattr(model, "greedy_actions", None)):
        raise ValueError(
            f"`evaluate_policy` needs a model with `greedy_actions`. Got: {model!r}."
        )
    envs = list(env) if isinstance(env, Sequence) else [env]
    if not envs:
        raise ValueError("`evaluate_policy` needs at least one environment.")
    returns = []
    for first in range(0, episodes, len(envs)):
        group = envs[: min(len(envs), episodes - first)]
        returns.extend(
            _run_episodes(
                model, group, None if seed is None else seed + first, max_steps
            )
        )
    return float(np.mean(returns)), float(np.std(returns))


def _run_episodes(model, envs, seed: int | None, max_steps: int | None) -> list:
    """One episode in each of `envs`, stepped together; their returns."""
    observations = [
        env.reset(seed=None if seed is None else seed + i)[0]
        for i, env in enumerate(envs)
    ]
    totals = [0.0] * len(envs)
    running = list(range(len(envs)))
    steps = 0
    while running and (max_steps is None or steps < max_steps):
        batch = np.stack([np.asarray(observations[i], "float32") for i in running])
        actions = np.asarray(model.greedy_actions(batch))
        still_running = []
        for i, action in zip(running, actions, strict=True):
            observations[i], reward, terminated, truncated, _ = envs[i].step(
                _environment_action(envs[i], action)
            )
            totals[i] += float(reward)
            if not (terminated or truncated):
                still_running.append(i)
        running = still_running
        steps += 1
    return totals


def _environment_action(env, action: np.ndarray):
    """A discrete action as a Python int; a continuous one clipped to the
    environment's `Box` bounds."""
    if np.ndim(action) == 0:
        return action.item()
    space = getattr(env, "action_space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None:
        return action
    return np.clip(action, low, high).astype(np.asarray(low).dtype)
