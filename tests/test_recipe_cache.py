"""`keras_custom.recipes.cache`: an identical recipe call trains once."""

import keras
import numpy as np
import pytest

from keras_custom import VAE
from keras_custom.recipes import cache

calls = []


@cache.cached_training
def train_regressor(seed: int = 0, epochs: int = 2, scale=1.0, verbose: int = 0):
    """A tiny recipe: records each real training in `calls`."""
    calls.append((seed, epochs))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 3)).astype("float32")
    factor = np.mean(scale) if isinstance(scale, (float, np.ndarray)) else 1.0
    model.fit(x, x.sum(axis=1) * factor, epochs=epochs, verbose=verbose)
    return model


@cache.cached_training
def train_pair(seed: int = 0):
    calls.append(("pair", seed))
    return train_regressor(seed), keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(1)]
    )


@pytest.fixture
def cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENVIRONMENT_VARIABLE, str(tmp_path))
    calls.clear()
    return tmp_path


def test_an_identical_call_loads_the_trained_model(cache_directory):
    first = train_regressor(1)
    second = train_regressor(seed=1, epochs=2, verbose=1)  # the same call
    assert calls == [(1, 2)]
    assert second is not first
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The optimizer's state and the history come back too.
    assert int(second.optimizer.iterations) == int(first.optimizer.iterations) == 2
    assert second.history.history == first.history.history
    assert second.history.epoch == [0, 1]
    x = np.ones((4, 3), "float32")
    np.testing.assert_allclose(
        second.predict(x, verbose=0), first.predict(x, verbose=0)
    )


def test_other_arguments_train_again(cache_directory):
    train_regressor(1)
    train_regressor(2)
    train_regressor(1, epochs=3)
    train_regressor(1, scale=np.array([1.0, 1.0]))
    train_regressor(1, scale=np.array([1.0, 2.0]))
    train_regressor(1, scale=np.array([1.0, 2.0]))
    assert calls == [(1, 2), (2, 2), (1, 3), (1, 2), (1, 2)]


def test_a_model_argument_is_keyed_by_its_weights(cache_directory):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    train_regressor(0, scale=model)
    train_regressor(0, scale=model)
    assert len(calls) == 1
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    train_regressor(0, scale=model)
    assert len(calls) == 2


def test_a_tuple_of_models_and_a_library_model(cache_directory):
    regressor, empty = train_pair(3)
    again = train_pair(3)
    assert isinstance(again, tuple) and len(again) == 2
    assert calls == [("pair", 3), (3, 2)]
    np.testing.assert_array_equal(regressor.get_weights()[0], again[0].get_weights()[0])

    @cache.cached_training
    def train_vae(seed: int = 0):
        calls.append("vae")
        inputs = keras.Input((4,))
        encoder = keras.Model(
            inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(2)(inputs)]
        )
        decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
        model = VAE(encoder, decoder)
        model.compile()
        model.fit(np.ones((8, 4), "float32"), epochs=1, verbose=0)
        return model

    trained, loaded = train_vae(), train_vae()
    assert calls.count("vae") == 1
    assert isinstance(loaded, VAE)
    assert int(loaded.optimizer.iterations) == int(trained.optimizer.iterations)


def test_nothing_is_kept_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENVIRONMENT_VARIABLE, raising=False)
    calls.clear()
    train_regressor(1)
    train_regressor(1)
    assert calls == [(1, 2), (1, 2)]
    assert not list(tmp_path.iterdir())


def test_an_argument_without_a_fingerprint_trains_every_time(cache_directory):
    train_regressor(0, scale=object())
    train_regressor(0, scale=object())
    assert len(calls) == 2
    assert not [path for path in cache_directory.iterdir() if path.is_dir()]
