"""BYOL's target, the online probe, the heads, the EMA schedule, VICReg's terms."""

import os
import tempfile

import keras
import numpy as np
import pytest

from keras_custom import BYOL, SimSiam, VICReg
from keras_custom.core import input_gradients
from keras_custom.layers import PredictionHead, ProjectionHead, TargetNetwork
from keras_custom.schedules import CosineIncrease
from tests.test_self_supervised_conformance import (
    augmenter,
    digit_images,
    encoder,
    predictor,
    projector,
)


def byol(ema_decay):
    keras.utils.set_random_seed(0)
    model = BYOL(
        encoder(), projector(), predictor(), augmenter(), ema_decay, num_classes=10
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def values(variables):
    return [np.array(v) for v in variables]


def test_byol_target_moves_only_by_its_moving_average():
    schedule = CosineIncrease(0.9, 1.0, steps=8)
    model = byol(schedule)
    target_before = values(model.target.target_weights())
    trainable = {id(v) for v in model.trainable_variables}
    assert not trainable & {id(v) for v in model.target.target_weights()}
    x, y = digit_images(16)
    model.fit(x, y, batch_size=16, verbose=0)
    online_after = values(model.target.online_weights())
    decay = float(schedule(1))  # evaluated after the optimizer's first step
    for target, before, online in zip(
        model.target.target_weights(), target_before, online_after, strict=True
    ):
        np.testing.assert_allclose(
            np.array(target),
            decay * before + (1 - decay) * online,
            rtol=1e-6,
            atol=1e-7,
        )


def test_byol_target_is_saved_restored_and_distinct_from_online():
    model = byol(0.5)
    x, y = digit_images()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    target = values(model.target.target_weights())
    online = values(model.target.online_weights())
    assert any(not np.allclose(t, o) for t, o in zip(target, online, strict=True))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "byol.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    for restored, saved in zip(
        values(loaded.target.target_weights()), target, strict=True
    ):
        np.testing.assert_array_equal(restored, saved)
    assert isinstance(loaded.ema_decay, float) and loaded.ema_decay == 0.5


def test_online_probe_step_equals_plain_keras_on_frozen_features():
    keras.utils.set_random_seed(0)
    model = SimSiam(
        encoder(), projector(output_batch_norm=True), predictor(), num_classes=10
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),  # the encoder stays as it is
        probe_optimizer=keras.optimizers.SGD(0.5),
    )
    x, y = digit_images(32)
    features = model.encoder.predict(x, verbose=0)
    reference = keras.Sequential(
        [keras.Input((features.shape[1],)), keras.layers.Dense(10)]
    )
    reference.set_weights(model.probe.get_weights())
    reference.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    expected = reference.fit(features, y, batch_size=32, shuffle=False, verbose=0)
    history = model.fit(x, y, batch_size=32, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        history.history["probe_loss"], expected.history["loss"], rtol=1e-5
    )
    np.testing.assert_allclose(
        history.history["probe_accuracy"], expected.history["accuracy"], rtol=1e-6
    )
    for actual, wanted in zip(
        model.probe.get_weights(), reference.get_weights(), strict=True
    ):
        np.testing.assert_allclose(actual, wanted, rtol=1e-5, atol=1e-6)
    # Evaluation: the probe's accuracy on the clean test images, in NumPy.
    logits = features @ model.probe.get_weights()[0] + model.probe.get_weights()[1]
    result = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        result["probe_accuracy"], np.mean(logits.argmax(axis=1) == y), rtol=1e-6
    )


def test_target_network_update_and_no_gradients():
    online = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.5, seed=1),
        ]
    )
    target = TargetNetwork(online)
    assert target.trainable_weights == [] and len(target.target_weights()) == 6
    start = values(target.target_weights())
    for variable in online.weights:
        variable.assign(variable + 1.0)
    target.update(0.75)
    for before, now, source in zip(
        start, target.target_weights(), online.weights, strict=True
    ):
        np.testing.assert_allclose(
            np.array(now), 0.75 * before + 0.25 * np.array(source)
        )
    x = keras.ops.ones((4, 3))
    with pytest.raises(ValueError, match="built"):
        TargetNetwork(keras.layers.Dense(2))
    _, gradients = input_gradients(lambda t: target(t, training=False), x)
    assert gradients is None  # the output is gradient-stopped


def test_target_batch_norm_follows_training_like_the_online_network():
    # Frozen by its variables: in training mode the copy normalizes with the
    # batch's statistics, as the online network does (BYOL's target).
    keras.utils.set_random_seed(0)
    online = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()]
    )
    target = TargetNetwork(online)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32") * 5
    for training in (False, True):  # a training call moves the statistics
        np.testing.assert_allclose(
            target(x, training=training), online(x, training=training), atol=1e-6
        )
    assert target.trainable_weights == []


def test_projection_and_prediction_heads():
    head = ProjectionHead(8, hidden_units=16, hidden_layers=2, output_batch_norm=True)
    out = head(np.ones((4, 5), "float32"), training=True)
    assert out.shape == (4, 8)
    kinds = [type(block).__name__ for block in head.blocks]
    assert kinds == [
        "Dense",
        "GlobalBatchNormalization",
        "ReLU",
        "Dense",
        "GlobalBatchNormalization",
        "ReLU",
        "Dense",
        "GlobalBatchNormalization",
    ]
    # Statistics of the global batch: synchronized across replicas on
    # TensorFlow; on JAX a step already sees the global batch.
    assert all(
        block.synchronized == (keras.backend.backend() == "tensorflow")
        for block in head.blocks
        if isinstance(block, keras.layers.BatchNormalization)
    )
    clone = ProjectionHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    predictor_head = PredictionHead(8, hidden_units=2)
    assert [type(b).__name__ for b in predictor_head.blocks] == [
        "Dense",
        "GlobalBatchNormalization",
        "ReLU",
        "Dense",
    ]
    assert PredictionHead.from_config(predictor_head.get_config()).hidden_units == 2
    with pytest.raises(ValueError, match="output_units"):
        ProjectionHead(0)


def test_cosine_increase_equals_the_byol_formula():
    schedule = CosineIncrease(0.996, 1.0, steps=100)
    for step in (0, 1, 37, 50, 99, 100, 250):
        k = min(step, 100)
        expected = 1 - (1 - 0.996) * (np.cos(np.pi * k / 100) + 1) / 2
        np.testing.assert_allclose(float(schedule(step)), expected, atol=1e-7)
    clone = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert (
        isinstance(clone, CosineIncrease)
        and clone.get_config() == schedule.get_config()
    )
    with pytest.raises(ValueError, match="steps"):
        CosineIncrease(0.9, 1.0, steps=0)


def test_vicreg_logs_the_terms_of_its_loss():
    """`loss` is the weighted sum of the three logged terms, in fit and evaluate."""
    keras.utils.set_random_seed(0)
    weights = {"invariance_weight": 3.0, "variance_weight": 5.0}
    model = VICReg(encoder(), projector(), augmenter(), **weights, covariance_weight=2)
    assert (model.invariance_weight, model.variance_weight) == (3.0, 5.0)
    assert model.covariance_weight == 2.0
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    x, _ = digit_images()
    history = model.fit(x, batch_size=16, epochs=2, verbose=0).history
    result = model.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    for logs in ({k: v[-1] for k, v in history.items()}, result):
        assert set(logs) == {
            "loss",
            "invariance_loss",
            "variance_loss",
            "covariance_loss",
        }
        np.testing.assert_allclose(
            logs["loss"],
            3 * logs["invariance_loss"]
            + 5 * logs["variance_loss"]
            + 2 * logs["covariance_loss"],
            rtol=1e-5,
        )
    clone = VICReg.from_config(model.get_config())
    assert clone.get_config()["invariance_weight"] == 3.0
    assert clone.vicreg_loss.get_config() == model.vicreg_loss.get_config()
