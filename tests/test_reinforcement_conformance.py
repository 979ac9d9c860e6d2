"""DQN, ActorCritic and PPO pass the conformance harness on fixed transitions."""

import keras
import numpy as np

from keras_custom import DQN, PPO, ActorCritic
from keras_custom.testing import ConformanceTests


def network(name, outputs, seed=0):
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                16,
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(seed),
            ),
            keras.layers.Dense(
                outputs, kernel_initializer=keras.initializers.GlorotUniform(seed + 1)
            ),
        ],
        name=name,
    )


def observations(rng, count=96):
    return rng.normal(size=(count, 4)).astype("float32")


class ReinforcementTests(ConformanceTests):
    def predict_inputs(self):
        return self.data()[0]["observation"][: self.batch_size]

    def transition_bad_inputs(self):
        """The harness's cases and those of any batch of transitions."""
        x = self.data()[0]
        missing = {k: v for k, v in x.items() if k != "action"}
        return [
            *ConformanceTests.bad_inputs(self),
            ({"x": missing}, r"needs the transition keys \['action'\]"),
            ({"x": x["observation"]}, r"trains on batches of transitions: a dict"),
            ({"x": x, "y": x["action"]}, r"given as `x` alone \(no `y`\)"),
        ]

    def bad_inputs(self):
        x = self.data()[0]
        actions = x["action"]
        return [
            *self.transition_bad_inputs(),
            (
                {"x": {**x, "action": np.stack([actions, actions], axis=1)}},
                r"takes one 'action' per transition, of shape \(batch,\) or "
                r"\(batch, 1\)\. Got 'action' of shape \(16, 2\)",
            ),
            (
                {"x": {**x, "action": actions.astype("float32")}},
                r"'action' must hold integer action ids\. Got 'action' of dtype "
                r"float32",
            ),
            (
                {"x": {**x, "observation": np.zeros((len(actions), 7), "float32")}},
                r"expected (axis -1 of input shape to have value 4|shape=\(None, 4\))",
            ),
        ]


class TestDQN(ReinforcementTests):
    log_keys = {"loss", "q_mean"}

    def build_model(self):
        return DQN(network("q_network", 3), gamma=0.9, target_update_period=2)

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(1e-2)}

    def data(self):
        rng = np.random.default_rng(0)
        return (
            {
                "observation": observations(rng),
                "action": rng.integers(0, 3, 96),
                "reward": rng.normal(size=96).astype("float32"),
                "next_observation": observations(rng),
                "terminated": rng.random(96) < 0.2,
            },
        )


class TestDQNSoftUpdates(TestDQN):
    """Soft updates every step, without double Q-learning."""

    def build_model(self):
        return DQN(
            network("q_network", 3),
            tau=0.1,
            target_update_period=1,
            double_q=False,
        )


def rollout_data():
    rng = np.random.default_rng(1)
    return (
        {
            "observation": observations(rng),
            "action": rng.integers(0, 2, 96),
            "advantage": rng.normal(size=96).astype("float32"),
            "return": rng.normal(size=96).astype("float32"),
        },
    )


class TestActorCritic(ReinforcementTests):
    log_keys = {"loss", "policy_loss", "value_loss", "entropy"}

    def build_model(self):
        return ActorCritic(
            network("policy", 2), network("value", 1, seed=5), entropy_weight=0.05
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(1e-2)}

    def data(self):
        return rollout_data()


class TestActorCriticSharedTrunk(TestActorCritic):
    """One model with two outputs, `[logits, values]`."""

    def build_model(self):
        inputs = keras.Input((4,))
        trunk = keras.layers.Dense(16, activation="relu")(inputs)
        logits = keras.layers.Dense(2)(trunk)
        values = keras.layers.Dense(1)(trunk)
        return ActorCritic(keras.Model(inputs, [logits, values]))


def ppo_rollout_data(continuous=False):
    rng = np.random.default_rng(2)
    if continuous:
        actions = rng.normal(size=(96, 2)).astype("float32")
    else:
        actions = rng.integers(0, 2, 96)
    return (
        {
            "observation": observations(rng),
            "action": actions,
            "log_probability": rng.normal(-0.7, 0.2, size=96).astype("float32"),
            "advantage": rng.normal(size=96).astype("float32"),
            "return": rng.normal(size=96).astype("float32"),
        },
    )


class TestPPO(ReinforcementTests):
    log_keys = {
        "loss",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
    }

    def build_model(self):
        return PPO(
            network("policy", 2),
            network("value", 1, seed=5),
            clip_ratio=0.1,
            entropy_weight=0.01,
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(1e-2)}

    def data(self):
        return ppo_rollout_data()

    def bad_inputs(self):
        x = self.data()[0]
        missing = {k: v for k, v in x.items() if k != "log_probability"}
        return [
            *super().bad_inputs(),
            ({"x": missing}, r"needs 'log_probability'.*`PPORolloutDataset`"),
        ]


class TestPPOContinuous(TestPPO):
    """A Gaussian policy of two action dimensions, with a trained `log_std`."""

    def build_model(self):
        return PPO(
            network("policy", 2),
            network("value", 1, seed=5),
            continuous_actions=True,
            initial_log_std=-0.3,
        )

    def data(self):
        return ppo_rollout_data(continuous=True)

    def bad_inputs(self):
        x = self.data()[0]
        actions = x["action"]
        return [
            *self.transition_bad_inputs(),
            (
                {"x": {**x, "action": actions[:, :1]}},
                r"continuous actions of 2 dimension\(s\): 'action' must have the "
                r"shape \(batch, 2\)\. Got 'action' of shape \(16, 1\)",
            ),
            (
                {"x": {**x, "action": np.zeros(len(actions), "int64")}},
                r"'action' must have the shape \(batch, 2\)",
            ),
            (
                {"x": {**x, "action": np.zeros((len(actions), 2), "int64")}},
                r"'action' must hold real numbers\. Got 'action' of dtype int(32|64)",
            ),
            (
                {"x": {k: v for k, v in x.items() if k != "log_probability"}},
                r"needs 'log_probability'",
            ),
        ]
