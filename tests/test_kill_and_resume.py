"""A run killed with SIGKILL mid-epoch and resumed by `BackupAndRestore`
ends where an uninterrupted run ends: weights, optimizer states, target
network and random-generator states."""

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


def train(case, backup_dir, output, *kill):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.resumable_training",
            case,
            str(backup_dir),
            str(output),
            *map(str, kill),
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.split(":")[1])
def test_killed_and_resumed_run_equals_uninterrupted(case, tmp_path):
    uninterrupted = train(case, tmp_path / "backup_a", tmp_path / "a.npz")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    killed = train(case, tmp_path / "backup_b", tmp_path / "b.npz", 2, 1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "b.npz").exists()
    assert (tmp_path / "backup_b").exists(), "no checkpoint was left to resume from"

    resumed = train(case, tmp_path / "backup_b", tmp_path / "b.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected, actual = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(expected["epochs_run"], range(EPOCHS))
    # The resumed process started over at the epoch it was killed in.
    np.testing.assert_array_equal(actual["epochs_run"], range(2, EPOCHS))
    keys = set(expected.files) - {"epochs_run"}
    assert keys == set(actual.files) - {"epochs_run"}
    assert any(k.startswith("variable_") for k in keys)
    for key in sorted(keys):
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
