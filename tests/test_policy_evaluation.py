"""`evaluate_policy` over several environments and the `PolicyEvaluation` callback."""

import math

import keras
import numpy as np
import pytest

from keras_custom import DQN
from keras_custom.reinforcement import (
    EpisodeReturn,
    PolicyEvaluation,
    ReplayBufferDataset,
    evaluate_policy,
)
from tests.test_reinforcement import LineEnv, linear

#: Q-network weights whose greedy action is always 1 (return = episode
#: length on `LineEnv`) or always 0 (return 0).
ALWAYS_ONE = [np.zeros((2, 2)), np.array([0.0, 1.0])]
ALWAYS_ZERO = [np.zeros((2, 2)), np.array([1.0, 0.0])]


def dqn(weights=ALWAYS_ONE):
    model = DQN(linear(2))
    model.q_network.set_weights(weights)
    return model


def test_environments_stepped_together_give_each_episode_its_own_return():
    envs = [LineEnv(length=3), LineEnv(length=5), LineEnv(length=7)]
    # Episodes of different lengths run together: 3, 5, 7, then 3, 5.
    mean, std = evaluate_policy(dqn(), envs, episodes=5, seed=10)
    returns = [3, 5, 7, 3, 5]
    assert mean == pytest.approx(np.mean(returns))
    assert std == pytest.approx(np.std(returns))
    # Episode i is reset with seed + i, whichever environment runs it.
    assert sorted(seed for env in envs for seed in env.resets) == list(range(10, 15))
    assert envs[0].resets == [10, 13]


def test_one_environment_and_a_list_of_copies_agree():
    model = DQN(linear(2, seed=3))
    single = evaluate_policy(model, LineEnv(6), episodes=4, seed=0)
    together = evaluate_policy(model, [LineEnv(6) for _ in range(4)], 4, seed=0)
    assert together == single


def test_max_steps_caps_every_episode():
    envs = [LineEnv(length=10), LineEnv(length=10)]
    assert evaluate_policy(dqn(), envs, episodes=2, max_steps=4) == (4.0, 0.0)


def test_an_empty_list_of_environments_is_refused():
    with pytest.raises(ValueError, match="at least one environment"):
        evaluate_policy(dqn(), [], episodes=2)


class SetWeightsEachEpoch(keras.callbacks.Callback):
    """Gives the Q-network a prescribed set of weights at the end of each epoch."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_end(self, epoch, logs=None):
        self.model.q_network.set_weights(self.schedule[epoch])


def fit_with_schedule(schedule, evaluation, epochs=None):
    keras.utils.set_random_seed(0)
    model = dqn()
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    dataset = ReplayBufferDataset(
        LineEnv(4), model, batch_size=4, learning_starts=4, seed=0
    )
    history = model.fit(
        dataset,
        steps_per_epoch=2,
        epochs=len(schedule) if epochs is None else epochs,
        verbose=0,
        callbacks=[EpisodeReturn(dataset), SetWeightsEachEpoch(schedule), evaluation],
    )
    return model, history.history


def test_logs_the_greedy_return_and_restores_the_best_policy():
    evaluation = PolicyEvaluation(LineEnv(4), episodes=2, seed=0)
    schedule = [ALWAYS_ZERO, ALWAYS_ONE, ALWAYS_ZERO]
    model, history = fit_with_schedule(schedule, evaluation)
    assert history["greedy_return"] == [0.0, 4.0, 0.0]
    assert history["greedy_return_std"] == [0.0, 0.0, 0.0]
    assert (evaluation.best_epoch, evaluation.best_return) == (1, 4.0)
    assert [e["mean"] for e in evaluation.evaluations] == [0.0, 4.0, 0.0]
    # The last epoch left the bad policy; fit() ends with the best one.
    for actual, expected in zip(model.q_network.get_weights(), ALWAYS_ONE, strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert evaluate_policy(model, LineEnv(4), episodes=1) == (4.0, 0.0)


def test_keeps_the_last_policy_without_restore():
    evaluation = PolicyEvaluation(LineEnv(4), episodes=1, restore_best_policy=False)
    model, _ = fit_with_schedule([ALWAYS_ONE, ALWAYS_ZERO], evaluation)
    assert evaluation.best_epoch == 0
    assert evaluate_policy(model, LineEnv(4), episodes=1) == (0.0, 0.0)


def test_stops_training_at_the_target_return():
    evaluation = PolicyEvaluation(LineEnv(4), episodes=1, target_return=4.0)
    schedule = [ALWAYS_ZERO, ALWAYS_ONE, ALWAYS_ZERO, ALWAYS_ZERO]
    model, history = fit_with_schedule(schedule, evaluation)
    assert history["greedy_return"] == [0.0, 4.0]
    assert int(model.optimizer.iterations.numpy()) == 2 * 2


def test_evaluates_every_few_epochs_and_logs_nan_between():
    evaluation = PolicyEvaluation(LineEnv(4), episodes=1, every=2)
    _, history = fit_with_schedule([ALWAYS_ONE] * 4, evaluation)
    returns = history["greedy_return"]
    assert [math.isnan(value) for value in returns] == [True, False, True, False]
    assert returns[1] == returns[3] == 4.0


def test_gate_on_the_training_return_needs_episode_return_first():
    evaluation = PolicyEvaluation(LineEnv(4), episodes=1, min_episode_return=1e9)
    _, history = fit_with_schedule([ALWAYS_ONE] * 2, evaluation)
    # The gate is never passed: nothing is evaluated, nothing restored.
    assert all(math.isnan(value) for value in history["greedy_return"])
    assert evaluation.best_weights is None

    model = dqn()
    model.compile()
    dataset = ReplayBufferDataset(LineEnv(4), model, batch_size=4, learning_starts=4)
    gated = PolicyEvaluation(LineEnv(4), episodes=1, min_episode_return=1.0)
    with pytest.raises(ValueError, match="EpisodeReturn"):
        model.fit(dataset, steps_per_epoch=1, verbose=0, callbacks=[gated])


@pytest.mark.parametrize(
    "kwargs, pattern",
    [({"episodes": 0}, "episodes"), ({"every": 0}, "every"), ({"every": 1.5}, "every")],
)
def test_bad_arguments_are_refused(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        PolicyEvaluation(LineEnv(4), **kwargs)
