"""The tutorial pattern: what plain Keras gets wrong and `CustomModel` fixes."""

import keras
import numpy as np
import pytest

from keras_custom import CustomModel
from tests.models import digit_data, tutorial_class

X, Y = digit_data(96)


def numpy_crossentropy(logits, labels):
    """Mean sparse categorical cross-entropy of logits, in NumPy."""
    logits = logits - logits.max(1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -np.mean(log_probs[np.arange(len(labels)), labels])


def test_plain_keras_replaces_the_optimizer_and_cannot_evaluate():
    model = tutorial_class(keras.Model)()
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    model.fit(X, Y, batch_size=32, verbose=0)
    with pytest.raises(ValueError, match="No loss to compute"):
        model.evaluate(X, Y, verbose=0)


def test_custom_model_keeps_the_optimizer_and_evaluates():
    model = tutorial_class(CustomModel)()
    adam = model.optimizer
    model.compile()
    assert model.optimizer is adam
    history = model.fit(
        X, Y, batch_size=32, epochs=3, validation_data=(X, Y), verbose=0
    )
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert int(adam.iterations) == 9
    # One batch, so the guide's unweighted tracker is exactly the data's mean.
    results = model.evaluate(X, Y, batch_size=len(X), verbose=0, return_dict=True)
    logits = model.predict(X, verbose=0)
    np.testing.assert_allclose(
        results["loss"], numpy_crossentropy(logits, Y), rtol=1e-5
    )
    np.testing.assert_allclose(
        results["accuracy"], np.mean(logits.argmax(1) == Y), rtol=1e-6
    )


def test_constructor_arguments_without_subclassing():
    inputs = keras.Input((64,))
    outputs = keras.layers.Dense(10)(keras.layers.Dense(16, activation="relu")(inputs))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = CustomModel(
        inputs, outputs, optimizer=keras.optimizers.Adam(0.01), loss=loss
    )
    model.compile(metrics=["accuracy"])
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    model.fit(X, Y, batch_size=32, epochs=2, verbose=0)
    results = model.evaluate(X, Y, batch_size=32, verbose=0, return_dict=True)
    logits = model.predict(X, verbose=0)
    np.testing.assert_allclose(
        results["loss"], numpy_crossentropy(logits, Y), rtol=1e-5
    )


def test_missing_loss_and_missing_labels_are_named():
    inputs = keras.Input((64,))
    model = CustomModel(inputs, keras.layers.Dense(10)(inputs))
    model.compile()
    with pytest.raises(ValueError, match="has no loss"):
        model.fit(X, Y, verbose=0)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="no labels"):
        model.fit(X, verbose=0)
    with pytest.raises(ValueError, match="no labels"):
        model.evaluate(X, verbose=0)


def test_tutorial_pattern_without_a_train_step():
    """Optimizer, loss and tracker inside the model; the default steps."""

    class InsideTheModel(CustomModel):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.logits = keras.layers.Dense(10)
            self.optimizer = keras.optimizers.Adam(0.01)
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, x):
            return self.logits(x)

    model = InsideTheModel()
    adam = model.optimizer
    model.compile()
    history = model.fit(
        X, Y, batch_size=len(X), epochs=2, validation_data=(X, Y), verbose=0
    )
    assert model.optimizer is adam and int(adam.iterations) == 2
    assert set(history.history) == {"loss", "val_loss"}
    results = model.evaluate(X, Y, batch_size=len(X), verbose=0, return_dict=True)
    logits = model.predict(X, verbose=0)
    np.testing.assert_allclose(
        results["loss"], numpy_crossentropy(logits, Y), rtol=1e-5
    )
    np.testing.assert_allclose(
        history.history["val_loss"][-1], results["loss"], rtol=1e-5
    )
