"""Named trackers: epoch means over all batches, `val_` twins, clear errors."""

import keras
import numpy as np
import pytest

from keras_custom import CustomModel
from keras_custom.testing import mirrored_strategy
from keras_custom.testing.devices import logical_cpus

X = np.arange(50, dtype="float32").reshape(25, 2)  # 25 rows: a short last batch


class LogsStatistics(CustomModel):
    """Logs batch statistics of `x` without declaring them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        return self.test_step(data)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        return {"x_mean": keras.ops.mean(x), "x_max": keras.ops.max(x)}


def test_epoch_value_is_the_mean_over_all_samples():
    model = LogsStatistics()
    model.compile()
    history = model.fit(
        X, batch_size=10, epochs=2, shuffle=False, validation_data=(X,), verbose=0
    )
    assert set(history.history) == {"x_mean", "x_max", "val_x_mean", "val_x_max"}
    # Batch means weighted by batch size give the mean over all samples.
    np.testing.assert_allclose(history.history["x_mean"], [X.mean()] * 2, rtol=1e-6)
    np.testing.assert_allclose(history.history["val_x_mean"], [X.mean()] * 2, rtol=1e-6)
    batch_maxes = [X[:10].max(), X[10:20].max(), X[20:].max()]
    expected_max = np.average(batch_maxes, weights=[10, 10, 5])
    np.testing.assert_allclose(history.history["x_max"], [expected_max] * 2, rtol=1e-6)
    result = model.evaluate(X, batch_size=10, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["x_mean"], X.mean(), rtol=1e-6)
    assert [m.name for m in model.metrics] == ["x_mean", "x_max"]


def test_steps_must_return_a_dict():
    class ReturnsTensor(LogsStatistics):
        def train_step(self, data):
            return keras.ops.mean(data)

    model = ReturnsTensor()
    model.compile()
    with pytest.raises(ValueError, match="must return a non-empty dict"):
        model.fit(X, batch_size=10, verbose=0)


def test_undeclared_names_under_a_strategy_ask_for_add_tracker():
    strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
    with strategy.scope():
        model = LogsStatistics()
        model.build((None, 2))
        model.compile()
    with pytest.raises(ValueError, match=r"add_tracker\('x_mean'\)"):
        model.fit(X[:20], batch_size=10, verbose=0)


def test_declared_names_work_under_a_strategy():
    class Declared(LogsStatistics):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.add_tracker("x_mean")
            self.add_tracker("x_max")

    strategy = mirrored_strategy(tuple(logical_cpus()[:2]))
    with strategy.scope():
        model = Declared()
        model.build((None, 2))
        model.compile()
    history = model.fit(X[:20], batch_size=10, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["x_mean"], [X[:20].mean()], rtol=1e-6)
