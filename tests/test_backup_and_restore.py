"""`keras_custom.callbacks.BackupAndRestore` in one process: a run interrupted
by an exception mid-epoch and resumed equals an uninterrupted one; its
checkpoints are checked; experience datasets snapshot and restore their state.
(`test_kill_and_resume.py` kills real processes.)"""

import contextlib
import json

import gymnasium as gym
import keras
import numpy as np
import pytest

from keras_custom import DQN, ActorCritic, CustomModel
from keras_custom.callbacks import BackupAndRestore
from keras_custom.core import keras_internals, op_determinism
from keras_custom.reinforcement import ReplayBufferDataset, RolloutDataset
from keras_custom.testing import logical_cpus, mirrored_strategy
from tests import test_generative_conformance as generative
from tests.models import digit_data
from tests.test_reinforcement_conformance import network


class Interrupt(keras.callbacks.Callback):
    """Raises after batch `batch` of `epoch`, as a crash would stop `fit()`."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("interrupted")


def classifier(strategy=None) -> CustomModel:
    keras.utils.set_random_seed(1234)
    with strategy.scope() if strategy else contextlib.nullcontext():
        inputs = keras.Input((64,))
        hidden = keras.layers.Dense(16, activation="relu")(inputs)
        model = CustomModel(inputs, keras.layers.Dense(10)(hidden))
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model


def fit(model, backup_dir, *callbacks, epochs=3, **kwargs):
    """Fits from a fresh seed; returns the History, or None if interrupted."""
    x, y = digit_data()
    keras.utils.set_random_seed(99)
    arguments = {"x": x, "y": y, "batch_size": 8, "shuffle": True, **kwargs}
    try:
        with op_determinism():
            return model.fit(
                **arguments,
                epochs=epochs,
                verbose=0,
                callbacks=[BackupAndRestore(backup_dir, save_freq=3), *callbacks],
            )
    except KeyboardInterrupt:
        return None


def assert_same_state(actual, expected):
    for a, b in zip(actual.variables, expected.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=b.path)
    for name, optimizer in expected.optimizers.items():
        for a, b in zip(
            actual.optimizers[name].variables, optimizer.variables, strict=True
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_installed_keras_has_every_internal_used():
    keras_internals.check()


def test_interrupted_and_resumed_in_process_equals_uninterrupted(tmp_path):
    expected = classifier()
    history = fit(expected, tmp_path / "a")
    assert fit(classifier(), tmp_path / "b", Interrupt(1, 4)) is None
    metadata = json.loads((tmp_path / "b" / "training_metadata.json").read_text())
    # 8 batches an epoch, a checkpoint every 3: the last after batch 3 of epoch 1.
    assert (metadata["epoch"], metadata["batches_done"]) == (1, 4)
    resumed = classifier()
    resumed_history = fit(resumed, tmp_path / "b")
    assert_same_state(resumed, expected)
    for name, values in resumed_history.history.items():
        np.testing.assert_array_equal(values, history.history[name][1:], name)
    assert not (tmp_path / "b").exists()  # deleted once `fit()` completes
    # A later `fit()` of the model starts at epoch 0 again (Keras's callback
    # leaves the resumed epoch set).
    assert len(fit(resumed, tmp_path / "c").history["loss"]) == 3


def test_resume_with_mirrored_strategy(tmp_path):
    strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
    expected = classifier(strategy)
    fit(expected, tmp_path / "a", epochs=2)
    fit(classifier(strategy), tmp_path / "b", Interrupt(1, 5), epochs=2)
    resumed = classifier(strategy)
    fit(resumed, tmp_path / "b", epochs=2)
    assert_same_state(resumed, expected)


def test_checkpoint_of_another_save_is_refused_or_replaced(tmp_path):
    fit(classifier(), tmp_path / "b", Interrupt(1, 4))
    # As if killed between writing the weights and the metadata of a save.
    metadata_path = tmp_path / "b" / "training_metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata_path.write_text(json.dumps({**metadata, "iterations": 1}))
    with pytest.raises(ValueError, match="killed while saving"):
        fit(classifier(), tmp_path / "b")

    # With `double_checkpoint`, the previous checkpoint is used instead.
    model = classifier()
    backup = BackupAndRestore(tmp_path / "c", save_freq=3, double_checkpoint=True)
    x, y = digit_data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup, Interrupt(1, 4)]
        )
    metadata_path = tmp_path / "c" / "training_metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata_path.write_text(json.dumps({**metadata, "iterations": 1}))
    resumed = classifier()
    backup = BackupAndRestore(tmp_path / "c", save_freq=3, double_checkpoint=True)
    history = resumed.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup])
    assert len(history.history["loss"]) == 2  # from epoch 1, the previous save


def test_reads_a_checkpoint_of_keras_callback(tmp_path):
    model = classifier()
    x, y = digit_data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=3,
            verbose=0,
            callbacks=[
                keras.callbacks.BackupAndRestore(tmp_path, save_freq="epoch"),
                Interrupt(1, 2),
            ],
        )
    history = classifier().fit(
        x, y, batch_size=8, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path)]
    )
    assert len(history.history["loss"]) == 2  # Keras's checkpoint: epoch 1


def test_needs_a_keras_custom_model(tmp_path):
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(10)(inputs))
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="needs a keras_custom model"):
        model.fit(
            *digit_data(),
            verbose=0,
            callbacks=[BackupAndRestore(tmp_path, save_freq=2)],
        )


def test_a_keras_without_the_hook_gets_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        keras_internals.resume, "record_epoch_iterator", lambda *a: None
    )
    with pytest.raises(RuntimeError, match=r"installed Keras .* lacks"):
        fit(classifier(), tmp_path)


@pytest.mark.parametrize("save_freq", [0, -1, True, "batch", 1.5])
def test_bad_save_freq(save_freq, tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(tmp_path, save_freq=save_freq)


def test_gan_resumed_in_process_equals_uninterrupted(tmp_path):
    """Two optimizers and sampled noise: seed-generator states are resumed."""
    case = generative.TestGAN()
    (x,) = case.data()

    def run(backup_dir, *callbacks):
        model = case._seeded_model()
        keras.utils.set_random_seed(99)
        with op_determinism():
            try:
                model.fit(
                    x,
                    batch_size=8,
                    epochs=2,
                    verbose=0,
                    callbacks=[BackupAndRestore(backup_dir, save_freq=5), *callbacks],
                )
            except KeyboardInterrupt:
                pass
        return model

    expected = run(tmp_path / "a")
    run(tmp_path / "b", Interrupt(1, 3))
    assert_same_state(run(tmp_path / "b"), expected)


# ----------------------------------------------------------------------
# Experience datasets
# ----------------------------------------------------------------------


def dqn_replay(**kwargs):
    keras.utils.set_random_seed(0)
    model = DQN(network("q_network", 2), target_update_period=4)
    model.compile()
    envs = [gym.make("CartPole-v1") for _ in range(2)]
    defaults = {"batch_size": 8, "capacity": 20, "learning_starts": 10, "seed": 0}
    return ReplayBufferDataset(envs, model, **{**defaults, **kwargs})


def rollouts(**kwargs):
    keras.utils.set_random_seed(0)
    model = ActorCritic(network("policy", 2), network("value", 1, seed=3))
    model.compile()
    envs = [gym.make("CartPole-v1") for _ in range(2)]
    return RolloutDataset(envs, model, rollout_steps=8, seed=0, **kwargs)


@pytest.mark.parametrize("make", [dqn_replay, rollouts], ids=["replay", "rollout"])
def test_experience_dataset_state_restores_the_batches_to_come(make):
    dataset = make()
    envs = list(dataset.envs)
    for _ in range(3):  # episodes end and the buffer wraps around
        dataset.next_batch()
    state = dataset.get_state()
    expected = [dataset.next_batch() for _ in range(4)]
    steps = dataset.environment_steps
    dataset.next_batch()
    dataset.set_state(state)
    for batch in expected:
        actual = dataset.next_batch()
        for key in batch:
            np.testing.assert_array_equal(actual[key], batch[key], err_msg=key)
    assert dataset.environment_steps == steps
    assert dataset.envs == envs  # restored in place
    # A fresh dataset takes the state too.
    other = make()
    other.set_state(state)
    for batch in expected:
        actual = other.next_batch()
        for key in batch:
            np.testing.assert_array_equal(actual[key], batch[key], err_msg=key)


def test_replay_state_is_checked():
    state = dqn_replay().get_state()
    with pytest.raises(ValueError, match="capacity"):
        dqn_replay(capacity=30).set_state(state)


def test_save_state_is_off_by_default_and_unpicklable_envs_are_named():
    assert not dqn_replay().save_state
    dataset = dqn_replay(save_state=True)
    assert dataset.save_state
    dataset.envs[0].unwrapped.unpicklable = lambda: None
    with pytest.raises(ValueError, match="cannot be pickled"):
        dataset.get_state()
