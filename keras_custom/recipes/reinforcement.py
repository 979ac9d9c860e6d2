"""Networks, hyperparameters and a training loop for `ActorCritic`, `DQN`
and `PPO` on CartPole (and PPO on Acrobot and Pendulum).

The reinforcement learning benchmarks (`benchmarks/reinforcement.py`,
`benchmarks/ppo.py`), their quality tests, the `actor_critic` demo and the
notebooks share this module, so that they all train the same agents the
same way. The main task is `gymnasium`'s `CartPole-v1` (`ENV_ID`): two
actions, episodes of at most 500 steps, a return of 500 for a perfect
policy and about 22 for the uniformly random one.

- `cartpole_actor_critic(seed)`: an `ActorCritic` (A2C) with two small tanh
  MLPs, and the `RolloutDataset` of vectorized environments it trains on;
- `cartpole_dqn(seed)`: a double `DQN` with a 256x256 ReLU Q-network and a
  soft target update, and its `ReplayBufferDataset`;
- `cartpole_ppo(seed)`, `acrobot_ppo(seed)`, `pendulum_ppo(seed)`: a `PPO`
  with two small tanh MLPs (a Gaussian policy for Pendulum) and its
  `PPORolloutDataset`; `ppo_updates(dataset, steps)` converts an
  environment-step budget into updates;
- `best_policy_callback(target_return)`: a `PolicyEvaluation` on episodes
  of its own (`SELECTION_EPISODES` from `SELECTION_SEED`), which keeps the
  best greedy policy of a run and can stop it at a target return;
- `train_agent(model, dataset, ...)`: `fit()` with `EpisodeReturn`, one
  epoch at a time, until an update, time or environment-step budget runs
  out or, optionally, until the greedy policy reaches a mean return
  (`evaluate_policy`);
- `random_policy_return(...)`: the baseline, the mean return of uniformly
  random actions.

Example:

```python
from keras_custom.recipes import reinforcement

model, dataset = reinforcement.cartpole_actor_critic(seed=0)
result = reinforcement.train_agent(model, dataset, max_updates=100)
result["eval_mean"], result["history"]["episode_return"]
```
"""

import time
from typing import Any

import keras
import numpy as np

from keras_custom.reinforcement import (
    DQN,
    PPO,
    ActorCritic,
    EpisodeReturn,
    PolicyEvaluation,
    PPORolloutDataset,
    ReplayBufferDataset,
    RolloutDataset,
    evaluate_policy,
)

#: The environment of every recipe.
ENV_ID = "CartPole-v1"
#: Most return an episode of `ENV_ID` can have (its time limit).
MAX_RETURN = 500.0
#: Greedy evaluation: episodes, and seed of the first one's reset (apart from
#: every training seed).
EVAL_EPISODES = 20
EVAL_SEED = 10_000
#: Selection of the best policy during training (`best_policy_callback`):
#: episodes apart from the evaluation ones, so that the policy printed is
#: scored on episodes it was not chosen on.
SELECTION_EPISODES = 20
SELECTION_SEED = 20_000

#: Recipe of `cartpole_actor_critic` (A2C).
A2C_NUM_ENVS = 8
A2C_ROLLOUT_STEPS = 16
A2C_HIDDEN_UNITS = 64
A2C_GAMMA = 0.99
A2C_GAE_LAMBDA = 0.95
A2C_LEARNING_RATE = 1e-3
A2C_VALUE_WEIGHT = 0.5
A2C_ENTROPY_WEIGHT = 0.0
A2C_CLIPNORM = 0.5
#: Updates (rollouts) per epoch of `train_agent` for A2C.
A2C_STEPS_PER_EPOCH = 50

#: Recipe of `cartpole_dqn`: double DQN with a soft target update (`tau`
#: every update), two environment steps per update of 256 transitions.
DQN_HIDDEN_UNITS = 256
DQN_GAMMA = 0.99
DQN_LEARNING_RATE = 1e-3
DQN_CLIPNORM = 10.0
DQN_BATCH_SIZE = 256
DQN_CAPACITY = 100_000
DQN_LEARNING_STARTS = 1_000
DQN_STEPS_PER_BATCH = 2
DQN_TARGET_UPDATE_PERIOD = 1
DQN_TAU = 0.005
DQN_EPSILON_START = 1.0
DQN_EPSILON_END = 0.04
DQN_EPSILON_DECAY_STEPS = 10_000
#: Updates per epoch of `train_agent` for DQN.
DQN_STEPS_PER_EPOCH = 500

#: Recipe of `cartpole_ppo`, Stable-Baselines3's RL Zoo CartPole-v1 settings:
#: 8 environments, rollouts of 32 steps (256 transitions), 20 passes of one
#: minibatch of 256 per rollout, learning rate and clip range decaying
#: linearly to 0 over `PPO_BUDGET_STEPS` environment steps.
PPO_NUM_ENVS = 8
PPO_ROLLOUT_STEPS = 32
PPO_UPDATE_EPOCHS = 20
PPO_MINIBATCHES = 1
PPO_HIDDEN_UNITS = 64
PPO_GAMMA = 0.98
PPO_GAE_LAMBDA = 0.8
PPO_LEARNING_RATE = 1e-3
PPO_CLIP_RATIO = 0.2
PPO_VALUE_WEIGHT = 0.5
PPO_ENTROPY_WEIGHT = 0.0
PPO_CLIPNORM = 0.5
#: Environment steps of the CartPole budget (the schedules' length).
PPO_BUDGET_STEPS = 100_000

#: `acrobot_ppo`: Acrobot-v1 (three actions, -1 per step until the tip
#: swings above the line, episodes of at most 500 steps; random actions:
#: about -494).
ACROBOT_ID = "Acrobot-v1"
ACROBOT_NUM_ENVS = 16
ACROBOT_ROLLOUT_STEPS = 128
ACROBOT_UPDATE_EPOCHS = 4
ACROBOT_MINIBATCHES = 8
ACROBOT_LEARNING_RATE = 1e-3
ACROBOT_GAMMA = 0.99
ACROBOT_GAE_LAMBDA = 0.94

#: `pendulum_ppo`: Pendulum-v1 (one continuous torque in [-2, 2], episodes
#: of 200 steps; random actions: about -1,118).
PENDULUM_ID = "Pendulum-v1"
PENDULUM_NUM_ENVS = 8
PENDULUM_ROLLOUT_STEPS = 256
PENDULUM_UPDATE_EPOCHS = 10
PENDULUM_MINIBATCHES = 32
PENDULUM_LEARNING_RATE = 1e-3
PENDULUM_GAMMA = 0.9
PENDULUM_GAE_LAMBDA = 0.95
#: Environment steps over which `pendulum_ppo`'s learning rate and clip
#: range decay to 0 (60 rollouts of 2,048): with a constant rate, seed 0's
#: greedy return fell back below -600 during 3 minutes of training.
PENDULUM_BUDGET_STEPS = 122_880


def make_env(seed: int | None = None, env_id: str = ENV_ID):
    """A `gymnasium` environment, by default `CartPole-v1` (`ENV_ID`).

    Args:
        seed: Optional seed of its action space (the resets are seeded by
            the datasets and by `evaluate_policy`).
        env_id: The `gymnasium` id of the environment.

    Returns:
        The environment.
    """
    import gymnasium as gym

    env = gym.make(env_id)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def _mlp(units: int, outputs: int, activation: str, name: str) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(units, activation=activation),
            keras.layers.Dense(units, activation=activation),
            keras.layers.Dense(outputs),
        ],
        name=name,
    )


def cartpole_actor_critic(
    seed: int = 0,
    num_envs: int = A2C_NUM_ENVS,
    rollout_steps: int = A2C_ROLLOUT_STEPS,
    learning_rate: float = A2C_LEARNING_RATE,
    entropy_weight: float = A2C_ENTROPY_WEIGHT,
) -> tuple[ActorCritic, RolloutDataset]:
    """An A2C agent for CartPole and the rollouts it trains on.

    Seeds Keras (`keras.utils.set_random_seed(seed)`), then builds a policy
    and a value network, each 4 -> `A2C_HIDDEN_UNITS` tanh ->
    `A2C_HIDDEN_UNITS` tanh -> 2 logits (1 value), an `ActorCritic`
    compiled with Adam (`learning_rate`, gradients clipped to a global norm
    of `A2C_CLIPNORM`), and a `RolloutDataset` of `num_envs` environments,
    `rollout_steps` steps each per update, GAE with `A2C_GAMMA` and
    `A2C_GAE_LAMBDA`, normalized advantages.

    Args:
        seed: Seed of the initialization, the environments and sampling.
        num_envs: Environments stepped together.
        rollout_steps: Steps of each environment per update.
        learning_rate: Adam's learning rate.
        entropy_weight: Weight of the entropy bonus.

    Returns:
        `(model, dataset)`: the compiled `ActorCritic` and its
        `RolloutDataset`; train with `model.fit(dataset,
        steps_per_epoch=...)` or `train_agent`.
    """
    keras.utils.set_random_seed(seed)
    model = ActorCritic(
        _mlp(A2C_HIDDEN_UNITS, 2, "tanh", "policy"),
        _mlp(A2C_HIDDEN_UNITS, 1, "tanh", "value"),
        value_weight=A2C_VALUE_WEIGHT,
        entropy_weight=entropy_weight,
        name="actor_critic",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=A2C_CLIPNORM)
    )
    dataset = RolloutDataset(
        [make_env(seed + i) for i in range(num_envs)],
        model,
        rollout_steps=rollout_steps,
        gamma=A2C_GAMMA,
        gae_lambda=A2C_GAE_LAMBDA,
        normalize_advantages=True,
        seed=seed,
    )
    return model, dataset


def cartpole_dqn(
    seed: int = 0,
    steps_per_batch: int = DQN_STEPS_PER_BATCH,
    batch_size: int = DQN_BATCH_SIZE,
    learning_rate: float = DQN_LEARNING_RATE,
    tau: float = DQN_TAU,
    target_update_period: int = DQN_TARGET_UPDATE_PERIOD,
    epsilon_decay_steps: int = DQN_EPSILON_DECAY_STEPS,
) -> tuple[DQN, ReplayBufferDataset]:
    """A DQN agent for CartPole and the replay buffer it trains on.

    Seeds Keras (`keras.utils.set_random_seed(seed)`), then builds a
    Q-network 4 -> `DQN_HIDDEN_UNITS` relu -> `DQN_HIDDEN_UNITS` relu -> 2,
    a double `DQN` whose target network moves `tau` of the way to the
    online one every `target_update_period` updates, compiled with Adam
    (`learning_rate`, gradients clipped to a global norm of
    `DQN_CLIPNORM`), and a `ReplayBufferDataset` of one environment:
    `DQN_LEARNING_STARTS` random steps first, then `steps_per_batch`
    epsilon-greedy steps per update of `batch_size` transitions, epsilon
    decaying linearly from `DQN_EPSILON_START` to `DQN_EPSILON_END` over
    `epsilon_decay_steps` environment steps.

    The rl-baselines3-zoo CartPole settings (learning rate 2.3e-3, a hard
    target copy every 10 updates) diverge here: their 128 gradient steps
    every 256 environment steps keep the target fixed for 128 updates,
    while `target_update_period=10` copies it every 10 updates.

    Args:
        seed: Seed of the initialization, the environment, exploration and
            sampling.
        steps_per_batch: Environment steps per update.
        batch_size: Transitions per update.
        learning_rate: Adam's learning rate.
        tau: Fraction of the way the target network moves at an update.
        target_update_period: Updates between target network updates.
        epsilon_decay_steps: Environment steps over which epsilon decays.

    Returns:
        `(model, dataset)`: the compiled `DQN` and its replay buffer; train
        them with `train_agent` or `model.fit(dataset, steps_per_epoch=...)`.
    """
    keras.utils.set_random_seed(seed)
    model = DQN(
        _mlp(DQN_HIDDEN_UNITS, 2, "relu", "q_network"),
        gamma=DQN_GAMMA,
        tau=tau,
        target_update_period=target_update_period,
        double_q=True,
        name="dqn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=DQN_CLIPNORM)
    )
    epsilon = keras.optimizers.schedules.PolynomialDecay(
        DQN_EPSILON_START, epsilon_decay_steps, DQN_EPSILON_END
    )
    return model, ReplayBufferDataset(
        make_env(seed),
        model,
        batch_size=batch_size,
        capacity=DQN_CAPACITY,
        learning_starts=DQN_LEARNING_STARTS,
        steps_per_batch=steps_per_batch,
        epsilon=epsilon,
        seed=seed,
    )


def _ppo_mlp(
    inputs: int, units: int, outputs: int, output_gain: float, name: str
) -> keras.Model:
    """`inputs` -> `units` tanh -> `units` tanh -> `outputs`, orthogonally
    initialized (gain sqrt(2) for the hidden layers) as in the PPO papers'
    code and Stable-Baselines3."""
    hidden = keras.initializers.Orthogonal(gain=float(np.sqrt(2.0)))
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(units, activation="tanh", kernel_initializer=hidden),
            keras.layers.Dense(units, activation="tanh", kernel_initializer=hidden),
            keras.layers.Dense(
                outputs, kernel_initializer=keras.initializers.Orthogonal(output_gain)
            ),
        ],
        name=name,
    )


def _ppo_agent(
    env_id: str,
    seed: int,
    num_envs: int,
    rollout_steps: int,
    update_epochs: int,
    minibatches: int,
    learning_rate: float,
    gamma: float,
    gae_lambda: float,
    clip_ratio: float = PPO_CLIP_RATIO,
    clipnorm: float | None = PPO_CLIPNORM,
    decay_steps: int | None = None,
    continuous_actions: bool = False,
) -> tuple[PPO, PPORolloutDataset]:
    """A PPO agent for `env_id`: two `PPO_HIDDEN_UNITS` x 2 tanh MLPs,
    Adam (epsilon 1e-5), and its `PPORolloutDataset`. With `decay_steps`,
    the learning rate and the clip range decay linearly to 0 over the
    updates of that many environment steps."""
    keras.utils.set_random_seed(seed)
    envs = [make_env(seed + i, env_id) for i in range(num_envs)]
    inputs = int(np.prod(envs[0].observation_space.shape))
    space = envs[0].action_space
    outputs = int(np.prod(space.shape)) if continuous_actions else int(space.n)
    clip: Any = clip_ratio
    rate: Any = learning_rate
    if decay_steps is not None:
        rollout_size = num_envs * rollout_steps
        updates = max(1, decay_steps // rollout_size * update_epochs * minibatches)
        clip = keras.optimizers.schedules.PolynomialDecay(clip_ratio, updates, 0.0)
        rate = keras.optimizers.schedules.PolynomialDecay(learning_rate, updates, 0.0)
    model = PPO(
        _ppo_mlp(inputs, PPO_HIDDEN_UNITS, outputs, 0.01, "policy"),
        _ppo_mlp(inputs, PPO_HIDDEN_UNITS, 1, 1.0, "value"),
        clip_ratio=clip,
        value_weight=PPO_VALUE_WEIGHT,
        entropy_weight=PPO_ENTROPY_WEIGHT,
        update_epochs=update_epochs,
        minibatches=minibatches,
        continuous_actions=continuous_actions,
        name="ppo",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(rate, epsilon=1e-5, global_clipnorm=clipnorm)
    )
    dataset = PPORolloutDataset(
        envs,
        model,
        rollout_steps=rollout_steps,
        gamma=gamma,
        gae_lambda=gae_lambda,
        seed=seed,
    )
    return model, dataset


def cartpole_ppo(
    seed: int = 0,
    num_envs: int = PPO_NUM_ENVS,
    rollout_steps: int = PPO_ROLLOUT_STEPS,
    update_epochs: int = PPO_UPDATE_EPOCHS,
    minibatches: int = PPO_MINIBATCHES,
    learning_rate: float = PPO_LEARNING_RATE,
    budget_steps: int = PPO_BUDGET_STEPS,
) -> tuple[PPO, PPORolloutDataset]:
    """A PPO agent for CartPole and the rollouts it trains on.

    Seeds Keras (`keras.utils.set_random_seed(seed)`), then builds a policy
    and a value network, each 4 -> `PPO_HIDDEN_UNITS` tanh ->
    `PPO_HIDDEN_UNITS` tanh -> 2 logits (1 value), orthogonally initialized
    (output gains 0.01 and 1); a `PPO` with `PPO_CLIP_RATIO`,
    `PPO_VALUE_WEIGHT` and `PPO_ENTROPY_WEIGHT`, compiled with Adam
    (`learning_rate`, epsilon 1e-5, gradients clipped to a global norm of
    `PPO_CLIPNORM`); and a `PPORolloutDataset` of `num_envs` environments,
    `rollout_steps` steps each per rollout, GAE with `PPO_GAMMA` and
    `PPO_GAE_LAMBDA`. The learning rate and the clip range decay linearly
    to 0 over the updates of `budget_steps` environment steps.

    Args:
        seed: Seed of the initialization, the environments and sampling.
        num_envs: Environments stepped together.
        rollout_steps: Steps of each environment per rollout.
        update_epochs: Passes over each rollout.
        minibatches: Minibatches of each pass.
        learning_rate: Adam's initial learning rate.
        budget_steps: Environment steps over which the schedules decay.

    Returns:
        `(model, dataset)`: the compiled `PPO` and its `PPORolloutDataset`;
        train with `train_agent` (`ppo_updates(dataset, budget_steps)`
        updates fit the budget) or `model.fit(dataset, steps_per_epoch=...)`.
    """
    return _ppo_agent(
        ENV_ID,
        seed,
        num_envs,
        rollout_steps,
        update_epochs,
        minibatches,
        learning_rate,
        PPO_GAMMA,
        PPO_GAE_LAMBDA,
        decay_steps=budget_steps,
    )


def acrobot_ppo(seed: int = 0) -> tuple[PPO, PPORolloutDataset]:
    """A PPO agent for `Acrobot-v1` (`ACROBOT_ID`) and its rollouts.

    The networks and optimizer of `cartpole_ppo` (6 inputs, 3 actions),
    with `ACROBOT_*` settings: 16 environments, rollouts of 128 steps,
    4 passes of 8 minibatches of 256, gamma 0.99, GAE lambda 0.94, a
    constant learning rate of 1e-3 (the budget is one of time).

    Args:
        seed: Seed of the initialization, the environments and sampling.

    Returns:
        `(model, dataset)`: the compiled `PPO` and its `PPORolloutDataset`.
    """
    return _ppo_agent(
        ACROBOT_ID,
        seed,
        ACROBOT_NUM_ENVS,
        ACROBOT_ROLLOUT_STEPS,
        ACROBOT_UPDATE_EPOCHS,
        ACROBOT_MINIBATCHES,
        ACROBOT_LEARNING_RATE,
        ACROBOT_GAMMA,
        ACROBOT_GAE_LAMBDA,
    )


def pendulum_ppo(
    seed: int = 0, budget_steps: int = PENDULUM_BUDGET_STEPS
) -> tuple[PPO, PPORolloutDataset]:
    """A PPO agent with a Gaussian policy for `Pendulum-v1` and its rollouts.

    The networks of `cartpole_ppo` (3 inputs, the mean of 1 action) and a
    state-independent log standard deviation starting at 0, with
    `PENDULUM_*` settings (after the RL Zoo's, without its generalized
    state-dependent exploration and normalization): 8 environments,
    rollouts of 256 steps, 10 passes of 32 minibatches of 64, gamma 0.9,
    GAE lambda 0.95, a learning rate of 1e-3 and the clip range decaying
    linearly to 0 over `budget_steps` environment steps, no gradient
    clipping (the value loss of Pendulum's unnormalized rewards would
    dominate a global norm).

    Args:
        seed: Seed of the initialization, the environments and sampling.
        budget_steps: Environment steps over which the schedules decay
            (training longer changes nothing).

    Returns:
        `(model, dataset)`: the compiled `PPO` and its `PPORolloutDataset`.
    """
    return _ppo_agent(
        PENDULUM_ID,
        seed,
        PENDULUM_NUM_ENVS,
        PENDULUM_ROLLOUT_STEPS,
        PENDULUM_UPDATE_EPOCHS,
        PENDULUM_MINIBATCHES,
        PENDULUM_LEARNING_RATE,
        PENDULUM_GAMMA,
        PENDULUM_GAE_LAMBDA,
        clipnorm=None,
        decay_steps=budget_steps,
        continuous_actions=True,
    )


def ppo_updates(dataset: PPORolloutDataset, environment_steps: int) -> int:
    """The updates of the whole rollouts of `dataset` that fit in
    `environment_steps` (without `target_kl`, an update count is an
    environment-step count)."""
    rollout_size = dataset.rollout_steps * dataset.num_envs
    return (
        environment_steps // rollout_size * dataset.update_epochs * dataset.minibatches
    )


def greedy_return(
    model,
    episodes: int = EVAL_EPISODES,
    seed: int = EVAL_SEED,
    env_id: str = ENV_ID,
) -> tuple[float, float]:
    """`evaluate_policy` of the model's greedy policy on fresh environments.

    Args:
        model: A `DQN`, an `ActorCritic` or a `PPO`.
        episodes: Number of episodes.
        seed: Seed of the first episode's reset.
        env_id: The environment, `ENV_ID` (CartPole-v1) by default.

    Returns:
        `(mean, std)` of the episode returns.
    """
    envs = [make_env(env_id=env_id) for _ in range(episodes)]
    return evaluate_policy(model, envs, episodes, seed=seed)


def best_policy_callback(target_return: float | None = MAX_RETURN) -> PolicyEvaluation:
    """A `PolicyEvaluation` that keeps the best greedy policy of a run.

    It evaluates the greedy policy after every epoch on
    `SELECTION_EPISODES` episodes of `ENV_ID` from `SELECTION_SEED` (apart
    from the `EVAL_SEED` episodes that score the final policy), restores the
    best one when `fit()` ends, and stops training once an evaluation
    reaches `target_return` (by default every episode to the time limit).

    Args:
        target_return: Mean greedy return at which training stops; `None`
            trains every epoch.

    Returns:
        The callback; give it to `fit()` after `EpisodeReturn`.
    """
    return PolicyEvaluation(
        [make_env() for _ in range(SELECTION_EPISODES)],
        episodes=SELECTION_EPISODES,
        seed=SELECTION_SEED,
        target_return=target_return,
    )


def random_policy_return(
    episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED
) -> tuple[float, float]:
    """`(mean, std)` of the returns of uniformly random actions on `ENV_ID`.

    Args:
        episodes: Number of episodes.
        seed: Seed of the first episode's reset (and of the actions).

    Returns:
        `(mean, std)` of the episode returns (about 22 on CartPole-v1).
    """
    env = make_env(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))


def train_agent(
    model,
    dataset,
    steps_per_epoch: int | None = None,
    max_updates: int | None = None,
    max_seconds: float | None = None,
    target_return: float | None = None,
    eval_every: int = 1,
    eval_gate: float | None = None,
    eval_episodes: int = EVAL_EPISODES,
    eval_seed: int = EVAL_SEED,
    verbose: int = 0,
    max_environment_steps: int | None = None,
    env_id: str = ENV_ID,
    stop_at_target: bool = True,
) -> dict[str, Any]:
    """Trains an agent with `fit()` and `EpisodeReturn`, one epoch per call.

    Each epoch is `model.fit(dataset, steps_per_epoch=steps_per_epoch)`
    with `EpisodeReturn(dataset)`; training stops when `max_updates`
    updates are done, `max_seconds` of training have passed or the dataset
    has taken `max_environment_steps` environment steps (each checked after
    each epoch), or, with `target_return`, as soon as a greedy
    evaluation (`greedy_return` over `eval_episodes` episodes from
    `eval_seed`) reaches it. Greedy evaluations run every `eval_every`
    epochs (and only when the epoch's training `episode_return` is at least
    `eval_gate`, if given); their time is not counted as training time. The
    final model is always evaluated.

    Args:
        model: The compiled `ActorCritic` or `DQN`.
        dataset: Its experience dataset.
        steps_per_epoch: Updates per epoch; defaults to
            `A2C_STEPS_PER_EPOCH` or `DQN_STEPS_PER_EPOCH`.
        max_updates: Budget of updates (optimizer steps).
        max_seconds: Budget of training wall time, in seconds.
        target_return: Greedy mean return at which to stop early.
        eval_every: Epochs between greedy evaluations during training.
        eval_gate: Training episode return below which an epoch is not
            evaluated greedily.
        eval_episodes: Episodes of each greedy evaluation.
        eval_seed: Seed of the first evaluation episode's reset.
        verbose: Verbosity of `fit()`.
        max_environment_steps: Budget of environment steps (of all the
            dataset's environments).
        env_id: The environment of the greedy evaluations (`ENV_ID`).
        stop_at_target: Whether training stops at the first evaluation that
            reaches `target_return`; `False` trains to the budget, still
            recording when the target was first reached.

    Returns:
        Dict with `"history"` (per epoch: `episode_return`, `episodes` and
        the model's losses), `"evaluations"` (a list of dicts with `epoch`,
        `updates`, `environment_steps`, `seconds`, `mean`, `std`),
        `"train_seconds"`, `"updates"`, `"environment_steps"`,
        `"seconds_to_target"`, `"updates_to_target"` and
        `"steps_to_target"` (`None` unless reached), `"eval_mean"` and
        `"eval_std"` (the final model's greedy return).
    """
    if max_updates is None and max_seconds is None and max_environment_steps is None:
        raise ValueError(
            "Give `max_updates`, `max_seconds` or `max_environment_steps`."
        )
    if steps_per_epoch is None:
        steps_per_epoch = (
            DQN_STEPS_PER_EPOCH if isinstance(model, DQN) else A2C_STEPS_PER_EPOCH
        )
    history: dict[str, list[float]] = {}
    evaluations = []
    train_seconds, updates, epoch = 0.0, 0, 0
    reached = None
    last = None
    while True:
        steps = steps_per_epoch
        if max_updates is not None:
            steps = min(steps, max_updates - updates)
        if steps <= 0:
            break
        start = time.perf_counter()
        logs = model.fit(
            dataset,
            steps_per_epoch=steps,
            epochs=1,
            verbose=verbose,
            callbacks=[EpisodeReturn(dataset)],
        ).history
        train_seconds += time.perf_counter() - start
        updates += steps
        epoch += 1
        for key, values in logs.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        training_return = history["episode_return"][-1]
        out_of_time = (max_seconds is not None and train_seconds >= max_seconds) or (
            max_environment_steps is not None
            and dataset.environment_steps >= max_environment_steps
        )
        gated = eval_gate is not None and not training_return >= eval_gate
        if target_return is not None and epoch % eval_every == 0 and not gated:
            mean, std = greedy_return(model, eval_episodes, eval_seed, env_id)
            last = (updates, mean, std)
            evaluations.append(
                {
                    "epoch": epoch,
                    "updates": updates,
                    "environment_steps": dataset.environment_steps,
                    "seconds": train_seconds,
                    "mean": mean,
                    "std": std,
                }
            )
            if mean >= target_return and reached is None:
                reached = evaluations[-1]
            if reached is not None and stop_at_target:
                break
        if out_of_time:
            break
    if last is not None and last[0] == updates:
        eval_mean, eval_std = last[1], last[2]
    else:
        eval_mean, eval_std = greedy_return(model, eval_episodes, eval_seed, env_id)
    return {
        "history": history,
        "evaluations": evaluations,
        "train_seconds": train_seconds,
        "updates": updates,
        "environment_steps": dataset.environment_steps,
        "seconds_to_target": None if reached is None else reached["seconds"],
        "updates_to_target": None if reached is None else reached["updates"],
        "steps_to_target": None if reached is None else reached["environment_steps"],
        "eval_mean": eval_mean,
        "eval_std": eval_std,
        "reached": reached is not None,
    }
