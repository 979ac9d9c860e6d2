"""End-to-end tests of the `keras-custom demo` command."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_custom
from keras_custom.datasets import digits

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_custom", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Runs the demo once; the tests below check its output."""
    output_dir = tmp_path_factory.mktemp("demo")
    result = _run_cli("demo", "--output-dir", str(output_dir), "--quiet")
    return result, output_dir


def _printed_accuracy(stdout: str) -> float:
    match = re.search(r"test accuracy: ([0-9.]+)", stdout)
    assert match, f"no test accuracy printed in:\n{stdout}"
    return float(match.group(1))


@pytest.mark.slow
def test_demo_exits_cleanly_and_reaches_accuracy(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert _printed_accuracy(result.stdout) >= 0.95
    assert str(output_dir.resolve()) in result.stdout
    assert str(output_dir / "classifier.keras") in result.stdout
    assert str(output_dir / "classifier.png") in result.stdout
    # --quiet: no Keras progress bar.
    assert "Epoch 1/" not in result.stdout


@pytest.mark.slow
def test_saved_model_reproduces_printed_accuracy(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(output_dir / "classifier.keras")
    assert isinstance(model, keras_custom.CustomModel)

    _, (x_test, y_test) = digits.load_data()
    x = (x_test.astype("float32") / 16.0).reshape(len(x_test), 64)
    logits = np.asarray(model.predict(x, verbose=0))
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == y_test))

    assert accuracy >= 0.95
    # The printed value has 4 decimals.
    assert accuracy == pytest.approx(_printed_accuracy(result.stdout), abs=1e-4)


@pytest.mark.slow
def test_demo_writes_a_png(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    path = output_dir / "classifier.png"
    assert path.is_file()
    assert path.stat().st_size > len(PNG_MAGIC)
    assert path.read_bytes()[: len(PNG_MAGIC)] == PNG_MAGIC


def test_unknown_subcommand_fails_with_usage():
    result = _run_cli("no-such-command")
    assert result.returncode != 0
    assert "usage: keras-custom" in result.stderr
    assert "invalid choice" in result.stderr


def test_no_subcommand_prints_usage():
    result = _run_cli()
    assert result.returncode != 0
    assert "usage: keras-custom" in result.stderr
    assert "demo" in result.stderr


def test_unknown_demo_name_fails_with_usage():
    result = _run_cli("demo", "--only", "no-such-demo")
    assert result.returncode != 0
    assert "usage: keras-custom demo" in result.stderr
