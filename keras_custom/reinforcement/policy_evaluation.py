"""`PolicyEvaluation`: greedy evaluations during `fit()`, keeping the best."""

import math

import keras

from keras_custom.reinforcement.evaluate_policy import evaluate_policy


class PolicyEvaluation(keras.callbacks.Callback):
    """Evaluates the greedy policy as training goes and keeps the best one.

    Reinforcement learning is not monotone: a policy that balances the pole
    at one epoch can collapse a few epochs later, and where that happens
    depends on the exact floating-point path of the run, so on the machine.
    This callback does what practitioners do (Stable-Baselines3's
    `EvalCallback`, the "best model" of the RL Zoo): every `every` epochs it
    runs `evaluate_policy` on its own environments, adds `greedy_return` and
    `greedy_return_std` to the epoch's logs (NaN in the epochs it does not
    evaluate), remembers the weights of the best evaluation, and, with
    `restore_best_policy=True`, puts them back in the model when `fit()`
    ends, as `EarlyStopping(restore_best_weights=True)` does. With
    `target_return` it stops training as soon as an evaluation reaches it.

    Give it environments of its own, and seeds apart from the ones that
    report the final score, so that the policy is chosen on other episodes
    than the ones it is scored on. The best evaluation is kept across
    several `fit()` calls with the same callback; `best_return`,
    `best_epoch` and `evaluations` hold the record.

    Args:
        env: A `gymnasium.Env` with discrete actions, or a list of copies
            of one (their episodes run together, which is faster).
        episodes: Episodes of each evaluation.
        seed: Seed of the first episode's reset; episode `i` uses
            `seed + i`, the same episodes at every evaluation.
        every: Epochs between evaluations.
        restore_best_policy: Whether the model gets the weights of the best
            evaluation back when `fit()` ends.
        target_return: A mean greedy return at which to stop training.
        min_episode_return: Optional gate: an epoch whose training
            `episode_return` (logged by `EpisodeReturn`, listed before this
            callback) is below it is not evaluated, which saves the time of
            evaluating policies that are clearly not good yet.
        max_steps: Optional cap on the steps of an evaluation episode.

    Example:

    An actor-critic with a shared trunk, evaluated once its training
    episodes return 15 or more:

    ```python
    import gymnasium as gym
    import keras
    from keras_custom import ActorCritic
    from keras_custom.reinforcement import (
        EpisodeReturn, PolicyEvaluation, RolloutDataset)

    inputs = keras.Input((4,))
    trunk = keras.layers.Dense(32, activation="relu")(inputs)
    heads = [keras.layers.Dense(2)(trunk), keras.layers.Dense(1)(trunk)]
    model = ActorCritic(keras.Model(inputs, heads))  # [logits, values]
    model.compile()
    rollouts = RolloutDataset([gym.make("CartPole-v1") for _ in range(4)], model,
                              seed=0)
    evaluation = PolicyEvaluation(
        [gym.make("CartPole-v1") for _ in range(5)], episodes=5, seed=1_000,
        min_episode_return=15.0)
    history = model.fit(rollouts, steps_per_epoch=5, epochs=3, verbose=0,
                        callbacks=[EpisodeReturn(rollouts), evaluation])
    history.history["greedy_return"], evaluation.best_return
    ```

    Reference:
        Raffin et al., "Stable-Baselines3: Reliable Reinforcement Learning
        Implementations", JMLR 2021 (https://jmlr.org/papers/v22/20-1364.html);
        Henderson et al., "Deep Reinforcement Learning that Matters", AAAI
        2018 (https://arxiv.org/abs/1709.06560), on the variance of returns
        between runs.
    """

    def __init__(
        self,
        env,
        episodes: int = 10,
        seed: int | None = None,
        every: int = 1,
        restore_best_policy: bool = True,
        target_return: float | None = None,
        min_episode_return: float | None = None,
        max_steps: int | None = None,
    ):
        super().__init__()
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ValueError(
                f"`episodes` must be a positive integer. Got: {episodes!r}."
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer. Got: {every!r}.")
        self.env = env
        self.episodes = episodes
        self.seed = seed
        self.every = every
        self.restore_best_policy = bool(restore_best_policy)
        self.target_return = target_return
        self.min_episode_return = min_episode_return
        self.max_steps = max_steps
        self.best_return = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: list | None = None
        self.evaluations: list[dict] = []

    def _skips(self, epoch: int, logs: dict) -> bool:
        if (epoch + 1) % self.every:
            return True
        if self.min_episode_return is None:
            return False
        if "episode_return" not in logs:
            raise ValueError(
                "`PolicyEvaluation(min_episode_return=...)` reads the epoch's "
                "`episode_return`: list `EpisodeReturn(dataset)` before it in "
                "`callbacks`."
            )
        # NaN (no finished episode) is not above the gate either.
        return not logs["episode_return"] >= self.min_episode_return

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        if self._skips(epoch, logs):
            logs["greedy_return"] = math.nan
            logs["greedy_return_std"] = math.nan
            return
        mean, std = evaluate_policy(
            self.model, self.env, self.episodes, self.seed, self.max_steps
        )
        logs["greedy_return"] = mean
        logs["greedy_return_std"] = std
        self.evaluations.append({"epoch": epoch, "mean": mean, "std": std})
        if mean > self.best_return:
            self.best_return, self.best_epoch = mean, epoch
            self.best_weights = self.model.get_weights()
        if self.target_return is not None and mean >= self.target_return:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_policy and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
