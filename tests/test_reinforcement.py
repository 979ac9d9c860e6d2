"""DQN, ActorCritic and their experience datasets against NumPy references."""

import types

import keras
import numpy as np
import pytest

from keras_custom import DQN, ActorCritic
from keras_custom.reinforcement import (
    EpisodeReturn,
    ReplayBufferDataset,
    RolloutDataset,
    evaluate_policy,
    generalized_advantage_estimation,
)


class LineEnv:
    """A known environment: reward 1 for action 1, episodes of `length` steps.

    The observation is `[step / length, last action]`; an episode ends with
    `terminated` (or `truncated` when `truncate` is set) after `length` steps.
    """

    def __init__(self, length=5, truncate=False):
        self.length, self.truncate = length, truncate
        self.action_space = types.SimpleNamespace(n=2)
        self.t, self.resets = 0, []

    def reset(self, seed=None):
        self.t = 0
        self.resets.append(seed)
        return np.array([0.0, 0.0], "float32"), {}

    def step(self, action):
        self.t += 1
        ends = self.t >= self.length
        observation = np.array([self.t / self.length, action], "float32")
        reward = float(action == 1)
        return (
            observation,
            reward,
            ends and not self.truncate,
            ends and self.truncate,
            {},
        )


def linear(outputs, inputs=2, name=None, seed=0):
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(
                outputs, kernel_initializer=keras.initializers.RandomNormal(seed=seed)
            ),
        ],
        name=name,
    )


def huber(error, delta):
    quadratic = np.minimum(np.abs(error), delta)
    return 0.5 * quadratic**2 + delta * (np.abs(error) - quadratic)


def huber_derivative(error, delta):
    return np.clip(error, -delta, delta)


def transitions(rng, count=16, inputs=2, actions=3):
    return {
        "observation": rng.normal(size=(count, inputs)).astype("float32"),
        "action": rng.integers(0, actions, count),
        "reward": rng.normal(size=count).astype("float32"),
        "next_observation": rng.normal(size=(count, inputs)).astype("float32"),
        "terminated": rng.random(count) < 0.3,
    }


# ----------------------------------------------------------------------
# DQN
# ----------------------------------------------------------------------


@pytest.mark.parametrize("double_q", [True, False])
def test_dqn_step_equals_numpy(double_q):
    rng = np.random.default_rng(0)
    batch = transitions(rng)
    model = DQN(linear(3), gamma=0.9, double_q=double_q, huber_delta=0.7)
    model.q_network.layers[0].bias.assign(rng.normal(size=3))
    # A target different from the online network, so the two roles show.
    model.target.parts[0].layers[0].kernel.assign(rng.normal(size=(2, 3)))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    kernel, bias = (np.array(w) for w in model.q_network.get_weights())
    target_kernel, target_bias = (np.array(w) for w in model.target.target_weights())

    q = batch["observation"] @ kernel + bias
    rows = np.arange(16)
    q_taken = q[rows, batch["action"]]
    next_target = batch["next_observation"] @ target_kernel + target_bias
    next_online = batch["next_observation"] @ kernel + bias
    chooser = next_online if double_q else next_target
    next_q = next_target[rows, chooser.argmax(-1)]
    targets = batch["reward"] + 0.9 * (1 - batch["terminated"]) * next_q
    error = q_taken - targets
    expected_loss = huber(error, 0.7).mean()
    grad_q = np.zeros_like(q)
    grad_q[rows, batch["action"]] = huber_derivative(error, 0.7) / 16

    logs = model.fit(batch, batch_size=16, verbose=0).history
    np.testing.assert_allclose(logs["loss"][0], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["q_mean"][0], q_taken.mean(), rtol=1e-5)
    new_kernel, new_bias = model.q_network.get_weights()
    np.testing.assert_allclose(
        new_kernel, kernel - 0.1 * batch["observation"].T @ grad_q, atol=1e-6
    )
    np.testing.assert_allclose(new_bias, bias - 0.1 * grad_q.sum(0), atol=1e-6)


def test_dqn_evaluate_equals_numpy_and_does_not_update():
    rng = np.random.default_rng(1)
    batch = transitions(rng, count=32)
    model = DQN(linear(3), gamma=0.5)
    model.compile(optimizer="sgd")
    kernel, bias = model.q_network.get_weights()
    q = batch["observation"] @ kernel + bias
    next_q = batch["next_observation"] @ kernel + bias
    rows = np.arange(32)
    targets = batch["reward"] + 0.5 * (1 - batch["terminated"]) * next_q.max(-1)
    expected = huber(q[rows, batch["action"]] - targets, 1.0).mean()
    result = model.evaluate(batch, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"], expected, rtol=1e-5)
    np.testing.assert_array_equal(model.q_network.get_weights()[0], kernel)


def test_dqn_hard_target_copy_every_period():
    rng = np.random.default_rng(2)
    batch = transitions(rng, count=16)
    model = DQN(linear(3), target_update_period=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    initial = [np.array(w) for w in model.target.target_weights()]
    for step in range(1, 7):
        model.fit(batch, batch_size=16, verbose=0)
        target = model.target.target_weights()
        if step % 3:
            expected = initial
        else:
            expected = initial = model.q_network.get_weights()
        for t, e in zip(target, expected, strict=True):
            np.testing.assert_array_equal(np.array(t), e)


def test_dqn_soft_target_update():
    rng = np.random.default_rng(3)
    batch = transitions(rng, count=16)
    model = DQN(linear(3), tau=0.25, target_update_period=1)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np.array(w) for w in model.target.target_weights()]
    model.fit(batch, batch_size=16, verbose=0)
    for old, online, new in zip(
        before,
        model.q_network.get_weights(),
        model.target.target_weights(),
        strict=True,
    ):
        np.testing.assert_allclose(np.array(new), 0.75 * old + 0.25 * online, atol=1e-6)
    assert all(not v.trainable for v in model.target.target_weights())


def test_dqn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="gamma"):
        DQN(linear(2), gamma=1.5)
    with pytest.raises(ValueError, match="target_update_period"):
        DQN(linear(2), target_update_period=0)
    with pytest.raises(ValueError, match="q_network"):
        DQN("not a model")


# ----------------------------------------------------------------------
# ActorCritic
# ----------------------------------------------------------------------


def softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def rollout(rng, count=16):
    return {
        "observation": rng.normal(size=(count, 2)).astype("float32"),
        "action": rng.integers(0, 3, count),
        "advantage": rng.normal(size=count).astype("float32"),
        "return": rng.normal(size=count).astype("float32"),
    }


def test_actor_critic_step_equals_numpy():
    rng = np.random.default_rng(4)
    batch = rollout(rng)
    model = ActorCritic(
        linear(3, name="policy"),
        linear(1, name="value", seed=1),
        value_weight=0.5,
        entropy_weight=0.1,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    policy_kernel, policy_bias, value_kernel, value_bias = (
        np.array(w, "float64")
        for w in model.policy_network.get_weights() + model.value_network.get_weights()
    )
    x, actions = batch["observation"].astype("float64"), batch["action"]
    rows = np.arange(16)
    logits = x @ policy_kernel + policy_bias
    p = softmax(logits)
    log_p = np.log(p)
    values = (x @ value_kernel + value_bias)[:, 0]
    policy_loss = -(log_p[rows, actions] * batch["advantage"]).mean()
    value_loss = ((batch["return"] - values) ** 2).mean()
    entropies = -(p * log_p).sum(-1)
    loss = policy_loss + 0.5 * value_loss - 0.1 * entropies.mean()
    # d loss / d logits, term by term.
    one_hot = np.eye(3)[actions]
    grad_logits = -(one_hot - p) * batch["advantage"][:, None] / 16
    grad_logits += 0.1 * p * (log_p + entropies[:, None]) / 16
    grad_values = 0.5 * -2 * (batch["return"] - values) / 16

    logs = model.fit(batch, batch_size=16, verbose=0).history
    for key, expected in (
        ("loss", loss),
        ("policy_loss", policy_loss),
        ("value_loss", value_loss),
        ("entropy", entropies.mean()),
    ):
        np.testing.assert_allclose(logs[key][0], expected, rtol=1e-5, atol=1e-6)
    new_policy_kernel, new_policy_bias = model.policy_network.get_weights()
    new_value_kernel, new_value_bias = model.value_network.get_weights()
    np.testing.assert_allclose(
        new_policy_kernel, policy_kernel - 0.1 * x.T @ grad_logits, atol=1e-6
    )
    np.testing.assert_allclose(
        new_policy_bias, policy_bias - 0.1 * grad_logits.sum(0), atol=1e-6
    )
    np.testing.assert_allclose(
        new_value_kernel, value_kernel - 0.1 * x.T @ grad_values[:, None], atol=1e-6
    )
    np.testing.assert_allclose(
        new_value_bias, value_bias - 0.1 * grad_values.sum(), atol=1e-6
    )


def test_actor_critic_refuses_networks_sharing_weights():
    inputs = keras.Input((2,))
    trunk = keras.layers.Dense(4)
    policy = keras.Model(inputs, keras.layers.Dense(2)(trunk(inputs)))
    value = keras.Model(inputs, keras.layers.Dense(1)(trunk(inputs)))
    with pytest.raises(ValueError, match="share weights"):
        ActorCritic(policy, value)


def test_actor_critic_without_value_network_needs_two_outputs():
    model = ActorCritic(linear(2))
    model.compile()
    with pytest.raises(ValueError, match=r"\[logits, values\]"):
        model.fit(rollout(np.random.default_rng(0)), verbose=0)


# ----------------------------------------------------------------------
# Generalized advantage estimation
# ----------------------------------------------------------------------


def advantages_one_by_one(rewards, values, last_values, dones, gamma, lam):
    """The definition: a discounted sum of TD errors up to the episode's end."""
    steps, envs = rewards.shape
    following = np.concatenate([values[1:], last_values[None]])
    advantages = np.zeros((steps, envs))
    for env in range(envs):
        for t in range(steps):
            total, factor = 0.0, 1.0
            for k in range(t, steps):
                bootstrap = 0.0 if dones[k, env] else following[k, env]
                delta = rewards[k, env] + gamma * bootstrap - values[k, env]
                total += factor * delta
                if dones[k, env]:
                    break
                factor *= gamma * lam
            advantages[t, env] = total
    return advantages


@pytest.mark.parametrize("lam", [0.0, 0.9, 1.0])
def test_gae_equals_its_definition(lam):
    rng = np.random.default_rng(5)
    rewards, values = rng.normal(size=(2, 12, 3))
    last_values = rng.normal(size=3)
    dones = rng.random((12, 3)) < 0.2
    advantages, returns = generalized_advantage_estimation(
        rewards, values, last_values, dones, 0.97, lam
    )
    expected = advantages_one_by_one(rewards, values, last_values, dones, 0.97, lam)
    np.testing.assert_allclose(advantages, expected, atol=1e-5)
    np.testing.assert_allclose(returns, expected + values, atol=1e-5)


def test_gae_with_lambda_one_is_the_discounted_return():
    rewards = np.ones((4, 1))
    dones = np.array([[False], [True], [False], [False]])
    _, returns = generalized_advantage_estimation(
        rewards, np.zeros((4, 1)), np.array([10.0]), dones, 0.5, 1.0
    )
    np.testing.assert_allclose(returns[:, 0], [1.5, 1.0, 1.5 + 0.25 * 10, 1 + 5])


# ----------------------------------------------------------------------
# Experience datasets, the callback and evaluation
# ----------------------------------------------------------------------


class WeightsAtCollection:
    """Wraps a dataset's `next_batch` to record the weights each batch saw.

    They are read after the batch is made: on JAX the variables get the
    trainer's latest values when the dataset calls the model.
    """

    def __init__(self, dataset, network):
        self.seen = []
        collect = dataset.next_batch

        def next_batch():
            batch = collect()
            self.seen.append([np.array(w) for w in network.get_weights()])
            return batch

        dataset.next_batch = next_batch


class WeightsAtStep(keras.callbacks.Callback):
    def __init__(self, network):
        super().__init__()
        self.network, self.seen = network, []

    def on_train_batch_begin(self, batch, logs=None):
        self.model  # noqa: B018 - on JAX, brings the trainer's state to the variables
        self.seen.append([np.array(w) for w in self.network.get_weights()])


def actor_critic(seed=0):
    keras.utils.set_random_seed(seed)
    model = ActorCritic(linear(2, name="policy"), linear(1, name="value", seed=1))
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def test_rollouts_are_collected_with_the_current_weights():
    """No read-ahead: each batch is made with the weights its step starts from."""
    model = actor_critic()
    dataset = RolloutDataset([LineEnv(), LineEnv()], model, rollout_steps=3, seed=0)
    at_collection = WeightsAtCollection(dataset, model.policy_network)
    at_step = WeightsAtStep(model.policy_network)
    model.fit(dataset, steps_per_epoch=4, epochs=2, verbose=0, callbacks=[at_step])
    collected = at_collection.seen
    assert len(at_step.seen) == len(collected) == 8
    for step, (expected, actual) in enumerate(
        zip(at_step.seen, collected, strict=True)
    ):
        for e, a in zip(expected, actual, strict=True):
            np.testing.assert_array_equal(a, e, err_msg=f"batch {step}")
    assert not np.allclose(at_step.seen[0][0], at_step.seen[-1][0])


def test_rollout_training_is_repeatable():
    weights = []
    for _ in range(2):
        model = actor_critic(seed=3)
        dataset = RolloutDataset(
            [LineEnv(), LineEnv(7)], model, rollout_steps=4, seed=1
        )
        model.fit(dataset, steps_per_epoch=5, epochs=2, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rollout_batch_contents():
    model = actor_critic()
    env = LineEnv(length=3, truncate=True)
    dataset = RolloutDataset(
        env,
        model,
        rollout_steps=6,
        gamma=0.9,
        gae_lambda=1.0,
        normalize_advantages=False,
        seed=0,
    )
    batch = dataset.next_batch()
    assert set(batch) == {"observation", "action", "advantage", "return"}
    assert batch["observation"].shape == (6, 2)
    # Truncated after 3 steps: the value of the last observation is
    # bootstrapped into the third reward, not carried across the reset.
    _, values = model.policy_and_value(batch["observation"])
    final_observation = np.array([[1.0, batch["action"][2]]], "float32")
    _, final_value = model.policy_and_value(final_observation)
    rewards = (batch["action"] == 1).astype("float64")
    expected_third = rewards[2] + 0.9 * final_value[0]
    np.testing.assert_allclose(batch["return"][2], expected_third, rtol=1e-5)
    np.testing.assert_allclose(
        batch["advantage"], batch["return"] - values, rtol=1e-5, atol=1e-5
    )
    assert dataset.episode_returns == [rewards[:3].sum(), rewards[3:].sum()]
    assert dataset.episode_lengths == [3, 3]
    assert env.resets == [0, None, None]


def test_replay_buffer_fills_wraps_and_samples():
    keras.utils.set_random_seed(0)
    model = DQN(linear(2))
    env = LineEnv(length=4, truncate=True)
    dataset = ReplayBufferDataset(
        env,
        model,
        batch_size=4,
        capacity=10,
        learning_starts=6,
        steps_per_batch=3,
        epsilon=0.0,
        seed=0,
    )
    batch = dataset.next_batch()
    assert dataset.size == 9 and dataset.environment_steps == 9
    assert {k: v.shape for k, v in batch.items()} == {
        "observation": (4, 2),
        "action": (4,),
        "reward": (4,),
        "next_observation": (4, 2),
        "terminated": (4,),
    }
    # Truncation is not termination: its value is bootstrapped.
    assert not batch["terminated"].any()
    dataset.next_batch()  # 12 transitions in a ring of 10: two replaced
    assert dataset.size == 10 and dataset.environment_steps == 12
    assert dataset._position == 2
    # Greedy steps after the random ones take the network's choice.
    last = (dataset._position - 1) % 10
    observation = dataset._buffer["observation"][last]
    assert dataset._buffer["action"][last] == model.greedy_actions(observation[None])[0]


def test_replay_buffer_epsilon_follows_a_schedule_of_environment_steps():
    model = DQN(linear(2))
    schedule = keras.optimizers.schedules.PolynomialDecay(1.0, 100, 0.1)
    dataset = ReplayBufferDataset(LineEnv(), model, epsilon=schedule, seed=0)
    assert dataset.current_epsilon() == pytest.approx(1.0)
    dataset.environment_steps = 50
    assert dataset.current_epsilon() == pytest.approx(0.55)
    dataset.environment_steps = 500
    assert dataset.current_epsilon() == pytest.approx(0.1)


def test_dataset_errors_name_the_problem():
    model = DQN(linear(2))
    with pytest.raises(ValueError, match="gymnasium.Env"):
        ReplayBufferDataset(object(), model)
    no_actions = LineEnv()
    del no_actions.action_space
    with pytest.raises(ValueError, match="discrete"):
        ReplayBufferDataset(no_actions, model)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBufferDataset(LineEnv(), model, batch_size=64, capacity=10)
    with pytest.raises(ValueError, match="policy_and_value"):
        RolloutDataset(LineEnv(), model)
    with pytest.raises(ValueError, match="greedy_actions"):
        RolloutDataset(LineEnv(), keras.Sequential([keras.Input((2,))]))


def test_episode_return_logs_the_episodes_of_each_epoch():
    model = actor_critic()
    dataset = RolloutDataset([LineEnv(5), LineEnv(5)], model, rollout_steps=5, seed=0)
    history = model.fit(
        dataset,
        steps_per_epoch=2,
        epochs=3,
        verbose=0,
        callbacks=[EpisodeReturn(dataset)],
    )
    # Each rollout of 5 steps ends one episode in each environment.
    assert len(dataset.episode_returns) == 2 * 2 * 3
    assert history.history["episodes"] == [4, 4, 4]
    per_epoch = np.reshape(dataset.episode_returns, (3, 4)).mean(axis=1)
    np.testing.assert_allclose(history.history["episode_return"], per_epoch)


def test_evaluate_policy_returns_mean_and_std_of_greedy_episodes():
    model = DQN(linear(2))
    model.q_network.set_weights([np.zeros((2, 2)), np.array([0.0, 1.0])])
    env = LineEnv(length=6)
    assert evaluate_policy(model, env, episodes=3, seed=10) == (6.0, 0.0)
    assert env.resets == [10, 11, 12]
    model.q_network.set_weights([np.zeros((2, 2)), np.array([1.0, 0.0])])
    assert evaluate_policy(model, env, episodes=2) == (0.0, 0.0)
    with pytest.raises(ValueError, match="episodes"):
        evaluate_policy(model, env, episodes=0)


def test_dqn_saves_and_resumes_training_from_a_replay_buffer(tmp_path):
    keras.utils.set_random_seed(0)
    model = DQN(linear(2), target_update_period=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = ReplayBufferDataset(
        LineEnv(), model, batch_size=8, learning_starts=8, seed=0
    )
    model.fit(dataset, steps_per_epoch=5, verbose=0)
    model.save(tmp_path / "dqn.keras")
    loaded = keras.models.load_model(tmp_path / "dqn.keras")
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    assert int(loaded.optimizer.iterations) == 5
    dataset.model = loaded
    loaded.fit(dataset, steps_per_epoch=3, verbose=0)
    assert int(loaded.optimizer.iterations) == 8
