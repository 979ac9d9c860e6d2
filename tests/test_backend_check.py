"""`import keras_custom` on another Keras backend fails at once, saying why."""

import os
import subprocess
import sys
import textwrap

import pytest


def test_another_backend_is_refused_at_import():
    # Works without JAX or PyTorch installed: the backend Keras reports is
    # faked.
    code = textwrap.dedent(
        """
        import keras
        keras.backend.backend = lambda: "jax"
        try:
            import keras_custom
        except ImportError as error:
            print("REFUSED", error)
        else:
            print("IMPORTED")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.splitlines()[-1]
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
    code = textwrap.dedent(
        """
        try:
            import keras_custom
        except ImportError as error:
            print("REFUSED", error)
        else:
            print("IMPORTED")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.splitlines()[-1]
    assert last.startswith("REFUSED keras_custom needs the TensorFlow backend")
    assert "running on 'jax'" in last
