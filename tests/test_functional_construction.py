"""A `CustomModel` class used functionally stays usable by subclassing."""

import keras
import numpy as np

from keras_custom import CustomModel
from keras_custom.core.functional import Functional


@keras.saving.register_keras_serializable(package="keras_custom_tests")
class BothWays(CustomModel):
    """Either `BothWays(inputs, outputs)` or `BothWays(units=3)`."""

    def __init__(self, *args, units=3, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = units
        if not isinstance(self, Functional):
            self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(x)


@keras.saving.register_keras_serializable(package="keras_custom_tests")
class TutorialFunctional(CustomModel):
    """The guide's functional subclass: `__init__` takes no `name`."""

    def __init__(self, inputs, outputs):
        super().__init__(inputs, outputs)


def graph():
    inputs = keras.Input((4,))
    return inputs, keras.layers.Dense(2)(inputs)


def test_functional_use_leaves_the_class_unchanged():
    bases = (CustomModel.__bases__, BothWays.__bases__)
    functional = BothWays(*graph())
    assert isinstance(functional, BothWays)
    assert isinstance(functional, CustomModel)
    assert isinstance(functional, Functional)
    assert (CustomModel.__bases__, BothWays.__bases__) == bases
    subclassed = BothWays(units=5)
    assert not isinstance(subclassed, Functional)
    assert subclassed(np.ones((2, 4), "float32")).shape == (2, 5)
    plain = CustomModel(*graph())
    assert type(plain).__name__ == "CustomModel" and isinstance(plain, Functional)
    assert not isinstance(CustomModel(), Functional)


def test_functional_subclass_without_name_argument_saves_and_loads(tmp_path):
    model = TutorialFunctional(*graph())
    model.compile(optimizer="adam", loss="mse")
    x = np.ones((8, 4), "float32")
    model.fit(x, np.zeros((8, 2)), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, TutorialFunctional) and loaded.name == model.name
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    loaded.fit(x, np.zeros((8, 2)), verbose=0)
    assert int(loaded.optimizer.iterations) == 2
