"""`evaluate_policy`: the mean and spread of a greedy policy's returns."""

import numpy as np


def evaluate_policy(
    model,
    env,
    episodes: int = 20,
    seed: int | None = None,
    max_steps: int | None = None,
) -> tuple[float, float]:
    """Runs the model's greedy policy for whole episodes; returns its returns.

    Each episode starts from `env.reset(seed=seed + episode)` (or the
    environment's own random state without `seed`) and takes
    `model.greedy_actions` until the episode terminates or is truncated
    (or after `max_steps` steps).

    Args:
        model: A model with `greedy_actions(observations)` (`DQN`,
            `ActorCritic`).
        env: A `gymnasium.Env` with discrete actions.
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
    mean, std = evaluate_policy(DQN(q_network), gym.make("CartPole-v1"),
                                episodes=3, seed=0)
    ```
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"`episodes` must be a positive integer. Got: {episodes!r}.")
    if not callable(getattr(model, "greedy_actions", None)):
        raise ValueError(
            f"`evaluate_policy` needs a model with `greedy_actions`. Got: {model!r}."
        )
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=None if seed is None else seed + episode)
        total, steps, done = 0.0, 0, False
        while not done and (max_steps is None or steps < max_steps):
            action = model.greedy_actions(np.asarray(observation, "float32")[None])[0]
            observation, reward, terminated, truncated, _ = env.step(action.item())
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))
