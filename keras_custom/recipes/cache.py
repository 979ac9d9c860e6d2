"""Trained recipes kept on disk and shared by the processes of one run.

The slow quality tests, the notebooks and the demo train several models with
exactly the same recipe calls (`train_fixmatch(0)`, `train_gan(seed=0)`, ...).
When the environment variable `KERAS_CUSTOM_RECIPE_CACHE` names a directory,
each recipe decorated with `cached_training` saves what it trained there
(`.keras` files and the `fit()` history) and any later identical call, in
this process or another one (an xdist worker, a notebook's kernel), loads it
instead of training again. The test session sets the variable to a fresh
directory and removes it at the end; CI sets it for the demo too.

A call is identical when the recipe, every argument but `verbose` (arrays
and models by the bytes of their values and weights), the source files of
`keras_custom`, the Keras backend and the versions of Keras, TensorFlow,
JAX and NumPy are. A lock per call makes a second process wait for the
first one's training instead of repeating it. Unset, nothing changes:
every call trains.

Example:

```python
from keras_custom.recipes import cache


@cache.cached_training
def train(seed: int = 0, verbose: int = 0):
    ...  # Builds, compiles and fits a model, and returns it.
```

and, in a shell, `KERAS_CUSTOM_RECIPE_CACHE=/tmp/recipes python -m pytest`.
"""

import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np

try:  # POSIX: a second process waits for the first one's training.
    import fcntl
except ImportError:  # pragma: no cover - Windows: identical calls may repeat.
    fcntl = None

#: The environment variable that names the cache directory.
ENVIRONMENT_VARIABLE = "KERAS_CUSTOM_RECIPE_CACHE"
#: Arguments that do not change what a recipe trains.
IGNORED_ARGUMENTS = ("verbose",)


class _NotCacheable(TypeError):
    """An argument whose value has no stable fingerprint."""


def cached_training(recipe: Callable) -> Callable:
    """Decorates a recipe that returns a trained model or a tuple of them.

    With `KERAS_CUSTOM_RECIPE_CACHE` unset, or an argument that is not a
    number, string, `None`, tuple, list, NumPy array or Keras model (by
    its weights), the recipe just runs.

    Args:
        recipe: A function returning a `keras.Model` (its `history`, if
            set, is kept) or a tuple of them.

    Returns:
        The recipe, reading and filling the cache.
    """
    signature = inspect.signature(recipe)

    @functools.wraps(recipe)
    def cached(*args, **kwargs):
        directory = os.environ.get(ENVIRONMENT_VARIABLE)
        if not directory:
            return recipe(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        try:
            key = _key(recipe, bound.arguments)
        except _NotCacheable:
            return recipe(*args, **kwargs)
        path = Path(directory) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with _one_process_at_a_time(path.with_name(path.name + ".lock")):
            if path.is_dir():
                return _load(path)
            result = recipe(*args, **kwargs)
            _save(result, path)
            return result

    return cached


def _key(recipe: Callable, arguments: dict) -> str:
    """The file name of a call: the recipe's name and a digest of the rest."""
    digest = hashlib.sha256(_environment_fingerprint().encode())
    for name, value in arguments.items():
        if name not in IGNORED_ARGUMENTS:
            digest.update(f"{name}=".encode())
            _hash_value(value, digest)
            digest.update(b";")
    return f"{recipe.__module__}.{recipe.__qualname__}-{digest.hexdigest()[:24]}"


def _hash_value(value, digest) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        digest.update(repr(value).encode())
    elif isinstance(value, np.generic):
        _hash_value(value.item(), digest)
    elif isinstance(value, (tuple, list)):
        digest.update(f"{type(value).__name__}[".encode())
        for item in value:
            _hash_value(item, digest)
            digest.update(b",")
        digest.update(b"]")
    elif isinstance(value, np.ndarray):
        digest.update(f"array{value.shape}{value.dtype}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, keras.Model):
        digest.update(f"model:{type(value).__name__}".encode())
        for variable in value.weights:  # by value: names differ by process
            _hash_value(keras.ops.convert_to_numpy(variable), digest)
    else:
        raise _NotCacheable(type(value).__name__)


@functools.cache
def _environment_fingerprint() -> str:
    """The backend, the library versions and the source of `keras_custom`."""
    digest = hashlib.sha256(keras.backend.backend().encode())
    for package in ("keras", "tensorflow", "jax", "numpy"):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{package}=={version};".encode())
    root = Path(__file__).resolve().parents[1]
    for source in sorted(root.rglob("*.py")):
        digest.update(source.relative_to(root).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _one_process_at_a_time(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _save(result, path: Path) -> None:
    """Saves `result` into `path` at once (a renamed temporary directory)."""
    models = result if isinstance(result, tuple) else (result,)
    if not all(isinstance(model, keras.Model) for model in models):
        return  # Not a trained model: nothing to keep.
    partial = path.with_name(f"{path.name}.partial{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    histories = []
    for index, model in enumerate(models):
        model.save(partial / f"{index}.keras")
        history = getattr(model, "history", None)
        histories.append(
            None
            if history is None
            else {
                "epoch": [int(epoch) for epoch in history.epoch],
                "params": _plain(history.params),
                "history": _plain(history.history),
            }
        )
    manifest = {"tuple": isinstance(result, tuple), "histories": histories}
    (partial / "manifest.json").write_text(json.dumps(manifest))
    os.replace(partial, path)


def _plain(value):
    """`value` with NumPy numbers made Python numbers, for JSON."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _load(path: Path):
    manifest = json.loads((path / "manifest.json").read_text())
    models = []
    for index, saved in enumerate(manifest["histories"]):
        model = keras.models.load_model(path / f"{index}.keras")
        if saved is not None:
            history = keras.callbacks.History()
            history.epoch = saved["epoch"]
            history.history = saved["history"]
            history.set_params(saved["params"])
            history.set_model(model)
            model.history = history
        models.append(model)
    return tuple(models) if manifest["tuple"] else models[0]
