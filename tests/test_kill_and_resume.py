"""A run killed with SIGKILL and resumed by `BackupAndRestore` ends where an
uninterrupted run ends: weights, optimizer states and step counters, target
network and random-generator states, and for a DQN its replay buffer.

Keras's callback resumes exactly from checkpoints at epoch ends with NumPy
arrays read in order; `keras_custom.callbacks.BackupAndRestore` resumes from
checkpoints in the middle of an epoch (`save_freq=N`) at the batch after the
checkpoint, each batch trained once, with shuffled arrays and reshuffling
`tf.data` pipelines in the uninterrupted run's order."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.resumable_training import EPOCHS

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    "tests.test_generative_conformance:TestGAN",
    "tests.test_generative_conformance:TestVAE",
    "tests.test_self_supervised_conformance:TestBYOL",
]
GAN = "tests.test_generative_conformance:TestGAN"
#: What a process writes besides the training state it is compared on.
RECORDS = {"epochs_run", "trained"}


def train(case, backup_dir, output, *kill, options=()):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.resumable_training",
            case,
            str(backup_dir),
            str(output),
            *map(str, kill),
            *options,
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def kill_and_resume(case, tmp_path, kill, options=()):
    """Runs `case` uninterrupted, then killed after batch `kill` and resumed;
    returns both outputs and the checkpoint the killed run left."""
    uninterrupted = train(
        case, tmp_path / "backup_a", tmp_path / "a.npz", options=options
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    killed = train(
        case, tmp_path / "backup_b", tmp_path / "b.npz", *kill, options=options
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "b.npz").exists()
    assert (tmp_path / "backup_b").exists(), "no checkpoint was left to resume from"
    checkpoint = json.loads(
        (tmp_path / "backup_b" / "training_metadata.json").read_text()
    )

    resumed = train(case, tmp_path / "backup_b", tmp_path / "b.npz", options=options)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (tmp_path / "backup_b").exists()  # deleted once fit() completed
    return np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz"), checkpoint


def assert_same_training_state(actual, expected):
    keys = {k for k in expected.files if k not in RECORDS and not k.startswith("log_")}
    assert keys == {
        k for k in actual.files if k not in RECORDS and not k.startswith("log_")
    }
    assert any(k.startswith("variable_") for k in keys)
    # The optimizers' `iterations` are among them: as many steps as without
    # the kill.
    for key in sorted(keys):
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def as_batches(records) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in pair) for pair in records]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.split(":")[1])
def test_killed_and_resumed_run_equals_uninterrupted(case, tmp_path):
    expected, actual, _ = kill_and_resume(case, tmp_path, (2, 1))
    np.testing.assert_array_equal(expected["epochs_run"], range(EPOCHS))
    # The resumed process started over at the epoch it was killed in.
    np.testing.assert_array_equal(actual["epochs_run"], range(2, EPOCHS))
    assert_same_training_state(actual, expected)


# (case, options, kill after (epoch, batch), checkpoint (epoch, batches done))
MID_EPOCH = [
    pytest.param(
        GAN,
        ("--data", "shuffled", "--save-freq", "3"),
        (2, 2),
        (2, 1),  # 4 batches an epoch: saved after 3, 6, 9 (epoch 2, batch 0)
        id="GAN-shuffled-arrays",
    ),
    pytest.param(
        "tests.test_conformance:TestFunctionalCompileForm",
        ("--data", "dataset", "--save-freq", "2"),
        (1, 2),
        (1, 2),
        id="classifier-compiled-metrics-tf.data",
    ),
    pytest.param(
        "tests.test_generative_conformance:TestVAE",
        ("--data", "repeated", "--save-freq", "2"),
        (2, 2),
        (2, 2),  # 3 steps an epoch over a repeated 4-batch pipeline
        id="VAE-repeated-tf.data-steps_per_epoch",
    ),
    pytest.param(
        GAN,
        ("--data", "shuffled", "--save-freq", "4", "--steps-per-execution", "2"),
        (2, 1),
        (1, 4),  # the checkpoint is at the end of epoch 1, before on_epoch_end
        id="GAN-steps_per_execution",
    ),
    pytest.param(
        GAN,
        ("--data", "dataset"),
        (2, 1),
        (2, 0),  # at each epoch's end; the pipeline's epoch-2 order is kept
        id="GAN-reshuffled-tf.data-epoch-checkpoints",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "options", "kill", "checkpoint"), MID_EPOCH)
def test_mid_epoch_kill_resumes_at_the_next_batch(
    case, options, kill, checkpoint, tmp_path
):
    options = ("--callback", "keras_custom", *options)
    expected, actual, saved = kill_and_resume(case, tmp_path, kill, options)
    assert (saved["epoch"], saved["batches_done"]) == checkpoint
    assert_same_training_state(actual, expected)

    # The resumed process trained exactly the batches after the checkpoint,
    # each once: none it had trained before the kill's checkpoint.
    epoch, done = checkpoint
    uninterrupted = as_batches(expected["trained"])
    assert len(set(uninterrupted)) == len(uninterrupted)
    remaining = [(e, b) for e, b in uninterrupted if (e, b) >= (epoch, done)]
    assert as_batches(actual["trained"]) == remaining
    np.testing.assert_array_equal(actual["epochs_run"], range(epoch, EPOCHS))
    # The epochs' logs too: the resumed epoch's running means were restored.
    resumed_epochs = len(actual["epochs_run"])
    for key in (k for k in expected.files if k.startswith("log_")):
        np.testing.assert_array_equal(
            actual[key], expected[key][-resumed_epochs:], err_msg=key
        )


@pytest.mark.slow
def test_dqn_with_saved_replay_buffer_resumes_exactly(tmp_path):
    options = ("--callback", "keras_custom", "--save-freq", "2")
    expected, actual, saved = kill_and_resume("dqn", tmp_path, (2, 2), options)
    # 3 updates an epoch: saved after updates 2, 4, 6, 8 (epoch 2, update 1).
    assert (saved["epoch"], saved["batches_done"]) == (2, 2)
    # Weights, optimizer, target network, and the dataset: buffer, position,
    # environments, random generator, environment steps, episode returns.
    assert any(k.startswith("data_buffer_") for k in expected.files)
    assert_same_training_state(actual, expected)
    assert as_batches(actual["trained"]) == [(2, 2), (3, 0), (3, 1), (3, 2)]
