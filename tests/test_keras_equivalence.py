"""`CustomModel` with a plain `compile()` trains exactly like `keras.Model`.

Every test builds one functional network twice from the same initial
weights, once as a `keras.Model` (the independent reference) and once as a
`CustomModel`, compiles both identically, trains both with the same seed,
and compares what Keras reports: History, weights, predictions, `evaluate()`,
and what the callbacks did.
"""

import io
from collections.abc import Callable
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_custom import CustomModel
from tests.models import digit_data

SEED = 1234
KINDS = ("keras", "custom")
X_ALL, Y_ALL = digit_data(320)
X, Y = X_ALL[:256], Y_ALL[:256]
X_VAL, Y_VAL = X_ALL[256:], Y_ALL[256:]
SAMPLE_WEIGHT = np.random.default_rng(SEED).uniform(0.2, 2.0, len(X)).astype("float32")
CLASS_WEIGHT = {label: 0.5 + label / 10 for label in range(10)}
WEIGHTED_VALIDATION = (X_VAL, Y_VAL, SAMPLE_WEIGHT[: len(X_VAL)])


# ----------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------


def _hidden(inputs):
    return keras.layers.Dense(16, activation="relu", name="hidden")(inputs)


def mlp_outputs(inputs):
    return keras.layers.Dense(10, name="logits")(_hidden(inputs))


def regularized_outputs(inputs):
    hidden = keras.layers.Dense(16, name="hidden")(inputs)
    hidden = keras.layers.BatchNormalization(name="norm")(hidden)
    hidden = keras.layers.Activation("relu", name="relu")(hidden)
    hidden = keras.layers.Dropout(0.3, seed=7, name="dropout")(hidden)
    return keras.layers.Dense(10, name="logits")(hidden)


def two_head_outputs(inputs):
    hidden = _hidden(inputs)
    return {
        "digit": keras.layers.Dense(10, name="digit")(hidden),
        "parity": keras.layers.Dense(1, name="parity")(hidden),
    }


def build(kind: str, outputs_fn: Callable = mlp_outputs) -> keras.Model:
    """The network of `outputs_fn` as a `keras.Model` or a `CustomModel`."""
    inputs = keras.Input((64,), name="pixels")
    model_class = keras.Model if kind == "keras" else CustomModel
    return model_class(inputs, outputs_fn(inputs), name="net")


def build_pair(outputs_fn: Callable = mlp_outputs) -> dict:
    """Both models of `outputs_fn`, with the same initial weights."""
    models = {kind: build(kind, outputs_fn) for kind in KINDS}
    models["custom"].set_weights(models["keras"].get_weights())
    return models


def classifier_compile(**overrides) -> dict:
    """Fresh `compile()` arguments (a new optimizer for each model)."""
    return {
        "optimizer": keras.optimizers.Adam(1e-2),
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": ["accuracy"],
        **overrides,
    }


def overfitting_compile() -> dict:
    """A learning rate at which `val_loss` turns up within a few epochs."""
    return classifier_compile(optimizer=keras.optimizers.Adam(5e-2))


def two_head_compile() -> dict:
    return {
        "optimizer": keras.optimizers.Adam(1e-2),
        "loss": {
            "digit": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "parity": keras.losses.BinaryCrossentropy(from_logits=True),
        },
        "loss_weights": {"digit": 1.0, "parity": 0.5},
        "metrics": {"digit": ["accuracy"], "parity": ["binary_accuracy"]},
    }


def parity(y):
    return (y % 2).astype("float32")[:, None]


# ----------------------------------------------------------------------
# Training and comparison
# ----------------------------------------------------------------------


def seeded_fit(model, *args, **kwargs):
    keras.utils.set_random_seed(SEED)
    return model.fit(*args, verbose=0, **kwargs)


def train_both(
    outputs_fn: Callable = mlp_outputs,
    compile_fn: Callable = classifier_compile,
    callbacks: Callable[[str], list] | None = None,
    **fit_kwargs,
) -> dict:
    """Compiles and fits both models alike; returns `{kind: (model, history)}`.

    `callbacks(kind)` makes each model's own callbacks. `fit_kwargs` default
    to 256 digits in batches of 32 for 2 epochs, validated on 64 more.
    """
    fit_kwargs = {
        "x": X,
        "y": Y,
        "batch_size": 32,
        "epochs": 2,
        "validation_data": (X_VAL, Y_VAL),
        **fit_kwargs,
    }
    runs = {}
    for kind, model in build_pair(outputs_fn).items():
        model.compile(**compile_fn())
        extra = {} if callbacks is None else {"callbacks": callbacks(kind)}
        runs[kind] = (model, seeded_fit(model, **fit_kwargs, **extra))
    return runs


def as_arrays(structure) -> list:
    return [
        np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(structure)
    ]


def assert_close(actual, expected, what: str, atol: float = 1e-6) -> None:
    actual, expected = as_arrays(actual), as_arrays(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} != {len(expected)}"
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        np.testing.assert_allclose(
            a, e, rtol=1e-5, atol=atol, err_msg=f"{what}[{index}] differ"
        )


def assert_same_logs(actual: dict, expected: dict, what: str) -> None:
    assert sorted(actual) == sorted(expected), f"{what} keys differ"
    for key in expected:
        np.testing.assert_allclose(
            actual[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=f"{what}[{key}]"
        )


def assert_same_models(custom, reference, x=X_VAL, y=Y_VAL) -> None:
    """Same weights, predictions and `evaluate()` on `(x, y)`."""
    assert_close(custom.get_weights(), reference.get_weights(), "weights")
    assert_close(
        custom.predict(x, verbose=0), reference.predict(x, verbose=0), "predict"
    )
    assert_same_logs(
        custom.evaluate(x, y, verbose=0, return_dict=True),
        reference.evaluate(x, y, verbose=0, return_dict=True),
        "evaluate",
    )


def assert_equivalent(runs: dict, x=X_VAL, y=Y_VAL) -> None:
    """The CustomModel run matches the keras.Model run in every respect."""
    (custom, custom_history), (reference, history) = runs["custom"], runs["keras"]
    assert isinstance(custom, CustomModel)
    assert_same_logs(custom_history.history, history.history, "History")
    assert custom_history.epoch == history.epoch
    assert_same_models(custom, reference, x, y)


def learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


# ----------------------------------------------------------------------
# 1-4, 9, 10: fit() arguments and networks
# ----------------------------------------------------------------------


WEIGHTED = {"weighted_metrics": ["accuracy"]}


@pytest.mark.parametrize(
    ("fit_kwargs", "compile_overrides"),
    [
        pytest.param({"shuffle": True}, {}, id="shuffle-validation_data"),
        pytest.param(
            {"validation_data": None, "validation_split": 0.25},
            {},
            id="validation_split",
        ),
        pytest.param({"sample_weight": SAMPLE_WEIGHT}, {}, id="sample_weight"),
        pytest.param({"class_weight": CLASS_WEIGHT}, {}, id="class_weight"),
        pytest.param(
            {"sample_weight": SAMPLE_WEIGHT, "validation_data": WEIGHTED_VALIDATION},
            WEIGHTED,
            id="sample_weight-weighted_metrics",
        ),
        pytest.param(
            {"class_weight": CLASS_WEIGHT, "validation_data": WEIGHTED_VALIDATION},
            WEIGHTED,
            id="class_weight-weighted_metrics",
        ),
    ],
)
def test_fit_arguments(fit_kwargs, compile_overrides):
    runs = train_both(
        compile_fn=lambda: classifier_compile(**compile_overrides), **fit_kwargs
    )
    if compile_overrides:
        assert "val_weighted_accuracy" in runs["keras"][1].history
    assert_equivalent(runs)


def test_dataset_with_sample_weight():
    dataset = tf.data.Dataset.from_tensor_slices((X, Y, SAMPLE_WEIGHT)).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((X_VAL, Y_VAL)).batch(32)
    runs = train_both(
        x=dataset, y=None, batch_size=None, shuffle=False, validation_data=validation
    )
    assert_equivalent(runs)


def test_steps_per_execution():
    runs = train_both(compile_fn=lambda: classifier_compile(steps_per_execution=4))
    assert_equivalent(runs)


def test_dropout_and_batch_normalization():
    assert_equivalent(train_both(regularized_outputs, epochs=3))


def test_multi_output_dict():
    runs = train_both(
        two_head_outputs,
        two_head_compile,
        y={"digit": Y, "parity": parity(Y)},
        validation_data=(X_VAL, {"digit": Y_VAL, "parity": parity(Y_VAL)}),
    )
    assert {"digit_loss", "parity_loss", "val_digit_loss"} <= set(
        runs["keras"][1].history
    )
    assert_equivalent(runs, y={"digit": Y_VAL, "parity": parity(Y_VAL)})


# ----------------------------------------------------------------------
# 5: callbacks
# ----------------------------------------------------------------------


class EpochPredictions(keras.callbacks.Callback):
    """Records the model's validation predictions at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.predictions = []

    def on_epoch_end(self, epoch, logs=None):
        self.predictions.append(as_arrays(self.model(X_VAL, training=False))[0])


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_early_stopping():
    stoppers = {}

    def callbacks(kind):
        stoppers[kind] = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=1, restore_best_weights=True
        )
        return [stoppers[kind]]

    runs = train_both(compile_fn=overfitting_compile, callbacks=callbacks, epochs=20)
    assert 0 < stoppers["keras"].stopped_epoch < 19, "the reference did not stop"
    assert stoppers["custom"].stopped_epoch == stoppers["keras"].stopped_epoch
    assert stoppers["custom"].best_epoch == stoppers["keras"].best_epoch
    assert_equivalent(runs)


def test_model_checkpoint(tmp_path):
    recorders = {kind: EpochPredictions() for kind in KINDS}

    def callbacks(kind):
        checkpoint = keras.callbacks.ModelCheckpoint(
            tmp_path / f"{kind}.keras", monitor="val_loss", save_best_only=True
        )
        return [checkpoint, recorders[kind]]

    runs = train_both(compile_fn=overfitting_compile, callbacks=callbacks, epochs=8)
    assert_equivalent(runs)
    best = int(np.argmin(runs["keras"][1].history["val_loss"]))
    assert best < 7, "the checkpoint would be the final model"
    loaded = {}
    for kind in KINDS:
        loaded[kind] = keras.models.load_model(tmp_path / f"{kind}.keras")
        assert isinstance(loaded[kind], CustomModel) == (kind == "custom")
        assert_close(
            loaded[kind].predict(X_VAL, verbose=0),
            recorders[kind].predictions[best],
            f"{kind} checkpoint predictions",
        )
    assert_same_models(loaded["custom"], loaded["keras"])


@pytest.mark.parametrize(
    "make_callback",
    [
        pytest.param(
            lambda: keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
            id="LearningRateScheduler",
        ),
        pytest.param(
            lambda: keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=0, min_delta=1.0
            ),
            id="ReduceLROnPlateau",
        ),
    ],
)
def test_learning_rate_callbacks(make_callback):
    runs = train_both(callbacks=lambda kind: [make_callback()], epochs=3)
    assert learning_rate(runs["keras"][0]) < 1e-2, "the learning rate did not change"
    assert learning_rate(runs["custom"][0]) == pytest.approx(
        learning_rate(runs["keras"][0])
    )
    assert_equivalent(runs)


def test_csv_logger(tmp_path):
    runs = train_both(
        callbacks=lambda kind: [keras.callbacks.CSVLogger(tmp_path / f"{kind}.csv")]
    )
    assert_equivalent(runs)
    logs = {kind: (tmp_path / f"{kind}.csv").read_text() for kind in KINDS}
    assert logs["custom"] == logs["keras"]


def test_terminate_on_nan():
    counters = {kind: BatchCounter() for kind in KINDS}
    runs = train_both(
        compile_fn=lambda: classifier_compile(optimizer=keras.optimizers.SGD(1e20)),
        callbacks=lambda kind: [keras.callbacks.TerminateOnNaN(), counters[kind]],
        epochs=3,
    )
    assert runs["keras"][0].stop_training and runs["custom"][0].stop_training
    assert counters["keras"].batches < 3 * len(X) // 32, "the reference never diverged"
    assert counters["custom"].batches == counters["keras"].batches
    assert runs["custom"][1].epoch == runs["keras"][1].epoch
    assert_same_logs(runs["custom"][1].history, runs["keras"][1].history, "History")


# ----------------------------------------------------------------------
# 6: BackupAndRestore
# ----------------------------------------------------------------------


class Interruption(RuntimeError):
    pass


class InterruptAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interruption(f"simulated interruption at epoch {epoch}")


def interrupted_and_resumed(model, backup_dir) -> keras.callbacks.History:
    """Fits 3 epochs, interrupted after epoch 1 and resumed from the backup."""
    backup = keras.callbacks.BackupAndRestore(backup_dir)
    fit_kwargs = {"x": X, "y": Y, "batch_size": 32, "epochs": 3, "shuffle": False}
    with pytest.raises(Interruption):
        seeded_fit(model, callbacks=[backup, InterruptAtEpoch(1)], **fit_kwargs)
    return seeded_fit(model, callbacks=[backup], **fit_kwargs)


def test_backup_and_restore(tmp_path):
    models = build_pair()
    uninterrupted = build("custom")
    uninterrupted.set_weights(models["keras"].get_weights())
    for model in (*models.values(), uninterrupted):
        model.compile(**classifier_compile())
    histories = {
        kind: interrupted_and_resumed(model, tmp_path / kind)
        for kind, model in models.items()
    }
    full = seeded_fit(uninterrupted, X, Y, batch_size=32, epochs=3, shuffle=False)

    assert histories["keras"].epoch == [2]
    assert histories["custom"].epoch == histories["keras"].epoch
    assert_same_logs(histories["custom"].history, histories["keras"].history, "History")
    assert_same_models(models["custom"], models["keras"])
    assert_close(models["custom"].get_weights(), uninterrupted.get_weights(), "weights")
    last_epoch = {key: values[-1:] for key, values in full.history.items()}
    assert_same_logs(histories["custom"].history, last_epoch, "resumed History")


# ----------------------------------------------------------------------
# 7: *_on_batch
# ----------------------------------------------------------------------


def test_on_batch_methods():
    models = build_pair()
    for model in models.values():
        model.compile(**classifier_compile())
    for start in range(0, 128, 32):
        batch = slice(start, start + 32)
        results = {
            kind: (
                model.train_on_batch(
                    X[batch],
                    Y[batch],
                    sample_weight=SAMPLE_WEIGHT[batch],
                    return_dict=True,
                ),
                model.test_on_batch(X_VAL, Y_VAL, return_dict=True),
                model.predict_on_batch(X_VAL),
            )
            for kind, model in models.items()
        }
        custom, reference = results["custom"], results["keras"]
        assert_same_logs(custom[0], reference[0], f"train_on_batch {start}")
        assert_same_logs(custom[1], reference[1], f"test_on_batch {start}")
        assert_close(custom[2], reference[2], f"predict_on_batch {start}")
    assert_same_models(models["custom"], models["keras"])


# ----------------------------------------------------------------------
# 11: summary, JSON and weight files
# ----------------------------------------------------------------------


def summary_text(model) -> str:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        model.summary(line_length=120)
    text = buffer.getvalue()
    assert "hidden (Dense)" in text and "Optimizer params" in text
    return text


def trained_pair() -> dict:
    return {
        kind: model for kind, (model, _) in train_both(validation_data=None).items()
    }


def test_summary():
    models = trained_pair()
    assert summary_text(models["custom"]) == summary_text(models["keras"])


def test_json_round_trip():
    for kind, model in trained_pair().items():
        restored = keras.models.model_from_json(model.to_json())
        assert type(restored) is type(model)
        assert isinstance(restored, CustomModel) == (kind == "custom")
        assert restored.count_params() == model.count_params()
        restored.set_weights(model.get_weights())
        assert_close(
            restored.predict(X_VAL, verbose=0), model.predict(X_VAL, verbose=0), kind
        )


def test_weights_file_round_trip(tmp_path):
    """`.weights.h5` files load back, into either class alike."""
    trained = trained_pair()
    for source, model in trained.items():
        path = tmp_path / f"{source}.weights.h5"
        model.save_weights(path)
        expected = model.predict(X_VAL, verbose=0)
        for target in KINDS:
            restored = build(target)
            restored.load_weights(path)
            what = f"{source} weights loaded into {target}"
            assert_close(restored.get_weights(), model.get_weights(), what)
            assert_close(restored.predict(X_VAL, verbose=0), expected, what)
