"""The conformance harness: one matrix of checks that every model must pass."""

import contextlib
import copy
import functools
import math
import os
import pickle
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_custom.core import op_determinism
from keras_custom.testing.devices import logical_cpus


def assert_weights_close(actual, expected, atol: float = 1e-5, what: str = "weights"):
    """Asserts two lists of arrays (or variables) are equal to `atol`.

    Args:
        actual: Arrays, tensors or variables.
        expected: As many arrays, of the same shapes.
        atol: Absolute and relative tolerance; 0 asks for equality.
        what: What is compared, for the error message.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.testing import assert_weights_close

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    assert_weights_close(clone.weights, model.get_weights(), atol=0)
    clone.layers[0].bias.assign(np.ones(2))
    try:
        assert_weights_close(clone.weights, model.weights, what="clone")
    except AssertionError as error:
        print(error)  # ... clone[1] differ ... (the values that differ)
    ```
    """
    actual = [np.asarray(keras.ops.convert_to_numpy(w)) for w in actual]
    expected = [np.asarray(keras.ops.convert_to_numpy(w)) for w in expected]
    assert len(actual) == len(expected), (
        f"{what}: {len(actual)} arrays against {len(expected)}"
    )
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert a.shape == e.shape, f"{what}[{index}]: shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(
            a, e, atol=atol, rtol=atol, err_msg=f"{what}[{index}] differ"
        )


def optimizer_states(model) -> dict:
    """The variable values of every named optimizer of `model`.

    Returns:
        A dict from optimizer name (`"optimizer"` for a plain
        `keras.Model`) to the NumPy values of its variables.

    Example:

    A saved and loaded GAN resumes with both optimizers' states:

    ```python
    import os
    import tempfile

    import keras
    import numpy as np
    from keras_custom import GAN
    from keras_custom.testing import assert_weights_close, optimizer_states

    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    discriminator = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    gan = GAN(generator, discriminator, latent_dim=4, seed=0)
    gan.compile()
    gan.fit(np.ones((32, 8), "float32"), batch_size=16, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "gan.keras")
        gan.save(path)
        loaded = keras.models.load_model(path)
    saved, restored = optimizer_states(gan), optimizer_states(loaded)
    print(sorted(saved))  # ['d_optimizer', 'g_optimizer']
    for name in saved:
        assert_weights_close(restored[name], saved[name], atol=0, what=name)
    ```
    """
    optimizers = getattr(model, "optimizers", None)
    if optimizers is None:
        optimizers = {"optimizer": model.optimizer}
    return {
        name: [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
        for name, optimizer in optimizers.items()
    }


@functools.cache
def mirrored_strategy(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """One `MirroredStrategy` per device set for the whole process.

    Strategies made anew for each model in one process reuse the same
    collective keys, and their all-reduces then collide.

    Args:
        devices: Names of the devices, a tuple (it is the cache's key).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import CustomModel
    from keras_custom.testing import logical_cpus, mirrored_strategy

    # Two replicas after `split_cpu(2)` (as in a test session), else one.
    strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
    assert mirrored_strategy(tuple(logical_cpus()[:2])) is strategy
    with strategy.scope():
        inputs = keras.Input((4,))
        model = CustomModel(inputs, keras.layers.Dense(1)(inputs),
                            optimizer="adam", loss="mse")
        model.compile()
    model.fit(np.ones((32, 4)), np.ones((32, 1)), batch_size=8, verbose=0)
    ```
    """
    return tf.distribute.MirroredStrategy(list(devices))


class _Distribution:
    """Two devices: `MirroredStrategy` on TensorFlow, `DataParallel` on JAX.

    A model is created under `creation_scope()`; `fit()` and `evaluate()`
    run under `run_scope()` (on TensorFlow the model keeps its strategy; on
    JAX the distribution in effect lays out the data).
    """

    def __init__(self, devices):
        if keras.backend.backend() == "jax":
            import jax

            self.name = "DataParallel"
            self.distribution = keras.distribution.DataParallel(
                devices=jax.devices("cpu")[: len(devices)]
            )
        else:
            self.name = "MirroredStrategy"
            self.distribution = mirrored_strategy(tuple(devices))
        self.replicas = len(devices)

    def creation_scope(self):
        return self.distribution.scope()

    def run_scope(self):
        if self.name == "DataParallel":
            return self.distribution.scope()
        return contextlib.nullcontext()


def _count(data) -> int:
    """The number of examples of a (nested) tuple of arrays."""
    return len(keras.tree.flatten(data)[0])


def _normalized(config):
    """`config` with class names lower-cased (Keras writes 'adam' or 'Adam')
    and without the generated names of optimizers ('adam', 'adam_1')."""
    if isinstance(config, dict):
        is_optimizer = config.get("module") == "keras.optimizers"
        return {
            key: value.lower() if key == "class_name" else _normalized(value)
            for key, value in config.items()
            if not (is_optimizer and key == "config")
        } | (
            {"config": {k: v for k, v in config["config"].items() if k != "name"}}
            if is_optimizer
            else {}
        )
    if isinstance(config, (list, tuple)):
        return [_normalized(value) for value in config]
    return config


def _own_message(error: BaseException) -> str:
    """The error's own message, without the traceback of the traced code
    that TensorFlow puts before it ("in user code: ...")."""
    text = str(error)
    if not text.lstrip().startswith("in user code:"):
        return text
    match = re.search(rf"^\s*{type(error).__name__}: ", text, flags=re.MULTILINE)
    return text[match.end() :].strip() if match else text


def _off_by_replicas(values, expected, replicas: int) -> str | None:
    """`"1/N of"` or `"N times"` when `values` are `expected` divided or
    multiplied by the replica count `N` (to 1%), else `None`."""
    if not np.all(expected != 0) or np.allclose(values, expected, rtol=1e-2):
        return None
    if np.allclose(values * replicas, expected, rtol=1e-2):
        return f"1/{replicas} of"
    if np.allclose(values, expected * replicas, rtol=1e-2):
        return f"{replicas} times"
    return None


def _listed(values) -> str:
    """Logged values for a message: `0.1234` or `[0.1234, 0.0987]`."""
    texts = [f"{value:.6g}" for value in np.ravel(values)]
    return texts[0] if len(texts) == 1 else f"[{', '.join(texts)}]"


def _shift(variables) -> None:
    """Adds one to each numeric variable, so that a check sees what loading
    restores (models built from one seed start equal)."""
    for variable in variables:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if "float" in dtype or "int" in dtype:
            variable.assign(variable + keras.ops.cast(1, dtype))


def _built_optimizers(model) -> dict:
    """The optimizers of `model` that are built (Keras loads saved optimizer
    state only into an optimizer that has its variables)."""
    optimizers = getattr(model, "optimizers", None)
    if optimizers is None:
        optimizers = {"optimizer": getattr(model, "optimizer", None)}
    return {name: o for name, o in optimizers.items() if o is not None and o.built}


def _is_library_model(model) -> bool:
    """Whether `model`'s class is one of keras_custom's own (not a user's)."""
    return type(model).__module__.startswith("keras_custom.")


def _masked(message: str) -> str:
    """`message` with its numbers and quoted names masked ("found 2 saved
    layers", "deserialize 'keras.metrics.mse'")."""
    return re.sub(r"\d+", "<n>", re.sub(r"'[^'\s]*'", "'<name>'", message))


class _BuiltByHand(keras.Model):
    """A subclassed `keras.Model` of built layers, marked built in
    `__init__` as a model of built sub-models is: no call builds it, so
    Keras never records the shape of its inputs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.dense.build((None, 1))
        self.built = True

    def call(self, x):
        return self.dense(x)


class _BuiltByItsFirstCall(keras.Model):
    """A subclassed `keras.Model` whose layers its first call builds, so that
    `from_config` returns it without weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)


def _raised(action):
    """`(type, own message)` of what `action()` raises, or `None`."""
    try:
        action()
    except Exception as error:
        return type(error), _own_message(error)
    return None


@functools.cache
def _keras_refusals(path: str) -> tuple:
    """What Keras raises on saving `path` for the plain `keras.Model`s it
    refuses there, as `(type, message)` pairs.

    Computed on small models with the installed Keras, so that the checks
    follow it. `"export"`: a subclassed model whose input shapes Keras never
    recorded. `"h5 save"`: a model compiled without a main optimizer (a
    model whose optimizers are all named, such as a GAN's, is in that state).
    `"h5 load"`: a subclassed model that `from_config` returns unbuilt, and
    a model compiled with a loss named by an abbreviation (`"mse"`), which
    Keras's legacy loader reads back as a metric.
    """
    x = np.zeros((2, 1), "float32")
    inputs = keras.Input((1,))
    functional = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, "model.h5")
        if path == "export":
            model = _BuiltByHand(name="built_by_hand")
            model.predict(x, verbose=0)
            served = os.path.join(folder, "served")
            actions = [lambda: model.export(served, verbose=False)]
        elif path == "h5 save":
            functional.compile(optimizer=None, loss="mean_squared_error")
            actions = [lambda: functional.save(file)]
        elif path == "h5 load":
            model = _BuiltByItsFirstCall(name="built_by_its_first_call")
            model(x)
            model.save(file)
            classes = {"_BuiltByItsFirstCall": _BuiltByItsFirstCall}
            functional.compile(optimizer="sgd", loss="mse")
            abbreviated = os.path.join(folder, "abbreviated.h5")
            functional.save(abbreviated)
            actions = [
                lambda: keras.models.load_model(file, custom_objects=classes),
                lambda: keras.models.load_model(abbreviated),
            ]
        else:
            raise ValueError(f"Unknown saving path: {path!r}")
        refusals = [_raised(action) for action in actions]
    return tuple(refusal for refusal in refusals if refusal is not None)


class _Recorder(keras.callbacks.Callback):
    """Records epoch logs and the metric results seen at each epoch start."""

    def __init__(self):
        super().__init__()
        self.epoch_logs = []
        self.results_at_epoch_begin = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:  # Compiled metrics are built by the first step.
            self.results_at_epoch_begin.append(
                {m.name: m.result() for m in self.model.metrics}
            )

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append(dict(logs or {}))


class ConformanceTests:
    """The checks every keras_custom model passes, as a pytest mixin.

    Subclass it in a test module as `class TestMyModel(ConformanceTests)`,
    give `build_model` (a fresh, built, uncompiled model) and `data` (NumPy
    arrays `(x, y)` or `(x,)`; `x` may be a tuple of arrays), and set
    `log_keys` to the names the model logs. Each `test_*` method is one
    check of the matrix:

    - `fit` on NumPy arrays and on `tf.data` (same weights); every logged
      value finite; log keys as documented; `val_` keys match train keys;
      `evaluate()` is the mean over all batches, not the last one; trackers
      reset between epochs.
    - `compile()` builds every named optimizer.
    - `get_config`/`from_config` and `.keras` save and load: same
      predictions and same optimizer states; training 2 epochs equals
      1 epoch, save, load, 1 more epoch.
    - Every other saving path of `keras.Model`, each giving the same
      weights and predictions (`predict_inputs()`, to `atol`):
      `save_weights`/`load_weights` with a `.weights.h5` file, optimizer
      states included (`test_weights_file_round_trip`); `export()` for
      serving, reloaded as a `keras.layers.TFSMLayer`
      (`test_export_for_serving`); the legacy `.h5` format, loaded by
      `load_model` and by `load_weights` (`test_legacy_h5`); and
      `pickle` (`test_pickle_round_trip`). Where Keras itself refuses a
      path for a `keras.Model` in the same state, a model of your own may
      be refused with Keras's error, and a model of keras_custom never is:
      Keras exports a subclassed model only once a call has built it,
      writes no legacy file for a model compiled without a main optimizer,
      and reads one back only when `from_config` returns the model built
      and its loss is not named by an abbreviation such as `"mse"`.
    - `steps_per_execution > 1` and `jit_compile=True` give the results of
      the defaults (a model that samples noise, `draws_random_numbers`, is
      only checked to train under XLA, whose random numbers differ);
      `mixed_float16` trains with finite losses and every
      optimizer loss-scaled; `MirroredStrategy` over two logical CPU devices
      gives the weights, the `fit()` logs and the `evaluate()` results of
      one device (call `keras_custom.testing.split_cpu` in `conftest.py`);
      a logged value that is one device's divided (or multiplied) by the
      replica count fails with an error naming it and the fix.
    - With `keras.utils.set_random_seed` and op determinism, two runs give
      bit-identical weights.
    - Frozen variables (`frozen_variables`) are unchanged by training.
    - Bad input (`bad_inputs`) raises a `ValueError` whose own message
      (not the traceback TensorFlow puts before it) matches the given
      pattern, and not from a graph operation (`{{node ...}}`). The default
      bad inputs hold for every model (a dataset of four-part batches,
      fewer labels than inputs); add the model's own, such as missing
      labels or inputs of the wrong shape. A class whose `bad_inputs()` is
      empty fails this check.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom import CustomModel
    from keras_custom.testing import ConformanceTests


    class TestMyClassifier(ConformanceTests):
        log_keys = {"loss"}

        def build_model(self):
            inputs = keras.Input((4,))
            outputs = keras.layers.Dense(3)(inputs)
            return CustomModel(inputs, outputs, optimizer="adam",
                               loss="mse")

        def data(self):
            rng = np.random.default_rng(0)
            x = rng.normal(size=(64, 4)).astype("float32")
            return x, x[:, :3]

        def bad_inputs(self):  # the defaults, and what this model refuses
            x, y = self.data()
            return super().bad_inputs() + [
                ({"x": x}, r"no labels"),
                ({"x": x[:, :2], "y": y}, r"incompatible"),
            ]
    ```

    Reference:
        KerasHub's `TestCase.run_task_test`: one shared harness, a few lines
        of test per model.
    """

    #: Names the model logs in `fit()` (without `val_`).
    log_keys: set = {"loss"}
    #: Batch size of the checks; the data should hold several batches.
    batch_size: int = 16
    #: Tolerance of weight comparisons.
    atol: float = 1e-5
    #: Whether `test_step` is deterministic (no sampled noise), so that
    #: `evaluate()` can be compared with per-batch evaluations.
    deterministic_evaluation: bool = True
    #: Whether training samples noise (latents, masks). XLA draws other
    #: random numbers than TensorFlow's kernels for the same seed, so with
    #: noise `jit_compile=True` is checked to train, not to match.
    draws_random_numbers: bool = False
    #: Names `train_step` logs that are known to be one device's value
    #: divided by the replica count under `MirroredStrategy`, as the Keras
    #: guide's `train_step` logs a Keras `Loss` called under its own
    #: `GradientTape` (a `keras.Model` logs the same). The strategy check
    #: expects that ratio for them in `fit()`'s logs instead of equality.
    replica_divided_train_logs: set = set()

    def build_model(self) -> keras.Model:
        """A fresh, built, uncompiled model."""
        raise NotImplementedError("Give `build_model()`.")

    def data(self) -> tuple:
        """`(x, y)` or `(x,)` as NumPy arrays."""
        raise NotImplementedError("Give `data()`.")

    def compile_kwargs(self) -> dict:
        """Arguments given to `compile()` by every check."""
        return {}

    def frozen_variables(self, model) -> list:
        """Variables that training must leave unchanged."""
        return []

    def bad_inputs(self) -> list[tuple[dict, str]]:
        """`(fit kwargs, regex the ValueError's message must match)` pairs.

        The default holds for every model that takes its batches as Keras
        does (`x`, `(x, y)` or `(x, y, sample_weight)`): a `tf.data`
        dataset of four-part batches, and, when `data()` has labels, fewer
        labels than inputs. What else is bad depends on the model (missing
        labels, inputs of the wrong shape, a wrong dtype): add it, as
        `super().bad_inputs() + [...]`. An empty list fails the check.
        """
        data = tuple(self.data())
        count = _count(data)
        padding = tuple(np.zeros(count, "float32") for _ in range(4 - len(data)))
        four_parts = tf.data.Dataset.from_tensor_slices(data + padding)
        bad = [
            (
                {"x": four_parts.batch(self.batch_size)},
                r"(?i)data is expected to be in format",
            )
        ]
        if len(data) > 1:
            shorter = keras.tree.map_structure(lambda a: a[:-3], data[1])
            bad.append((self._fit_args((data[0], shorter)), r"(?i)data cardinality"))
        return bad

    def predict_inputs(self):
        """Inputs whose predictions are compared across save and load."""
        return keras.tree.map_structure(lambda a: a[: self.batch_size], self.data()[0])

    # ------------------------------------------------------------------

    def _seeded_model(self, weights=None, **compile_overrides) -> keras.Model:
        keras.utils.set_random_seed(1234)
        model = self.build_model()
        if weights is not None:
            model.set_weights(weights)
        model.compile(**{**self.compile_kwargs(), **compile_overrides})
        return model

    def _fit_args(self, data=None):
        data = self.data() if data is None else data
        return {"x": data[0], "y": data[1] if len(data) > 1 else None}

    def _fit(self, model, epochs=1, **kwargs):
        keras.utils.set_random_seed(99)
        fit_kwargs = {
            **self._fit_args(),
            "batch_size": self.batch_size,
            "epochs": epochs,
            "shuffle": False,
            "verbose": 0,
        }
        fit_kwargs.update(kwargs)
        return model.fit(**fit_kwargs)

    def _initial_weights(self):
        keras.utils.set_random_seed(1234)
        return self.build_model().get_weights()

    def _assert_finite(self, logs, where):
        for key, values in logs.items():
            values = np.atleast_1d(np.asarray(values, dtype="float64"))
            assert np.all(np.isfinite(values)), f"{where}: '{key}' is not finite"

    # ------------------------------------------------------------------
    # fit, evaluate, logs and trackers
    # ------------------------------------------------------------------

    def test_fit_logs(self):
        model = self._seeded_model()
        recorder = _Recorder()
        data = self.data()
        history = self._fit(model, epochs=2, validation_data=data, callbacks=[recorder])
        expected = set(self.log_keys) | {f"val_{k}" for k in self.log_keys}
        assert set(history.history) == expected, (
            f"logged {sorted(history.history)}, documented {sorted(expected)}"
        )
        self._assert_finite(history.history, "fit")
        # Trackers are reset at the start of every epoch.
        for name, value in recorder.results_at_epoch_begin[0].items():
            values = keras.tree.flatten(value)
            assert all(float(keras.ops.convert_to_numpy(v)) == 0.0 for v in values), (
                f"metric '{name}' was not reset between epochs"
            )

    def test_fit_numpy_equals_tf_data(self):
        weights = self._initial_weights()
        from_numpy = self._seeded_model(weights)
        self._fit(from_numpy)
        data = self.data()
        elements = data if len(data) > 1 else data[0]
        dataset = tf.data.Dataset.from_tensor_slices(elements).batch(self.batch_size)
        from_dataset = self._seeded_model(weights)
        keras.utils.set_random_seed(99)
        history = from_dataset.fit(dataset, epochs=1, shuffle=False, verbose=0)
        self._assert_finite(history.history, "fit(tf.data)")
        assert_weights_close(
            from_dataset.get_weights(),
            from_numpy.get_weights(),
            self.atol,
            "weights after fit(tf.data) vs fit(numpy)",
        )

    def test_evaluate_is_mean_over_batches(self):
        if not self.deterministic_evaluation:
            import pytest

            pytest.skip("test_step samples noise; checked by test_fit_logs")
        model = self._seeded_model()
        self._fit(model)
        data = self.data()
        count = _count(data)
        results = model.evaluate(
            *data, batch_size=self.batch_size, verbose=0, return_dict=True
        )
        assert set(results) == set(self.log_keys)
        per_batch, sizes = [], []
        for start in range(0, count, self.batch_size):
            batch = keras.tree.map_structure(
                lambda a, start=start: a[start : start + self.batch_size], data
            )
            per_batch.append(
                model.evaluate(
                    *batch, batch_size=_count(batch), verbose=0, return_dict=True
                )
            )
            sizes.append(_count(batch))
        for key in self.log_keys:
            expected = np.average([b[key] for b in per_batch], weights=sizes)
            assert math.isclose(results[key], expected, rel_tol=1e-4, abs_tol=1e-5), (
                f"evaluate()['{key}'] = {results[key]}, mean over batches = {expected}"
            )

    def test_optimizers_built_by_compile(self):
        model = self._seeded_model()
        optimizers = getattr(model, "optimizers", {"optimizer": model.optimizer})
        for name, optimizer in optimizers.items():
            assert optimizer.built, f"optimizer '{name}' is not built by compile()"

    # ------------------------------------------------------------------
    # configuration, saving, resuming
    # ------------------------------------------------------------------

    def test_config_round_trip(self):
        model = self._seeded_model()
        config = model.get_config()
        # `from_config` may consume nested dicts, so it gets a copy.
        clone = model.__class__.from_config(copy.deepcopy(config))
        assert _normalized(clone.get_config()) == _normalized(config)
        build_config = model.get_build_config()
        if not clone.built and build_config:
            clone.build_from_config(build_config)
        clone.set_weights(model.get_weights())
        inputs = self.predict_inputs()
        np.testing.assert_allclose(
            clone.predict(inputs, verbose=0),
            model.predict(inputs, verbose=0),
            atol=1e-6,
        )

    def test_save_and_load(self):
        model = self._seeded_model()
        self._fit(model)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            model.save(path)
            loaded = keras.models.load_model(path)
        assert type(loaded).__name__ == type(model).__name__
        inputs = self.predict_inputs()
        np.testing.assert_allclose(
            loaded.predict(inputs, verbose=0),
            model.predict(inputs, verbose=0),
            atol=1e-6,
        )
        saved, restored = optimizer_states(model), optimizer_states(loaded)
        assert set(restored) == set(saved)
        for name in saved:
            assert_weights_close(restored[name], saved[name], 0, f"{name} state")

    def test_resume_equals_uninterrupted(self):
        weights = self._initial_weights()
        straight = self._seeded_model(weights)
        self._fit(straight, epochs=2)
        resumed = self._seeded_model(weights)
        self._fit(resumed, epochs=1)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            resumed.save(path)
            resumed = keras.models.load_model(path)
        self._fit(resumed, epochs=2, initial_epoch=1)
        assert_weights_close(
            resumed.get_weights(),
            straight.get_weights(),
            self.atol,
            "weights of 1 epoch + save + load + 1 epoch vs 2 epochs",
        )

    # Every saving path of `keras.Model`. Predictions are compared: `predict`
    # runs `call` with `training=False`, where the models of keras_custom
    # sample no noise (latents, augmentations and masks are drawn in the
    # training steps, even with `draws_random_numbers`), and the weights,
    # compared too, are what makes a round trip reproduce them.

    def _assert_same_predictions(self, outputs, expected, what: str) -> None:
        outputs = keras.tree.flatten(outputs)
        expected = keras.tree.flatten(expected)
        assert len(outputs) == len(expected), (
            f"{what}: {len(outputs)} outputs against {len(expected)}"
        )
        for index, (a, e) in enumerate(zip(outputs, expected, strict=True)):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(a),
                e,
                atol=self.atol,
                rtol=self.atol,
                err_msg=f"{what}: predictions[{index}] differ",
            )

    def _assert_keras_refuses_too(self, model, error, path: str) -> None:
        """Passes when `error` is what Keras raises on `path` for a plain
        `keras.Model` in the same state; a model of keras_custom itself is
        never refused."""
        where = f"{path} of {type(model).__name__}"
        message = f"{type(error).__name__}: {_own_message(error)}"
        if _is_library_model(model):
            raise AssertionError(f"{where} failed: {message}") from error
        refusals = {(t, _masked(m)) for t, m in _keras_refusals(path)}
        if (type(error), _masked(_own_message(error))) not in refusals:
            raise AssertionError(
                f"{where} failed where Keras does not refuse a keras.Model: {message}"
            ) from error

    def test_weights_file_round_trip(self):
        """`save_weights` to a `.weights.h5` file and `load_weights` into a
        fresh model restore every weight; and, as Keras does (the file holds
        the optimizers' variables too), every optimizer state, which loads
        into an optimizer that is built (`compile()` builds every named one)."""
        model = self._seeded_model()
        fresh = self._seeded_model()
        optimizers = _built_optimizers(fresh)
        _shift(fresh.weights)
        for optimizer in optimizers.values():
            _shift(optimizer.variables)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.weights.h5")
            model.save_weights(path)
            fresh.load_weights(path)
        self._assert_restored(fresh, model, "loaded", list(optimizers))

    def _assert_restored(self, restored, model, what: str, names=None) -> None:
        """`restored` has `model`'s weights, predictions and optimizer states
        (those of `names`, or all of them and no others)."""
        assert_weights_close(restored.weights, model.weights, 0, f"{what} weights")
        inputs = self.predict_inputs()
        self._assert_same_predictions(
            restored.predict(inputs, verbose=0), model.predict(inputs, verbose=0), what
        )
        saved, loaded = optimizer_states(model), optimizer_states(restored)
        if names is None:
            assert set(loaded) == set(saved), f"{what} optimizers {set(loaded)}"
            names = list(saved)
        for name in names:
            assert_weights_close(loaded[name], saved[name], 0, f"{what} {name} state")

    def test_export_for_serving(self):
        """`model.export(path)` writes a SavedModel whose `serve` endpoint,
        reloaded as a `keras.layers.TFSMLayer`, predicts as the model does."""
        model = self._seeded_model()
        inputs = self.predict_inputs()
        # `predict` calls the model first, as Keras needs before it exports a
        # subclassed model (it takes the serving signature from that call).
        expected = model.predict(inputs, verbose=0)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "served")
            try:
                model.export(path, verbose=False)
            except Exception as error:
                self._assert_keras_refuses_too(model, error, "export")
                return
            if keras.backend.backend() == "tensorflow":
                served = keras.layers.TFSMLayer(path, call_endpoint="serve")
                outputs = served(inputs)
            else:  # TFSMLayer runs on TensorFlow only; the SavedModel is the same
                saved_model = tf.saved_model.load(path)
                outputs = keras.tree.map_structure(
                    np.asarray, saved_model.serve(inputs)
                )
        self._assert_same_predictions(outputs, expected, "exported `serve`")

    def test_legacy_h5(self):
        """`model.save("model.h5")`, the legacy HDF5 format, works as far as
        Keras keeps it: the file loads with `keras.models.load_model` (except
        where Keras refuses a `keras.Model` in the same state) and its weights
        with `load_weights` into a fresh model of any form."""
        model = self._seeded_model()
        inputs = self.predict_inputs()
        expected = model.predict(inputs, verbose=0)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.h5")
            try:
                model.save(path)
            except Exception as error:
                self._assert_keras_refuses_too(model, error, "h5 save")
                return
            # A legacy file names a class without the package it is
            # registered under: Keras finds a custom class in
            # `custom_objects` only.
            classes = {type(model).__name__: type(model)}
            try:
                loaded = keras.models.load_model(path, custom_objects=classes)
            except Exception as error:
                self._assert_keras_refuses_too(model, error, "h5 load")
            else:
                assert type(loaded).__name__ == type(model).__name__
                self._assert_same_predictions(
                    loaded.predict(inputs, verbose=0), expected, "h5 load_model"
                )
            fresh = self._seeded_model()
            _shift(fresh.weights)
            fresh.load_weights(path)
        assert_weights_close(fresh.weights, model.weights, 0, "weights from .h5")
        self._assert_same_predictions(
            fresh.predict(inputs, verbose=0), expected, "h5 load_weights"
        )

    def test_pickle_round_trip(self):
        """`pickle.loads(pickle.dumps(model))` (Keras pickles through the
        `.keras` format) gives the same class, weights, predictions and
        optimizer states."""
        model = self._seeded_model()
        restored = pickle.loads(pickle.dumps(model))
        assert type(restored).__name__ == type(model).__name__
        self._assert_restored(restored, model, "unpickled")

    # ------------------------------------------------------------------
    # execution modes
    # ------------------------------------------------------------------

    def _assert_same_training(self, **compile_overrides):
        weights = self._initial_weights()
        reference = self._seeded_model(weights)
        expected = self._fit(reference).history
        model = self._seeded_model(weights, **compile_overrides)
        history = self._fit(model).history
        assert_weights_close(
            model.get_weights(),
            reference.get_weights(),
            self.atol,
            f"weights with {compile_overrides}",
        )
        for key, values in expected.items():
            np.testing.assert_allclose(history[key], values, rtol=1e-4, atol=1e-5)

    def test_runs_are_bit_identical(self):
        """With `set_random_seed` and op determinism, two runs give the same
        weights, bit for bit."""
        runs = []
        with op_determinism():
            for _ in range(2):
                model = self._seeded_model()
                self._fit(model)
                runs.append(model.get_weights())
        for index, (a, b) in enumerate(zip(*runs, strict=True)):
            np.testing.assert_array_equal(a, b, err_msg=f"weights[{index}] differ")

    def test_steps_per_execution(self):
        self._assert_same_training(steps_per_execution=3)

    def test_jit_compile(self):
        if not self.draws_random_numbers:
            self._assert_same_training(jit_compile=True)
            return
        model = self._seeded_model(jit_compile=True)
        history = self._fit(model, epochs=2)
        self._assert_finite(history.history, "jit_compile fit")
        self._assert_every_optimizer_stepped(model, "jit_compile")

    def _assert_every_optimizer_stepped(self, model, where):
        optimizers = getattr(model, "optimizers", {"optimizer": model.optimizer})
        assert optimizers, "the model has no optimizer"
        for name, optimizer in optimizers.items():
            assert int(optimizer.iterations) > 0, (
                f"{where}: optimizer '{name}' never stepped"
            )

    def test_mixed_float16(self):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_float16")
        try:
            model = self._seeded_model()
            history = self._fit(model)
        finally:
            keras.config.set_dtype_policy(previous)
        self._assert_finite(history.history, "mixed_float16 fit")
        optimizers = getattr(model, "optimizers", {"optimizer": model.optimizer})
        for name, optimizer in optimizers.items():
            assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer), (
                f"optimizer '{name}' is not loss-scaled under mixed_float16"
            )
        self._assert_every_optimizer_stepped(model, "mixed_float16")

    def test_mirrored_strategy_equals_one_device(self):
        """Two replicas of `MirroredStrategy` give one device's weights, the
        same `fit()` logs and (with `deterministic_evaluation`) the same
        `evaluate()` results."""
        devices = logical_cpus()
        if len(devices) < 2:
            import pytest

            pytest.skip("needs two logical CPUs: call split_cpu(2) in conftest.py")
        weights = self._initial_weights()
        single = self._seeded_model(weights)
        expected = self._fit(single).history
        distribution = _Distribution(devices[:2])
        with distribution.creation_scope():
            mirrored = self._seeded_model(weights)
        with distribution.run_scope():
            history = self._fit(mirrored).history
        self._assert_finite(history, f"{distribution.name} fit")
        assert_weights_close(
            mirrored.get_weights(),
            single.get_weights(),
            self.atol,
            f"weights under {distribution.name} vs one device",
        )
        replicas = distribution.replicas
        if distribution.name == "MirroredStrategy":
            for key in self.replica_divided_train_logs:
                expected[key] = list(np.divide(expected[key], replicas))
        self._assert_same_logs(history, expected, distribution, "fit()")
        if self.deterministic_evaluation:
            results = []
            for model in (mirrored, single):
                scope = distribution.run_scope() if model is mirrored else None
                with scope or contextlib.nullcontext():
                    results.append(
                        model.evaluate(
                            **self._fit_args(),
                            batch_size=self.batch_size,
                            verbose=0,
                            return_dict=True,
                        )
                    )
            self._assert_same_logs(*results, distribution, "evaluate()")

    def _assert_same_logs(self, logs, expected, distribution, where: str) -> None:
        """Asserts the logs of the distributed model equal one device's logs
        `expected`, naming the likely cause of a value off by the replica
        count."""
        replicas = distribution.replicas
        assert set(logs) == set(expected), (
            f"{where} under {distribution.name} logged {sorted(logs)}, on one "
            f"device {sorted(expected)}"
        )
        for key, values in expected.items():
            one = np.atleast_1d(np.asarray(values, "float64"))
            many = np.atleast_1d(np.asarray(logs[key], "float64"))
            factor = _off_by_replicas(many, one, replicas)
            if factor is not None:
                raise AssertionError(
                    f"{where} logged '{key}' = {_listed(many)} on {replicas} "
                    f"replicas of {distribution.name}, {factor} the "
                    f"{_listed(one)} of one device: a logged value must not "
                    "depend on the number of replicas. Compute it inside "
                    "`minimize`'s loss function or `compute_loss`; a Keras "
                    "`Loss` called elsewhere in `train_step` is divided by the "
                    "replica count, and nothing logged needs dividing or "
                    "multiplying by it."
                )
            np.testing.assert_allclose(
                many,
                one,
                rtol=1e-4,
                atol=max(1e-5, self.atol),
                err_msg=f"{where} '{key}' under {distribution.name} vs one device",
            )

    # ------------------------------------------------------------------
    # frozen parts and bad input
    # ------------------------------------------------------------------

    def test_frozen_variables_unchanged(self):
        model = self._seeded_model()
        frozen = self.frozen_variables(model)
        before = [keras.ops.convert_to_numpy(v) for v in frozen]
        self._fit(model, epochs=2)
        assert_weights_close(frozen, before, 0, "frozen variables")
        trainable_before = self._initial_weights()
        changed = any(
            not np.array_equal(a, b)
            for a, b in zip(model.get_weights(), trainable_before, strict=True)
        )
        assert changed, "training changed no weight at all"

    def test_bad_input_raises_clear_error(self):
        import pytest

        bad_inputs = self.bad_inputs()
        if not bad_inputs:
            pytest.fail(
                f"{type(self).__name__}.bad_inputs() is empty, so no bad input "
                "is checked: override `bad_inputs` to return `(fit kwargs, "
                "regex)` pairs of data this model must refuse (missing labels, "
                "inputs of the wrong shape, structure or dtype)."
            )
        for fit_kwargs, pattern in bad_inputs:
            model = self._seeded_model()
            kwargs = {"verbose": 0, "shuffle": False, **fit_kwargs}
            if not isinstance(kwargs.get("x"), tf.data.Dataset):
                kwargs.setdefault("batch_size", self.batch_size)
            with pytest.raises(ValueError) as error:
                model.fit(**kwargs)
            message = _own_message(error.value)
            assert "{{node " not in message, (
                f"fit({sorted(fit_kwargs)}) failed inside a graph operation "
                f"instead of checking its input: {message}"
            )
            assert re.search(pattern, message), (
                f"fit({sorted(fit_kwargs)}) raised {message!r}, which does not "
                f"match {pattern!r}"
            )
