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
    # Works without JAX or PyTorch installed: the backend Keras reports is
    # faked.
    last = _import_in_subprocess(
        """
        import keras
        keras.backend.backend = lambda: "jax"
        """
    )
    assert last.startswith("REFUSED keras_custom needs the TensorFlow backend")
    assert "running on 'jax'" in last
    assert "KERAS_BACKEND=tensorflow" in last


def test_the_tensorflow_backend_imports():
    import keras

    import keras_custom

    assert keras.backend.backend() == "tensorflow"
    assert keras_custom.CustomModel.__name__ == "CustomModel"


def test_keras_backend_jax_in_the_environment_is_refused_at_import():
    # What users of Keras 3 commonly have set; needs JAX installed (the
    # `dev` extra installs it for Keras's own trainer tests).
    pytest.importorskip("jax")
    last = _import_in_subprocess(KERAS_BACKEND="jax")
    assert last.startswith("REFUSED keras_custom needs the TensorFlow backend")
    assert "running on 'jax'" in last
    assert "KERAS_BACKEND=tensorflow" in last
