"""`MultiOptimizer` against two optimizers applied by hand with a tape."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_custom import CustomModel, callbacks
from keras_custom.optimizers import MultiOptimizer
from keras_custom.testing import (
    assert_weights_close,
    logical_cpus,
    mirrored_strategy,
    optimizer_states,
)

BATCH = 16
RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = RNG.normal(size=(64, 3)).astype("float32")


def backbone_head(model_class=CustomModel, sequential_backbone=False):
    """`backbone -> head`, the same initial weights on every call."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    if sequential_backbone:
        backbone = keras.Sequential(
            [keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(5)],
            name="backbone",
        )
    else:
        backbone = keras.layers.Dense(6, activation="tanh", name="backbone")
    head = keras.layers.Dense(3, name="head")
    return model_class(inputs, head(backbone(inputs))), backbone, head


def by_hand(model, make_backbone_optimizer, make_head_optimizer, steps):
    """Weights after `steps` batches: one tape, two separate optimizers.

    A copy of `model` (its current weights) takes the gradients of the mean
    squared error of each batch, in `fit(shuffle=False)`'s order; SGD-like
    and Adam-like optimizers of its own apply the backbone's and the head's.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    backbone, head = copy.get_layer("backbone"), copy.get_layer("head")
    backbone_optimizer, head_optimizer = (
        make_backbone_optimizer(),
        make_head_optimizer(),
    )
    loss = keras.losses.MeanSquaredError()
    batches = len(X) // BATCH
    for step in range(steps):
        start = (step % batches) * BATCH
        x, y = X[start : start + BATCH], Y[start : start + BATCH]
        variables = backbone.trainable_variables + head.trainable_variables
        with tf.GradientTape() as tape:
            value = loss(y, copy(x, training=True))
        grads = tape.gradient(value, variables)
        count = len(backbone.trainable_variables)
        backbone_optimizer.apply(grads[:count], variables[:count])
        head_optimizer.apply(grads[count:], variables[count:])
    return copy.get_weights()


def fit(model, epochs=1, **kwargs):
    return model.fit(
        X, Y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, **kwargs
    )


def test_fit_equals_two_optimizers_applied_by_hand():
    model, backbone, head = backbone_head(CustomModel)
    sgd, adam = keras.optimizers.SGD(0.01), keras.optimizers.Adam(1e-3)
    optimizer = MultiOptimizer({backbone: sgd, head: adam})
    model.compile(optimizer=optimizer, loss="mse")
    expected = by_hand(
        model,
        lambda: keras.optimizers.SGD(0.01),
        lambda: keras.optimizers.Adam(1e-3),
        steps=8,
    )
    fit(model, epochs=2)
    assert_weights_close(model.get_weights(), expected, 1e-6, "weights after fit")
    assert model.optimizer is optimizer
    assert [int(o.iterations) for o in (optimizer, sgd, adam)] == [8, 8, 8]
    assert optimizer.inner_optimizers == [sgd, adam]
    assert optimizer.optimizer_for(backbone.kernel) is sgd
    assert optimizer.optimizer_for(head.bias) is adam
    # Its own variables, then each inner optimizer's, in group order.
    own = 2  # iterations and (unused) learning rate, as LossScaleOptimizer
    assert optimizer.variables == (
        optimizer.variables[:own] + sgd.variables + adam.variables
    )
    assert len(adam.variables) == 2 + 2 * len(head.trainable_variables)


def test_compile_takes_a_dict_of_layer_groups(tmp_path):
    """`CustomModel.compile(optimizer={layer: optimizer})`, saved and loaded."""
    model, backbone, head = backbone_head(CustomModel)
    model.compile(
        optimizer={backbone: keras.optimizers.SGD(0.01), head: "adam"}, loss="mse"
    )
    assert isinstance(model.optimizer, MultiOptimizer)
    expected = by_hand(
        model,
        lambda: keras.optimizers.SGD(0.01),
        lambda: keras.optimizers.Adam(),
        steps=4,
    )
    fit(model)
    assert_weights_close(model.get_weights(), expected, 1e-6, "weights after fit")
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, MultiOptimizer)
    assert_weights_close(
        optimizer_states(loaded)["optimizer"],
        optimizer_states(model)["optimizer"],
        0.0,
        "inner optimizer states after loading",
    )
    fit(model)
    fit(loaded)
    assert_weights_close(loaded.get_weights(), model.get_weights(), 1e-6, "resumed")


def test_plain_keras_model_names_catch_all_and_inner_settings():
    """String and None keys; each optimizer clips its own gradients only."""
    model, _, _ = backbone_head(keras.Model)
    optimizer = MultiOptimizer(
        {
            "backbone": keras.optimizers.SGD(0.05, momentum=0.9),
            None: keras.optimizers.Adam(1e-2, global_clipnorm=0.1),
        }
    )
    model.compile(optimizer=optimizer, loss="mse")
    expected = by_hand(
        model,
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
        lambda: keras.optimizers.Adam(1e-2, global_clipnorm=0.1),
        steps=4,
    )
    fit(model)
    assert_weights_close(model.get_weights(), expected, 1e-6, "weights after fit")


def test_apply_gradients_in_a_tf_function():
    _, backbone, head = backbone_head(keras.Model)
    optimizer = MultiOptimizer([(backbone, "sgd"), ((head.kernel, head.bias), "sgd")])
    variables = backbone.trainable_variables + head.trainable_variables
    before = [v.numpy() for v in variables]

    @tf.function
    def step():
        optimizer.apply_gradients([(tf.ones_like(v), v) for v in variables])

    step()
    step()
    # SGD's default rate is 0.01: two steps of gradient one.
    assert_weights_close(variables, [w - 0.02 for w in before], 1e-6)
    counts = [int(o.iterations) for o in [optimizer, *optimizer.inner_optimizers]]
    assert counts == [2, 2, 2]


def test_mirrored_strategy_equals_one_device():
    devices = tuple(logical_cpus()[:2])
    # tests/conftest.py splits the CPU in two: a missing device is a failure.
    assert len(devices) == 2, "needs two logical CPU devices (tests/conftest.py)"

    def trained(strategy):
        with strategy.scope() if strategy else contextlib.nullcontext():
            model, backbone, head = backbone_head(CustomModel)
            optimizer = MultiOptimizer(
                {backbone: keras.optimizers.SGD(0.01), head: keras.optimizers.Adam()}
            )
            model.compile(optimizer=optimizer, loss="mse")
        fit(model, epochs=2)
        return model

    one, two = trained(None), trained(mirrored_strategy(devices))
    assert two.distribute_strategy.num_replicas_in_sync == 2
    assert_weights_close(two.get_weights(), one.get_weights(), 1e-5, "two replicas")
    assert_weights_close(
        two.optimizer.variables, one.optimizer.variables, 1e-5, "optimizer states"
    )


@contextlib.contextmanager
def dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_mixed_float16_scales_the_loss_once_for_all_groups():
    def trained():
        model, backbone, head = backbone_head(CustomModel)
        optimizer = MultiOptimizer(
            {backbone: keras.optimizers.SGD(0.01), head: keras.optimizers.Adam()}
        )
        model.compile(optimizer=optimizer, loss="mse")
        fit(model, epochs=2)
        return model, optimizer

    reference, _ = trained()
    with dtype_policy("mixed_float16"):
        model, optimizer = trained()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.optimizer.inner_optimizer is optimizer
    assert int(model.optimizer.iterations) == 8
    assert [int(o.iterations) for o in optimizer.inner_optimizers] == [8, 8]
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert_weights_close(weights, reference.get_weights(), 1e-2, "mixed_float16")


def test_save_load_resumes_every_inner_state(tmp_path):
    """A Sequential backbone: its variables' paths change when loaded."""

    def model_and_optimizer():
        model, backbone, head = backbone_head(keras.Model, sequential_backbone=True)
        optimizer = MultiOptimizer(
            {backbone: keras.optimizers.SGD(0.01, momentum=0.9), head: "adam"}
        )
        model.compile(optimizer=optimizer, loss="mse")
        return model

    uninterrupted = model_and_optimizer()
    fit(uninterrupted, epochs=2)

    model = model_and_optimizer()
    fit(model)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, MultiOptimizer)
    assert [type(o).__name__ for o in loaded.optimizer.inner_optimizers] == [
        "SGD",
        "Adam",
    ]
    saved_states = optimizer_states(model)["optimizer"]
    assert_weights_close(
        optimizer_states(loaded)["optimizer"], saved_states, 0, "loaded states"
    )
    for name in ("backbone", "head"):
        for variable in loaded.get_layer(name).trainable_variables:
            expected = "SGD" if name == "backbone" else "Adam"
            assert type(loaded.optimizer.optimizer_for(variable)).__name__ == expected
    fit(loaded)
    assert_weights_close(
        loaded.get_weights(), uninterrupted.get_weights(), 1e-6, "resumed"
    )


@pytest.mark.parametrize(
    "backup",
    [
        # Keras's resumes at the start of the epoch it saved at the end of.
        lambda folder: keras.callbacks.BackupAndRestore(folder),
        # The library's resumes after the last batch it saved.
        lambda folder: callbacks.BackupAndRestore(folder, save_freq=1),
    ],
    ids=["keras", "keras_custom"],
)
def test_backup_and_restore_resumes_every_inner_state(backup, tmp_path):
    class Interrupt(keras.callbacks.Callback):
        """Raises after the second batch of the second epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 1):
                raise KeyboardInterrupt("interrupted")

    def run(*run_callbacks):
        model, backbone, head = backbone_head(CustomModel)
        model.compile(
            optimizer=MultiOptimizer(
                {
                    backbone: keras.optimizers.SGD(0.01, momentum=0.9),
                    head: keras.optimizers.Adam(),
                }
            ),
            loss="mse",
        )
        with contextlib.suppress(KeyboardInterrupt):
            fit(model, epochs=3, callbacks=list(run_callbacks))
        return model

    uninterrupted = run()
    folder = str(tmp_path / "backup")
    interrupted = run(backup(folder), Interrupt())
    assert int(interrupted.optimizer.iterations) == 6
    resumed = run(backup(folder))
    assert [int(o.iterations) for o in resumed.optimizer.inner_optimizers] == [12, 12]
    assert_weights_close(
        resumed.get_weights(), uninterrupted.get_weights(), 1e-6, "resumed"
    )


@pytest.mark.parametrize(
    ("callback", "final_rate"),
    [
        # An absolute rate per epoch (set before each of the 3 epochs).
        (
            keras.callbacks.LearningRateScheduler(
                lambda epoch: 0.04 / 2 ** (epoch + 1)
            ),
            0.005,
        ),
        # The first epoch improves on nothing; the next two do not improve.
        (
            keras.callbacks.ReduceLROnPlateau(
                monitor="loss", factor=0.5, patience=0, min_delta=1e9
            ),
            0.01,
        ),
    ],
    ids=["LearningRateScheduler", "ReduceLROnPlateau"],
)
def test_learning_rate_callbacks_keep_the_ratios(callback, final_rate):
    model, backbone, head = backbone_head(keras.Model)
    sgd, adam = keras.optimizers.SGD(0.04), keras.optimizers.Adam(4e-3)
    optimizer = MultiOptimizer({backbone: sgd, head: adam})
    model.compile(optimizer=optimizer, loss="mse")
    history = fit(model, epochs=3, callbacks=[callback])
    assert "learning_rate" in history.history  # not one key per inner optimizer
    np.testing.assert_allclose(float(optimizer.learning_rate), final_rate, rtol=1e-6)
    np.testing.assert_allclose(float(sgd.learning_rate), final_rate, rtol=1e-6)
    np.testing.assert_allclose(float(adam.learning_rate), final_rate / 10, rtol=1e-6)


def test_a_scheduled_group_cannot_be_set_by_a_callback():
    _, backbone, head = backbone_head(keras.Model)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    optimizer = MultiOptimizer(
        {backbone: keras.optimizers.SGD(0.01), head: keras.optimizers.Adam(schedule)}
    )
    with pytest.raises(ValueError, match=r"group 1 \(layer 'head'.*schedule of its"):
        optimizer.learning_rate = 0.1
    np.testing.assert_allclose(float(optimizer.learning_rate), 0.01)  # unchanged


def test_a_variable_in_no_group_or_in_two_is_an_error():
    model, backbone, head = backbone_head(keras.Model)
    variables = model.trainable_variables
    with pytest.raises(ValueError, match=r"in no group: \['head/kernel', 'head/bias'"):
        MultiOptimizer({backbone: "sgd"}).build(variables)
    with pytest.raises(ValueError, match=r"catch-all group with the key None"):
        MultiOptimizer({backbone: "sgd"}).build(variables)
    two = MultiOptimizer({backbone: "sgd", ("backbone", head): "adam"})
    with pytest.raises(ValueError, match=r"'backbone/kernel' in group 0 .* group 1"):
        two.build(variables)
    with pytest.raises(ValueError, match=r"more than one group"):
        model.compile(optimizer=two, loss="mse")
        fit(model)
    with pytest.raises(ValueError, match="set it on each inner optimizer"):
        MultiOptimizer({backbone: "sgd"}, clipnorm=1.0)
    with pytest.raises(ValueError, match="cannot hold a LossScaleOptimizer"):
        MultiOptimizer(
            {backbone: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())}
        )


def test_config_round_trip_without_layer_objects():
    model, backbone, head = backbone_head(keras.Model)
    optimizer = MultiOptimizer(
        {backbone: keras.optimizers.SGD(0.01), head: keras.optimizers.Adam(1e-3)}
    )
    config = optimizer.get_config()
    assert [group["variables"] for group in config["groups"]] == [
        ["backbone/kernel", "backbone/bias"],
        ["head/kernel", "head/bias"],
    ]
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is MultiOptimizer
    restored.build(model.trainable_variables)
    assert [type(restored.optimizer_for(v)).__name__ for v in model.weights] == [
        "SGD",
        "SGD",
        "Adam",
        "Adam",
    ]
    # Built, the config holds each group's paths and positions.
    built = restored.get_config()
    assert [group["indices"] for group in built["groups"]] == [[0, 1], [2, 3]]
    assert built["num_variables"] == 4
    np.testing.assert_allclose(
        built["groups"][1]["optimizer"]["config"]["learning_rate"], 1e-3
    )


def test_saved_paths_match_a_copy_whose_paths_lost_a_prefix():
    """A `Sequential` rebuilt from its config drops its name from the paths."""
    model, backbone, head = backbone_head(keras.Model, sequential_backbone=True)
    config = MultiOptimizer({backbone: "sgd", head: "adam"}).get_config()
    assert config["groups"][0]["variables"][0].startswith("backbone/")
    copy = keras.Model.from_config(model.get_config())
    paths = [v.path for v in copy.trainable_variables]
    assert not any(path.startswith("backbone/") for path in paths)
    restored = MultiOptimizer.from_config(config)
    restored.build(copy.trainable_variables)
    assert [type(restored.optimizer_for(v)).__name__ for v in copy.weights] == [
        "SGD"
    ] * 4 + ["Adam"] * 2


def test_a_frozen_group_updates_nothing():
    model, backbone, head = backbone_head(keras.Model)
    backbone.trainable = False
    frozen = [w.copy() for w in backbone.get_weights()]
    sgd, adam = keras.optimizers.SGD(), keras.optimizers.Adam()
    model.compile(optimizer=MultiOptimizer({backbone: sgd, head: adam}), loss="mse")
    with pytest.warns(UserWarning, match=r"group 0 \(layer 'backbone'.* got none"):
        fit(model)
    assert_weights_close(backbone.get_weights(), frozen, 0, "frozen backbone")
    assert (int(sgd.iterations), int(adam.iterations)) == (0, 4)
