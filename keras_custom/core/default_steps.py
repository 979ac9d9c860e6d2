"""The default `train_step` and `test_step` of `CustomModel`, from `compute_loss`.

With nothing overridden they are Keras's supervised steps: the model
called on `x`, the compiled loss, the compiled metrics. A model that
overrides `compute_loss` (Keras's own hook) gets both steps from it: its
total loss is minimized with `self.optimizer`, and every named term it
returns is logged in training and in `evaluate()`.
"""

import inspect

import keras

from keras_custom.core import keras_internals, trackers


def overrides_compute_loss(model) -> bool:
    """Whether the model's class overrides Keras's `compute_loss`."""
    return type(model).compute_loss is not keras.Model.compute_loss


def uses_default(model, method: str) -> bool:
    """Whether `model`'s `method` is `CustomModel`'s own (this module's step)."""
    for cls in type(model).__mro__:
        if method in vars(cls):
            return cls.__module__ == "keras_custom.core.custom_model"
    return False


def _has_call(model) -> bool:
    return type(model).call is not keras.Model.call


def _predictions(model, x, training: bool):
    """`y_pred` for `compute_loss`: the model called on `x`, or `None`.

    `None` for a model whose `compute_loss` runs its own forward passes
    (`predicts_before_loss = False`, or no `call`).
    """
    if overrides_compute_loss(model) and not (
        model.predicts_before_loss and _has_call(model)
    ):
        return None
    if keras_internals.call_takes_training(model):
        return model(x, training=training)
    return model(x)


def computed_loss(model, x, y, y_pred, sample_weight, training: bool):
    """`compute_loss`, given `training` when the method takes it.

    Keras 3.3 added `training` to `compute_loss`; an override written
    before may not take it (Keras's own steps check the same way).
    """
    if "training" in inspect.signature(model.compute_loss).parameters:
        return model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)


def check_loss_inputs(model, y, step_name: str) -> None:
    """Raises if Keras's `compute_loss` has no loss or no targets to use."""
    if overrides_compute_loss(model):
        return
    if keras_internals.compiled_loss(model) is None:
        raise ValueError(
            f"Model '{model.name}' has no loss for its default `{step_name}`: "
            "give `loss=` to the constructor or to `compile()`, set "
            f"`self.loss_fn`, override `compute_loss`, or override `{step_name}`."
        )
    if y is None:
        raise ValueError(
            f"Model '{model.name}' was given no labels: its loss needs targets "
            "`y`. Pass `fit(x, y)`, or a dataset of `(x, y)` tuples."
        )


def train_step(model, data) -> dict:
    """`CustomModel.train_step`: `compute_loss` minimized with `self.optimizer`."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    check_loss_inputs(model, y, "train_step")

    def forward():
        y_pred = _predictions(model, x, training=True)
        loss = computed_loss(model, x, y, y_pred, sample_weight, training=True)
        return loss, y_pred

    loss, y_pred = model.minimize(forward)
    return step_logs(model, loss, x, y, y_pred, sample_weight)


def test_step(model, data) -> dict:
    """`CustomModel.test_step`: `compute_loss` and the metrics, no update.

    It also works for a subclass that overrides only `train_step`: with a
    loss known to the model (constructor, `compile()` or `self.loss_fn`) it
    evaluates that loss, and the subclass's own `Mean` tracker named
    `"loss"` and its `(y_true, y_pred)` metrics are updated as its
    `train_step` would.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    cls = type(model).__name__
    hook = overrides_compute_loss(model)
    if not hook and not _has_call(model):
        # Keras would fail inside `call()`, saying only that it is missing.
        raise NotImplementedError(
            f"Model '{model.name}' ({cls}) cannot be evaluated: it has no "
            f"`test_step` and no `call()`. Add to {cls} a `test_step(self, "
            "data)` returning a dict of the values to log (for example the "
            "losses of `train_step`, computed without updating any weight), "
            "a `compute_loss(self, x=None, y=None, y_pred=None, "
            "sample_weight=None, training=True)` returning its loss, or a "
            "`call()` and a loss."
        )
    y_pred = _predictions(model, x, training=False)
    loss = None
    if hook or keras_internals.compiled_loss(model) is not None:
        check_loss_inputs(model, y, "test_step")
        loss = computed_loss(model, x, y, y_pred, sample_weight, training=False)
    logs = step_logs(model, loss, x, y, y_pred, sample_weight)
    if not logs:
        raise ValueError(
            f"Model '{model.name}' ({cls}) has nothing to evaluate: it has no "
            "loss and no metrics. Give `loss=` to the constructor or to "
            "`compile()`, set `self.loss_fn`, override `compute_loss`, or add "
            f"to {cls} a `test_step(self, data)` returning the values to log."
        )
    return logs


def step_logs(model, loss, x, y, y_pred, sample_weight) -> dict:
    """Updates the metrics of a step; returns its logs.

    `loss` is the total loss, a dict of named terms with the total under
    `"loss"` (what an overridden `compute_loss` may return), or `None`.
    The model's own metrics (attributes, as the Keras guide creates them)
    are updated too: a `Mean` named `"loss"` with the total, the others
    with `(y, y_pred)`. Otherwise the terms go to the core's trackers.
    """
    terms = loss if isinstance(loss, dict) else {"loss": loss}
    terms = {name: value for name, value in terms.items() if value is not None}
    # The core's trackers are not among them.
    for metric in keras_internals.attribute_metrics(model):
        if type(metric) is keras.metrics.Mean:
            if metric.name == "loss" and "loss" in terms:
                metric.update_state(terms["loss"])
        elif y is not None and y_pred is not None:
            metric.update_state(y, y_pred, sample_weight=sample_weight)
    if y_pred is None:
        logs = trackers.metric_results(model)
    else:
        logs = model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
    return {**{k: v for k, v in terms.items() if k not in logs}, **logs}
