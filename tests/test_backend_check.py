"""`import keras_custom` on another Keras backend fails at once, saying why."""

import os
import subprocess
import sys
import textwrap

import pytest

_IMPORT = """
try:
    import keras_custom
except ImportError as error:
    print("REFUSED", error)
else:
    print("IMPORTED")
"""


def _import_in_subprocess(prelude: str = "", **environment: str) -> str:
    """The last line a fresh Python prints on importing keras_custom."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(prelude) + _IMPORT],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **environment},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()[-1]


def test_another_backend_is_refused_at_import():
    # Works without PyTorch installed: the backend Keras reports is faked.
    last = _import_in_subprocess(
        """
        import keras
        keras.backend.backend = lambda: "torch"
        """
    )
    assert last.startswith(
        "REFUSED keras_custom runs on the TensorFlow or the JAX backend"
    )
    assert "running on 'torch'" in last
    assert "KERAS_BACKEND=tensorflow" in last
    assert "keras-custom[jax]" in last


def test_the_default_backend_imports():
    import keras

    import keras_custom

    assert keras.backend.backend() in keras_custom.SUPPORTED_BACKENDS
    assert keras_custom.CustomModel.__name__ == "CustomModel"


@pytest.mark.parametrize("name", ["tensorflow", "jax"])
def test_keras_backend_in_the_environment_imports(name):
    # KERAS_BACKEND=jax is what many users of Keras 3 have set; the `jax`
    # extra (and `dev`) installs JAX.
    pytest.importorskip(name)
    last = _import_in_subprocess(
        "",
        KERAS_BACKEND=name,
    )
    assert last == "IMPORTED"
