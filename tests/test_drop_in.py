"""`CustomModel` behaves as `keras.Model` where Keras's own tests look, and
the Keras internals it needs are in one module, checked against the
installed versions."""

import ast
import pathlib
import pickle
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_custom
from keras_custom import CustomModel
from keras_custom.core import keras_internals

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _functional(cls=CustomModel, **kwargs):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs))
    return cls(inputs, outputs, **kwargs)


@keras.saving.register_keras_serializable(package="keras_custom_tests")
class Subclassed(CustomModel):
    def __init__(self, units: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 3)).astype(
        "float32"
    )


# ----------------------------------------------------------------------
# Pickling
# ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [_functional, lambda: Subclassed()])
def test_pickle_round_trip_keeps_predictions_and_training_state(make):
    x, y = _data()
    model = make()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    restored = pickle.loads(pickle.dumps(model))
    assert type(restored).__name__ == type(model).__name__
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 8
    restored.fit(x, y, batch_size=8, verbose=0)  # trains on


def test_functional_variant_pickles_as_its_class():
    # Pickle names a class by its qualified name; the functional variant
    # shares it with its class, so Keras's `(type(model)._unpickle_model,
    # ...)` could not be pickled (the bug of keras_custom 0.1).
    model = _functional()
    assert type(model) is not CustomModel and isinstance(model, CustomModel)
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded, CustomModel)
    assert isinstance(loaded, keras_internals.Functional)


# ----------------------------------------------------------------------
# The step is traced as Keras traces it: no autograph conversion
# ----------------------------------------------------------------------


def _python_if_on_tensor(base):
    class PythonIf(base):
        def train_step(self, data):
            x, y = data
            loss = keras.ops.mean(keras.ops.square(self(x) - y))
            if loss > 0:  # a Python `if` on a symbolic tensor
                loss = loss * 2
            return {"loss": loss}

    return PythonIf


def _error_of_fit(base):
    inputs = keras.Input((4,))
    model = _python_if_on_tensor(base)(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer="sgd")
    x, y = _data()
    with pytest.raises(Exception) as caught:
        model.fit(x, y, batch_size=8, verbose=0)
    return caught.value


def test_python_control_flow_on_tensors_fails_as_on_keras_model():
    keras_error = _error_of_fit(keras.Model)
    custom_error = _error_of_fit(CustomModel)
    assert type(custom_error) is type(keras_error)
    assert isinstance(custom_error, tf.errors.OperatorNotAllowedInGraphError)


def test_exceptions_raised_in_a_step_keep_their_type():
    class Refuses(CustomModel):
        def train_step(self, data):
            raise KeyError("a key the step does not know")

    inputs = keras.Input((4,))
    model = Refuses(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer="sgd")
    x, y = _data()
    with pytest.raises(KeyError, match="a key the step does not know"):
        model.fit(x, y, verbose=0)


# ----------------------------------------------------------------------
# metrics[0] is the loss tracker, as in Keras
# ----------------------------------------------------------------------


def test_metrics_start_with_the_loss_tracker_as_in_keras():
    for base in (keras.Model, CustomModel):
        model = _functional(base)
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        assert len(model.metrics) == 2, base
        assert model.metrics[0] is model._loss_tracker, base
        assert model.metrics[1] is model._compile_metrics, base
    x, y = _data()
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert float(model.metrics[0].result()) == pytest.approx(
        history.history["loss"][-1]
    )


def test_recompiling_keeps_one_loss_tracker_first():
    model = _functional()
    model.compile(optimizer="sgd", loss="mse")
    first = model.metrics[0]
    model.compile(optimizer="sgd", loss="mae", metrics=["mse"])
    assert model.metrics[0] is model._loss_tracker is first
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]


def test_a_model_that_logs_loss_shares_its_tracker_with_keras():
    class Logs(CustomModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = self.add_tracker("loss")
            self.add_tracker("extra")

        def train_step(self, data):
            x, y = data
            loss = self.minimize(lambda: keras.ops.mean((self(x) - y) ** 2))
            return {"extra": loss, "loss": loss}

    inputs = keras.Input((4,))
    model = Logs(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer="sgd")
    assert model.metrics[0] is model.loss_tracker is model._loss_tracker
    assert [m.name for m in model.metrics] == ["loss", "extra"]


def test_a_model_that_logs_other_names_leaves_keras_loss_tracker_out():
    class TwoLosses(CustomModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_tracker("a_loss")

        def train_step(self, data):
            x, y = data
            return {"a_loss": self.minimize(lambda: keras.ops.mean(self(x) - y))}

    inputs = keras.Input((4,))
    model = TwoLosses(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer="sgd")
    x, y = _data()
    history = model.fit(x, y, verbose=0)
    assert set(history.history) == {"a_loss"}


# ----------------------------------------------------------------------
# Private API in one module, checked against the installed versions
# ----------------------------------------------------------------------


def _keras_private_names() -> set:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(np.zeros((2, 1)), np.zeros((2, 1)), verbose=0)
    strategy = tf.distribute.get_strategy()
    objects = [
        model,
        model.optimizer,
        keras.metrics.Mean(),
        keras.random.SeedGenerator(1),
        keras.layers.Dense(1),
        strategy,
        strategy.extended,
    ]
    names = set()
    for obj in objects:
        names.update(dir(obj))
        names.update(getattr(obj, "__dict__", {}))
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_every_keras_internal_is_reached_through_keras_internals():
    private = _keras_private_names()
    found = []
    for path in sorted((ROOT / "keras_custom").rglob("*.py")):
        if "keras_internals" in path.parts:
            continue
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private:
                found.append(f"{where}:{node.lineno} reads `{node.attr}`")
            elif isinstance(node, ast.FunctionDef) and node.name in private:
                found.append(f"{where}:{node.lineno} overrides `{node.name}`")
            elif isinstance(node, ast.ImportFrom | ast.Import):
                modules = (
                    [node.module]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                for module in modules:
                    if module and module.startswith(("keras.src", "tensorflow.python")):
                        found.append(f"{where}:{node.lineno} imports `{module}`")
    assert not found, "Keras internals outside core/keras_internals/:\n" + "\n".join(
        found
    )


def test_every_internal_exists_in_the_installed_versions():
    keras_internals.check()


def test_a_missing_internal_is_named_in_the_error(monkeypatch):
    # Where Keras defines it (a base class of `keras.Model`).
    owner = next(c for c in keras.Model.__mro__ if "_unpickle_model" in vars(c))
    monkeypatch.delattr(owner, "_unpickle_model")
    with pytest.raises(RuntimeError, match=r"lacks `Model._unpickle_model`"):
        keras_internals.check()


def test_a_missing_private_module_fails_at_import_with_its_name():
    with pytest.raises(ImportError, match=r"`keras.src.nowhere.Thing` is missing.*"):
        keras_internals._private("keras.src.nowhere", "Thing", "for a test")


def _declared_range(package: str) -> tuple[str, str]:
    """`(lower, upper)` of `"package>=lower,<upper"` in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(rf'"{package}>=([\d.]+),<([\d.]+)"', text)
    assert match, f"pyproject.toml declares no range `{package}>=A,<B`"
    return match.group(1), match.group(2)


def test_declared_versions_are_the_tested_range():
    for package, (oldest, newest) in (
        ("keras", keras_internals.SUPPORTED_KERAS),
        ("tensorflow", keras_internals.SUPPORTED_TENSORFLOW),
    ):
        lower, upper = _declared_range(package)
        assert keras_internals.minor_version(lower) == keras_internals.minor_version(
            oldest
        ), package
        # The bound is the next minor release, untested.
        major, minor = keras_internals.minor_version(newest)
        assert upper == f"{major}.{minor + 1}", package


def test_installed_versions_are_supported():
    assert keras_internals.unsupported_versions() == []
    assert keras_custom.__version__


def test_versions_outside_the_range_are_named(monkeypatch):
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    assert keras_internals.unsupported_versions() == ["Keras 3.16.0"]
    monkeypatch.setattr(keras, "__version__", "3.9.2")
    assert keras_internals.unsupported_versions() == ["Keras 3.9.2"]
    assert keras_internals.minor_version("2.21.0rc1") == (2, 21)
