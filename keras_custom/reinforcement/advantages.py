"""Generalized advantage estimation over a rollout, in NumPy."""

import numpy as np


def generalized_advantage_estimation(
    rewards: np.ndarray,
    values: np.ndarray,
    last_values: np.ndarray,
    dones: np.ndarray,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of a rollout of `T` steps of `N` environments.

    The advantage of step `t` is the exponentially weighted sum
    `sum_k (gamma * gae_lambda)^k * delta_{t+k}` of the temporal-difference
    errors `delta_t = rewards_t + gamma * V(s_{t+1}) - V(s_t)`, cut where an
    episode ends (`dones_t`: no value is bootstrapped across it). The
    returns, the value network's targets, are `advantages + values`.
    `gae_lambda=1` gives the discounted return minus the value (Monte Carlo
    to the end of the rollout); `gae_lambda=0` the one-step TD error.

    Args:
        rewards: `(T, N)` rewards. For an episode cut by a time limit, add
            `gamma * V(last observation)` to its last reward beforehand.
        values: `(T, N)` values of the observations the actions were taken in.
        last_values: `(N,)` values of the observations after the rollout.
        dones: `(T, N)` booleans: the episode ended with step `t`.
        gamma: Discount factor.
        gae_lambda: The GAE smoothing factor, in [0, 1].

    Returns:
        `(advantages, returns)`, both `(T, N)` float32.

    Example:

    ```python
    import numpy as np
    from keras_custom.reinforcement import generalized_advantage_estimation

    advantages, returns = generalized_advantage_estimation(
        rewards=np.ones((3, 1)), values=np.zeros((3, 1)),
        last_values=np.zeros(1), dones=np.array([[0], [0], [1]], bool),
        gamma=0.5, gae_lambda=1.0)
    assert np.allclose(returns[:, 0], [1.75, 1.5, 1.0])
    ```

    Reference:
        Schulman et al., "High-Dimensional Continuous Control Using
        Generalized Advantage Estimation", ICLR 2016
        (https://arxiv.org/abs/1506.02438), equation 16.
    """
    rewards = np.asarray(rewards, "float64")
    values = np.asarray(values, "float64")
    if rewards.ndim != 2 or values.shape != rewards.shape:
        raise ValueError(
            "`rewards` and `values` must both have the shape (steps, envs). "
            f"Got: {rewards.shape} and {values.shape}."
        )
    continues = 1.0 - np.asarray(dones, "float64").reshape(rewards.shape)
    next_values = np.concatenate(
        [values[1:], np.asarray(last_values, "float64").reshape(1, -1)]
    )
    deltas = rewards + gamma * continues * next_values - values
    advantages = np.zeros_like(deltas)
    running = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * gae_lambda * continues[t] * running
        advantages[t] = running
    return advantages.astype("float32"), (advantages + values).astype("float32")
