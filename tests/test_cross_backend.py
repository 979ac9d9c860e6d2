"""A `.keras` file saved on one backend loads and trains on the other.

Every public model class (one conformance case each, and a user's
`CustomModel` subclass) is trained and saved under one backend in a fresh
process, then loaded under the other: its predictions equal the saved
model's, its optimizers resume from their saved step counts, and it trains.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")
# Both directions run in fresh processes whatever the backend of this one;
# CI runs this file once, in its JAX stage.
pytestmark = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND") != "jax",
    reason="run in the JAX stage (KERAS_BACKEND=jax)",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command: str, folder: str, backend: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.cross_backend", command, folder],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert result.returncode == 0, (
        f"{command} on {backend} failed:\n{result.stderr[-6000:]}"
    )
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "saved_on, loaded_on", [("tensorflow", "jax"), ("jax", "tensorflow")]
)
def test_saved_on_one_backend_loads_and_trains_on_the_other(
    tmp_path, saved_on, loaded_on
):
    from tests.cross_backend import CASES

    run("save", str(tmp_path), saved_on)
    output = run("load", str(tmp_path), loaded_on)
    assert output.count("loaded and trained") == len(CASES), output
