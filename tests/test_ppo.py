"""`PPO` and `PPORolloutDataset` against NumPy computations of the paper's
equations, and the epochs x minibatches data flow inside one `fit()`.

The references follow Schulman et al. 2017 (https://arxiv.org/abs/1707.06347):
the probability ratio `r = exp(log pi(a) - log pi_old(a))`, the clipped
surrogate `L = mean(min(r A, clip(r, 1 - eps, 1 + eps) A))` (equation 7),
maximized together with the entropy bonus and minus the value error
(equation 9). The approximate KL is the `(r - 1) - log r` estimator
(Stable-Baselines3's `approx_kl`), the clip fraction `mean(|r - 1| > eps)`.
"""

import math
import types

import keras
import numpy as np
import pytest

from keras_custom import PPO, ActorCritic
from keras_custom.reinforcement import PPORolloutDataset
from tests.test_reinforcement import LineEnv, linear

LOG_2PI = math.log(2 * math.pi)

#: `keras_custom.callbacks.BackupAndRestore` resumes mid-epoch on TensorFlow
#: only; on JAX it refuses to run.
TENSORFLOW_ONLY_RESUME = pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="keras_custom.callbacks.BackupAndRestore needs the TensorFlow backend",
)


def softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def normalized(advantages):
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def surrogate_terms(new_log_p, old_log_p, advantages, epsilon):
    """The policy loss, the gradient of it with respect to each new
    log-probability, the approximate KL and the clip fraction."""
    count = len(new_log_p)
    ratio = np.exp(new_log_p - old_log_p)
    unclipped = ratio * advantages
    clipped = np.clip(ratio, 1 - epsilon, 1 + epsilon) * advantages
    policy_loss = -np.minimum(unclipped, clipped).mean()
    # The minimum takes the unclipped term's gradient, r * A, where it is
    # the smaller one (equal inside the clip range); the clipped term is
    # constant outside it.
    grad_log_p = -np.where(unclipped <= clipped, ratio * advantages, 0.0) / count
    approx_kl = ((ratio - 1) - np.log(ratio)).mean()
    clip_fraction = (np.abs(ratio - 1) > epsilon).mean()
    return policy_loss, grad_log_p, approx_kl, clip_fraction


def minibatch(rng, count=16, continuous=False):
    return {
        "observation": rng.normal(size=(count, 2)).astype("float32"),
        "action": (
            rng.normal(size=(count, 2)).astype("float32")
            if continuous
            else rng.integers(0, 3, count)
        ),
        "advantage": rng.normal(size=count).astype("float32"),
        "return": rng.normal(size=count).astype("float32"),
    }


def weights64(network):
    return [np.array(w, "float64") for w in network.get_weights()]


def check_logs(logs, expected):
    for key, value in expected.items():
        np.testing.assert_allclose(logs[key][0], value, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------
# One update against NumPy
# ----------------------------------------------------------------------


def test_discrete_update_equals_numpy():
    rng = np.random.default_rng(0)
    batch = minibatch(rng)
    model = PPO(
        linear(3, name="policy"),
        linear(1, name="value", seed=1),
        clip_ratio=0.15,
        value_weight=0.7,
        entropy_weight=0.05,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    kernel, bias = weights64(model.policy_network)
    value_kernel, value_bias = weights64(model.value_network)
    x, actions = batch["observation"].astype("float64"), batch["action"]
    rows = np.arange(16)
    p = softmax(x @ kernel + bias)
    log_p = np.log(p)
    new_log_p = log_p[rows, actions]
    # A behaviour policy a little different from the current one, so that
    # some ratios fall outside the clip range on both sides.
    batch["log_probability"] = (new_log_p + rng.normal(0, 0.3, 16)).astype("float32")
    old_log_p = batch["log_probability"].astype("float64")
    advantages = normalized(batch["advantage"].astype("float64"))
    policy_loss, grad_log_p, approx_kl, clip_fraction = surrogate_terms(
        new_log_p, old_log_p, advantages, 0.15
    )
    assert 0 < clip_fraction < 1
    values = (x @ value_kernel + value_bias)[:, 0]
    value_loss = ((batch["return"] - values) ** 2).mean()
    entropies = -(p * log_p).sum(-1)
    loss = policy_loss + 0.7 * value_loss - 0.05 * entropies.mean()
    one_hot = np.eye(3)[actions]
    grad_logits = grad_log_p[:, None] * (one_hot - p)
    grad_logits += 0.05 * p * (log_p + entropies[:, None]) / 16
    grad_values = 0.7 * -2 * (batch["return"] - values) / 16

    logs = model.fit(batch, batch_size=16, verbose=0).history
    check_logs(
        logs,
        {
            "loss": loss,
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropies.mean(),
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
        },
    )
    new_kernel, new_bias = model.policy_network.get_weights()
    new_value_kernel, new_value_bias = model.value_network.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - 0.1 * x.T @ grad_logits, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.1 * grad_logits.sum(0), atol=1e-6)
    np.testing.assert_allclose(
        new_value_kernel, value_kernel - 0.1 * x.T @ grad_values[:, None], atol=1e-6
    )
    np.testing.assert_allclose(
        new_value_bias, value_bias - 0.1 * grad_values.sum(), atol=1e-6
    )


def test_gaussian_update_equals_numpy():
    rng = np.random.default_rng(1)
    batch = minibatch(rng, continuous=True)
    model = PPO(
        linear(2, name="policy"),
        linear(1, name="value", seed=1),
        clip_ratio=0.2,
        value_weight=0.5,
        entropy_weight=0.1,
        continuous_actions=True,
    )
    model.log_std.assign(np.array([-0.3, 0.2], "float32"))
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    kernel, bias = weights64(model.policy_network)
    value_kernel, value_bias = weights64(model.value_network)
    log_std = np.array(model.log_std, "float64")
    x, actions = batch["observation"].astype("float64"), batch["action"]
    mean = x @ kernel + bias
    std = np.exp(log_std)
    z = (actions - mean) / std
    new_log_p = (-0.5 * z**2 - log_std - 0.5 * LOG_2PI).sum(-1)
    batch["log_probability"] = (new_log_p + rng.normal(0, 0.3, 16)).astype("float32")
    advantages = normalized(batch["advantage"].astype("float64"))
    policy_loss, grad_log_p, approx_kl, clip_fraction = surrogate_terms(
        new_log_p, batch["log_probability"].astype("float64"), advantages, 0.2
    )
    assert 0 < clip_fraction < 1
    values = (x @ value_kernel + value_bias)[:, 0]
    value_loss = ((batch["return"] - values) ** 2).mean()
    entropy = (log_std + 0.5 * (1 + LOG_2PI)).sum()
    loss = policy_loss + 0.5 * value_loss - 0.1 * entropy
    # d log N(a; mu, sigma) / d mu = z / sigma, / d log sigma = z^2 - 1.
    grad_mean = grad_log_p[:, None] * z / std
    grad_log_std = (grad_log_p[:, None] * (z**2 - 1)).sum(0) - 0.1
    grad_values = 0.5 * -2 * (batch["return"] - values) / 16

    logs = model.fit(batch, batch_size=16, verbose=0).history
    check_logs(
        logs,
        {
            "loss": loss,
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
        },
    )
    new_kernel, new_bias = model.policy_network.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - 0.05 * x.T @ grad_mean, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.05 * grad_mean.sum(0), atol=1e-6)
    np.testing.assert_allclose(
        np.array(model.log_std), log_std - 0.05 * grad_log_std, atol=1e-6
    )
    new_value_kernel, _ = model.value_network.get_weights()
    np.testing.assert_allclose(
        new_value_kernel, value_kernel - 0.05 * x.T @ grad_values[:, None], atol=1e-6
    )


def test_without_advantage_normalization_the_advantages_are_used_as_given():
    rng = np.random.default_rng(2)
    batch = minibatch(rng)
    model = PPO(linear(3), linear(1, seed=1), normalize_advantages=False)
    model.compile(optimizer="sgd")
    kernel, bias = weights64(model.policy_network)
    log_p = np.log(softmax(batch["observation"] @ kernel + bias))
    batch["log_probability"] = log_p[np.arange(16), batch["action"]].astype("float32")
    result = model.evaluate(batch, batch_size=16, verbose=0, return_dict=True)
    # Ratios of 1: the surrogate is the mean advantage, nothing is clipped.
    np.testing.assert_allclose(
        result["policy_loss"], -batch["advantage"].mean(), atol=1e-6
    )
    assert result["clip_fraction"] == 0.0
    assert abs(result["approx_kl"]) < 1e-6


def test_approximate_kl_is_the_logged_estimator():
    rng = np.random.default_rng(3)
    batch = minibatch(rng, continuous=True)
    model = PPO(linear(2), linear(1, seed=1), continuous_actions=True)
    model.compile()
    batch["log_probability"] = rng.normal(-2.0, 0.5, 16).astype("float32")
    logged = model.evaluate(batch, batch_size=16, verbose=0, return_dict=True)
    kl = model.approximate_kl(
        batch["observation"], batch["action"], batch["log_probability"]
    )
    np.testing.assert_allclose(kl, logged["approx_kl"], rtol=1e-5)
    assert kl > 0


# ----------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------


def test_sampled_actions_carry_their_log_probabilities():
    rng = np.random.default_rng(4)
    observations = rng.normal(size=(500, 2)).astype("float32")
    model = PPO(linear(3), linear(1, seed=1))
    actions, log_p, values = model.sample_actions(observations, rng)
    logits, expected_values = model.policy_and_value(observations)
    p = softmax(np.asarray(logits, "float64"))
    np.testing.assert_allclose(log_p, np.log(p[np.arange(500), actions]), atol=1e-5)
    np.testing.assert_allclose(values, expected_values)
    assert actions.dtype == np.int64 and set(np.unique(actions)) <= {0, 1, 2}

    gaussian = PPO(linear(2), linear(1, seed=1), continuous_actions=True)
    gaussian.log_std.assign(np.array([-1.0, 0.5], "float32"))
    actions, log_p, _ = gaussian.sample_actions(observations, rng)
    mean = gaussian.greedy_actions(observations)
    std = np.exp([-1.0, 0.5])
    z = (actions - mean) / std
    np.testing.assert_allclose(
        log_p, (-0.5 * z**2 - np.log(std) - 0.5 * LOG_2PI).sum(-1), atol=1e-4
    )
    # The noise has the standard deviation of `log_std`, dimension by dimension.
    np.testing.assert_allclose(z.std(0), [1.0, 1.0], atol=0.1)


# ----------------------------------------------------------------------
# The data flow: update_epochs passes of minibatches inside one fit()
# ----------------------------------------------------------------------


def indexed(dataset):
    """Adds the row index of each transition to the rollouts of `dataset`,
    and records the rollouts and the minibatches served."""
    rollouts, served = [], []
    collect, serve = dataset.collect_rollout, dataset.next_batch

    def collect_rollout():
        rollout = collect()
        rollout["index"] = np.arange(len(rollout["advantage"]))
        rollouts.append(rollout)
        return rollout

    def next_batch():
        batch = serve()
        served.append(batch)
        return batch

    dataset.collect_rollout, dataset.next_batch = collect_rollout, next_batch
    return rollouts, served


def ppo(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = PPO(linear(2, name="policy"), linear(1, name="value", seed=1), **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def test_each_rollout_is_served_as_epochs_of_shuffled_minibatches():
    model = ppo(update_epochs=3, minibatches=4)
    dataset = PPORolloutDataset([LineEnv(), LineEnv(7)], model, rollout_steps=8, seed=0)
    rollouts, served = indexed(dataset)
    history = model.fit(dataset, steps_per_epoch=24, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 24
    assert len(rollouts) == 2 and len(served) == 24
    assert dataset.rollout_updates == [12, 12] and dataset.early_stops == 0
    assert dataset.environment_steps == 2 * 16
    for rollout, batches in zip(rollouts, (served[:12], served[12:]), strict=True):
        assert all(len(batch["index"]) == 4 for batch in batches)
        passes = [
            np.concatenate([b["index"] for b in batches[i : i + 4]]) for i in (0, 4, 8)
        ]
        for rows in passes:  # every transition once per pass
            np.testing.assert_array_equal(np.sort(rows), np.arange(16))
        assert not all(np.array_equal(passes[0], rows) for rows in passes[1:])
        for batch in batches:
            for key in ("observation", "action", "log_probability", "return"):
                np.testing.assert_array_equal(batch[key], rollout[key][batch["index"]])
    assert set(history.history) >= {"approx_kl", "clip_fraction"}


def test_rollouts_record_the_behaviour_policy():
    model = ppo(update_epochs=2, minibatches=2)
    dataset = PPORolloutDataset(LineEnv(4), model, rollout_steps=6, seed=1)
    rollout = dataset.collect_rollout()
    logits, values = model.policy_and_value(rollout["observation"])
    log_p = np.log(softmax(np.asarray(logits, "float64")))
    np.testing.assert_allclose(
        rollout["log_probability"], log_p[np.arange(6), rollout["action"]], atol=1e-5
    )
    np.testing.assert_allclose(
        rollout["advantage"], rollout["return"] - values, atol=1e-5
    )


class BoxEnv:
    """One-dimensional actions in [-0.5, 0.5]; records the actions it gets."""

    def __init__(self):
        self.action_space = types.SimpleNamespace(
            low=np.array([-0.5], "float32"), high=np.array([0.5], "float32")
        )
        self.received = []

    def reset(self, seed=None):
        return np.zeros(2, "float32"), {}

    def step(self, action):
        self.received.append(np.array(action))
        return (
            np.ones(2, "float32"),
            -float(np.sum(np.square(action))),
            False,
            False,
            {},
        )


def test_continuous_actions_are_clipped_only_to_step_the_environment():
    keras.utils.set_random_seed(0)
    model = PPO(
        linear(1), linear(1, seed=1), continuous_actions=True, initial_log_std=1.0
    )
    model.compile()
    env = BoxEnv()
    dataset = PPORolloutDataset(env, model, rollout_steps=64, seed=0)
    rollout = dataset.collect_rollout()
    actions = rollout["action"]
    assert actions.shape == (64, 1) and np.abs(actions).max() > 0.5
    np.testing.assert_allclose(
        np.concatenate(env.received), np.clip(actions[:, 0], -0.5, 0.5)
    )
    mean = model.greedy_actions(rollout["observation"])
    z = (actions - mean) / np.e
    np.testing.assert_allclose(
        rollout["log_probability"], (-0.5 * z**2 - 1.0 - 0.5 * LOG_2PI)[:, 0], atol=1e-4
    )
    history = model.fit(dataset, steps_per_epoch=4, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not np.allclose(np.array(model.log_std), 1.0)  # trained with the networks


# ----------------------------------------------------------------------
# target_kl
# ----------------------------------------------------------------------


def test_target_kl_stops_the_rest_of_a_rollout():
    model = ppo(update_epochs=4, minibatches=2, target_kl=1e-9)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    dataset = PPORolloutDataset(LineEnv(), model, rollout_steps=8, seed=0)
    model.fit(dataset, steps_per_epoch=5, verbose=0)
    # Every first update moves the policy far beyond the target: each rollout
    # gets one update, and the next step collects a new rollout.
    assert dataset.rollout_updates == [1, 1, 1, 1, 1]
    assert dataset.early_stops == 4
    assert dataset.environment_steps == 5 * 8

    relaxed = ppo(update_epochs=4, minibatches=2, target_kl=1e3)
    dataset = PPORolloutDataset(LineEnv(), relaxed, rollout_steps=8, seed=0)
    relaxed.fit(dataset, steps_per_epoch=10, verbose=0)
    assert dataset.rollout_updates == [8, 2] and dataset.early_stops == 0


def test_target_kl_threshold_is_one_and_a_half_times_the_target():
    model = ppo(update_epochs=2, minibatches=2, target_kl=0.01)
    dataset = PPORolloutDataset(LineEnv(), model, rollout_steps=4, seed=0)
    checked = []

    def approximate_kl(observations, actions, log_probabilities):
        checked.append(len(observations))
        return kls.pop(0)

    model.approximate_kl = approximate_kl
    kls = [0.015, 0.0151]
    for _ in range(3):
        dataset.next_batch()
    # First minibatch unchecked (the weights that collected the rollout),
    # the second at 1.5 * target_kl served, the third above it dropped.
    assert checked == [2, 2]
    assert dataset.rollout_updates == [2, 1] and dataset.early_stops == 1


# ----------------------------------------------------------------------
# State, errors
# ----------------------------------------------------------------------


def test_dataset_state_round_trip_mid_rollout():
    model = ppo(update_epochs=2, minibatches=4)
    dataset = PPORolloutDataset([LineEnv(), LineEnv(3)], model, rollout_steps=4, seed=0)
    for _ in range(3):
        dataset.next_batch()
    state = dataset.get_state()
    first = [dataset.next_batch() for _ in range(8)]
    dataset.set_state(state)
    again = [dataset.next_batch() for _ in range(8)]
    for a, b in zip(first, again, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="clip_ratio"):
        PPO(linear(2), linear(1), clip_ratio=0.0)
    with pytest.raises(ValueError, match="update_epochs"):
        PPO(linear(2), linear(1), update_epochs=0)
    with pytest.raises(ValueError, match="minibatches"):
        PPO(linear(2), linear(1), minibatches=2.5)
    with pytest.raises(ValueError, match="target_kl"):
        PPO(linear(2), linear(1), target_kl=-0.1)
    with pytest.raises(ValueError, match="policy_network"):
        PPO("not a model", linear(1))
    model = PPO(linear(2), linear(1), minibatches=3)
    with pytest.raises(ValueError, match="cannot be split into 3 equal minibatches"):
        PPORolloutDataset(LineEnv(), model, rollout_steps=8)
    actor_critic = ActorCritic(linear(2), linear(1))
    with pytest.raises(ValueError, match="needs a `PPO` model"):
        PPORolloutDataset(LineEnv(), actor_critic)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 2), "float32"))
    assert PPO(subclassed, linear(1)).action_dims is None  # discrete: not needed
    with pytest.raises(ValueError, match="continuous_actions=True.*functional"):
        PPO(subclassed, linear(1), continuous_actions=True)


def test_log_std_is_saved_and_loaded(tmp_path):
    model = PPO(linear(2), linear(1), continuous_actions=True, initial_log_std=-0.5)
    model.compile()
    model.log_std.assign(np.array([0.25, -1.5], "float32"))
    model.save(tmp_path / "ppo.keras")
    loaded = keras.models.load_model(tmp_path / "ppo.keras")
    assert loaded.continuous_actions and loaded.initial_log_std == -0.5
    np.testing.assert_array_equal(np.array(loaded.log_std), [0.25, -1.5])
    assert any(v is loaded.log_std for v in loaded.trainable_variables)


def test_shared_trunk_policy_and_value():
    inputs = keras.Input((2,))
    trunk = keras.layers.Dense(8, activation="tanh")(inputs)
    heads = [keras.layers.Dense(2)(trunk), keras.layers.Dense(1)(trunk)]
    model = PPO(keras.Model(inputs, heads), continuous_actions=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    rng = np.random.default_rng(6)
    batch = minibatch(rng, continuous=True)
    batch["log_probability"] = rng.normal(-2.0, 0.3, 16).astype("float32")
    before = [np.array(w) for w in model.get_weights()]
    history = model.fit(batch, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"][0]) and model.action_dims == 2
    assert all(
        not np.array_equal(a, b)
        for a, b in zip(before, model.get_weights(), strict=True)
    )


@TENSORFLOW_ONLY_RESUME
def test_backup_and_restore_resumes_mid_rollout(tmp_path):
    """Interrupted in the middle of a rollout's minibatches and resumed with
    `BackupAndRestore`, training ends where an uninterrupted run does."""
    from keras_custom.callbacks import BackupAndRestore
    from keras_custom.core import op_determinism

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 7:
                raise KeyboardInterrupt

    def run(folder, *callbacks):
        model = ppo(update_epochs=2, minibatches=3)
        dataset = PPORolloutDataset(
            [LineEnv(), LineEnv(5)], model, rollout_steps=6, seed=0, save_state=True
        )
        backup = BackupAndRestore(tmp_path / folder, save_freq=2)
        try:
            with op_determinism():
                model.fit(
                    dataset,
                    steps_per_epoch=10,
                    epochs=1,
                    verbose=0,
                    callbacks=[backup, *callbacks],
                )
        except KeyboardInterrupt:
            return None
        return model, dataset

    expected, expected_data = run("straight")
    assert run("interrupted", Interrupt()) is None
    resumed, resumed_data = run("interrupted")
    for a, b in zip(resumed.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed_data.rollout_updates == expected_data.rollout_updates == [6, 4]
    assert resumed_data.environment_steps == expected_data.environment_steps
