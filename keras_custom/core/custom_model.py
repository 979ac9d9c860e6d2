"""`CustomModel`: a drop-in `keras.Model` for training logic of your own.

The class is the public API, read top to bottom; each mechanism is one call
away, in a module of its own: `optimizer_registry` (named optimizers),
`trackers` (logged values), `step_functions` (what `fit()` calls),
`compile_config` (compiling and configuration), `gradient_primitive`
(`minimize`), `default_steps` (the steps derived from `compute_loss`),
`model_saving`, and `keras_internals` (every Keras internal relied on).
"""

from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_custom.core import (
    backend,
    compile_config,
    default_steps,
    gradient_primitive,
    keras_internals,
    model_saving,
    optimizer_registry,
    schedules,
    step_functions,
    trackers,
)
from keras_custom.core import functional as functional_lib
from keras_custom.core.named_optimizers import OptimizerLike


@keras.saving.register_keras_serializable(package="keras_custom")
class CustomModel(
    step_functions.FitFunctions,
    model_saving.ModelSaving,
    keras_internals.TrainerHooks,
    keras.Model,
):
    """A `keras.Model` whose `fit()` drives custom gradient logic.

    With nothing overridden and a normal `compile(optimizer, loss, metrics)`,
    a `CustomModel` trains exactly like a `keras.Model`. On top of that:

    - **One optimizer: write the loss.** Override Keras's `compute_loss` to
      return the total loss, or a dict of named terms with the total under
      `"loss"`; `train_step`, `test_step` and `evaluate()` follow from it.
    - **Several optimizers: `minimize`.** `add_optimizer` declares named
      optimizers, each tied to its variables, created under the model's
      strategy, built before the first step, loss-scaled under
      `mixed_float16`, saved with the model; `minimize(loss_fn, variables,
      optimizer)` takes one gradient step in `train_step`.
    - **Replica arithmetic in the core.** Losses may use Keras `Loss`
      objects, raw `ops.mean` or both: under `tf.distribute` they train and
      log the same as on one device.
    - **Trackers.** Each logged name gets a `Mean` tracker, so epoch logs and
      `evaluate()` are means over all batches, and every `k` has its `val_k`.
    - **The tutorial pattern is safe.** `compile()` keeps an optimizer and a
      loss (`self.loss_fn`) set in `__init__`; optimizers held as plain
      attributes (the Keras guide's GAN) are found, built and saved; a
      subclass's own `compile(...)` is replayed by `load_model`.

    It is built functionally, `CustomModel(inputs, outputs)`, or by
    subclassing; a subclass may be used both ways.

    Args:
        *args: `inputs` and `outputs` for a functional model.
        optimizer: Optimizer (instance, name or config) kept by `compile()`
            when `compile()` is not given one. Defaults to `"rmsprop"`, as in
            Keras, when the model has no other optimizer.
        loss: Loss (anything `compile(loss=...)` takes) kept by `compile()`
            when `compile()` is not given one.
        **kwargs: Forwarded to `keras.Model` (`name`, `dtype`, `trainable`).

    Example:

    ```python
    import keras
    from keras import ops
    from keras_custom import CustomModel

    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(1)(inputs)
    model = CustomModel(inputs, outputs, optimizer="adam", loss="mse")
    model.compile()
    model.fit(keras.ops.ones((32, 8)), keras.ops.ones((32, 1)), verbose=0)


    # One optimizer: write the loss, and its terms are logged.
    class Autoencoder(CustomModel):
        predicts_before_loss = False  # `compute_loss` runs its own passes

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder = keras.layers.Dense(2)
            self.decoder = keras.layers.Dense(8)
            self.add_tracker("loss")
            self.add_tracker("code_norm")

        def call(self, x, training=False):
            return self.decoder(self.encoder(x))

        def compute_loss(self, x=None, y=None, y_pred=None,
                         sample_weight=None, training=True):
            code = self.encoder(x)
            error = ops.mean(ops.square(self.decoder(code) - x))
            norm = ops.mean(ops.square(code))
            return {"loss": error + 0.01 * norm, "code_norm": norm}


    autoencoder = Autoencoder(optimizer="adam")
    autoencoder.compile()
    autoencoder.fit(keras.ops.ones((32, 8)), epochs=1, verbose=0)
    ```

    Subclass it with `train_step` for several optimizers: declare them and
    the trackers in `__init__`, return batch values from `train_step`:

    ```python
    class TwoPart(CustomModel):
        def __init__(self, encoder, head, head_optimizer=None, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.head = encoder, head
            self.add_optimizer("head_optimizer", head_optimizer, head, "adam")
            self.add_tracker("head_loss")
            self.loss_fn = keras.losses.MeanSquaredError()

        def call(self, x, training=False):
            return self.head(self.encoder(x, training=training),
                             training=training)

        def train_step(self, data):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            loss = self.minimize(
                lambda: self.loss_fn(y, self(x, training=True)),
                optimizer="head_optimizer",
            )
            return {"head_loss": loss}
    ```

    Reference:
        The Keras guide "Customizing what happens in `fit()`", whose pattern
        this class makes safe (https://keras.io/guides/).
    """

    #: Whether the default steps call the model on `x` and pass the output to
    #: an overridden `compute_loss` as `y_pred` (Keras does). `False` for a
    #: model whose `compute_loss` runs its own forward passes: it gets
    #: `y_pred=None`. A model without `call` always gets `None`.
    predicts_before_loss: bool = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A `compile` of the subclass's own: record its calls, so that a
        # loaded model is compiled by it again (`compile_from_config`).
        if "compile" in cls.__dict__:
            cls.compile = compile_config.recording_compile(cls.__dict__["compile"])

    def __init__(
        self,
        *args,
        optimizer: OptimizerLike = None,
        loss: Any = None,
        **kwargs,
    ):
        if functional_lib.functional_init_arguments(args, kwargs):
            # Not `keras.Model.__init__`, which would splice `Functional`
            # into this class's bases for good: this instance alone becomes
            # functional.
            self.__class__ = functional_lib.functional_variant(type(self))
            functional_lib.Functional.__init__(self, *args, **kwargs)
        else:
            keras.Model.__init__(self, *args, **kwargs)
        self._set_untracked("_optimizer_slots", {})
        self._set_untracked("_trackers", trackers.Trackers(self.name))
        self.add_optimizer("optimizer", optimizer, variables=None, default="rmsprop")
        self._optimizer_slots["optimizer"].implicit = True
        # Optimizers set as plain attributes: their variables by attribute
        # name, once found (`optimizer_registry`).
        self._set_untracked("_attribute_optimizer_variables", {})
        if isinstance(loss, dict) and "class_name" in loss:
            loss = keras.saving.deserialize_keras_object(loss)
        if loss is not None:
            self.loss = loss

    # ------------------------------------------------------------------
    # Named optimizers
    # ------------------------------------------------------------------

    def add_optimizer(
        self,
        name: str,
        optimizer: OptimizerLike = None,
        variables: Any = None,
        default: OptimizerLike = "adam",
    ) -> None:
        """Declares a named optimizer of this model.

        The optimizer is stored as the attribute `name` (so `.keras` files and
        `BackupAndRestore` save it under that name), is replaced by
        `compile(**{name: ...})` when given there, and updates `variables`.

        Args:
            name: Attribute name, e.g. `"d_optimizer"`; also the keyword that
                `compile()` accepts for it.
            optimizer: Initial optimizer (instance, name or config), or
                `None` to use `default` at `compile()` time.
            variables: What it updates: a layer or model (its trainable
                variables, looked up when needed), variables, or a list of
                these. `None` means every trainable variable of the model
                that no other optimizer owns.
            default: Optimizer used when none is given anywhere.
        """
        optimizer_registry.declare(self, name, optimizer, variables, default)

    @property
    def optimizer_names(self) -> list[str]:
        """Names of the optimizers this model declares, in declaration order."""
        return list(self._optimizer_slots)

    @property
    def optimizers(self) -> dict:
        """The model's optimizers by name (those that are set)."""
        return optimizer_registry.by_name(self)

    def optimizer_variables(self, name: str = "optimizer") -> list:
        """The trainable variables that optimizer `name` updates."""
        return optimizer_registry.variables_of(self, name)

    # ------------------------------------------------------------------
    # Trackers
    # ------------------------------------------------------------------

    def add_tracker(self, name: str) -> keras.metrics.Mean:
        """Declares a logged scalar; returns its `Mean` tracker.

        A step may log names it did not declare when training on one device;
        under a distribution strategy every logged name must be declared
        here (in `__init__`) so its variables exist before training.
        """
        with backend.strategy_scope(self):
            return self._trackers.add(name)

    @property
    def metrics(self) -> list:
        """The trackers, then Keras's metrics (compiled, attributes, nested)."""
        return trackers.model_metrics(self, super().metrics)

    def reset_metrics(self) -> None:
        super().reset_metrics()
        # A subclass may list only its own metrics in `metrics`.
        self._trackers.reset()

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Updates compiled metrics; returns the results of non-tracker metrics."""
        compiled_metrics = keras_internals.compiled_metrics(self)
        if compiled_metrics is not None:
            compiled_metrics.update_state(y, y_pred, sample_weight)
        return trackers.metric_results(self)

    # ------------------------------------------------------------------
    # compile
    # ------------------------------------------------------------------

    def compile(
        self,
        optimizer: OptimizerLike = None,
        loss: Any = None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile="auto",
        auto_scale_loss: bool = True,
        **optimizers,
    ) -> None:
        """Configures the model for training.

        Takes every argument of `keras.Model.compile`, plus one keyword per
        named optimizer (`compile(d_optimizer=..., g_optimizer=...)`). An
        argument given here replaces the one from `__init__`; an argument
        left out keeps it. With no optimizer anywhere, a model whose only
        optimizer is `optimizer` gets `"rmsprop"`, as in Keras.

        Args:
            optimizer: The main optimizer, `self.optimizer`: an optimizer, its
                name or config, or a dict giving each group of layers its own
                optimizer (`{backbone: keras.optimizers.Adam(1e-5), head:
                "adam"}`, see `keras_custom.optimizers.MultiOptimizer`).
            loss: The loss `compute_loss` and the default steps use. Defaults
                to the constructor's `loss`, then to `self.loss_fn`.
            **optimizers: Named optimizers declared with `add_optimizer`.

        The other arguments are those of `keras.Model.compile`.
        """
        optimizer_registry.set_compiled(
            self, {**optimizers, "optimizer": optimizer}, auto_scale_loss
        )
        compile_config.compile_model(
            self,
            super().compile,
            loss,
            {
                "loss_weights": loss_weights,
                "metrics": metrics,
                "weighted_metrics": weighted_metrics,
                "run_eagerly": run_eagerly,
                "steps_per_execution": steps_per_execution,
                "jit_compile": jit_compile,
                "auto_scale_loss": auto_scale_loss,
            },
        )

    def get_compile_config(self) -> dict:
        """The `compile()` arguments, every named optimizer included."""
        return compile_config.compile_config(self)

    def compile_from_config(self, config: dict) -> None:
        """Compiles from `get_compile_config()` and builds every optimizer."""
        compile_config.compile_from_config(self, config)

    # ------------------------------------------------------------------
    # The gradient primitive
    # ------------------------------------------------------------------

    def minimize(
        self,
        loss_fn: Callable[[], Any],
        variables: Sequence | None = None,
        optimizer: str | keras.optimizers.Optimizer = "optimizer",
        before_apply: Callable[[], None] | None = None,
    ):
        """Takes one gradient step on `loss_fn`; returns what it returned.

        Runs `loss_fn` (the forward pass) under a gradient tape, scales the
        loss for mixed precision, takes gradients with respect to exactly
        `variables`, and applies them with `optimizer` (so its `clipnorm`,
        `global_clipnorm` and `gradient_accumulation_steps` apply).

        Every loss in `loss_fn` is a mean over the batch the replica sees,
        whether it comes from a Keras `Loss` object or from raw `ops.mean`;
        under `tf.distribute` the core divides the total by the number of
        replicas before the gradients are summed over them. So the values
        returned are those to log, the same on any number of devices.

        Args:
            loss_fn: Callable without arguments returning the loss, a tuple
                `(loss, aux...)`, or a dict of named terms with the total
                loss under `"loss"`.
            variables: Variables to update. Defaults to those the named
                optimizer is tied to, looked up after the forward pass.
            optimizer: Name of one of the model's optimizers, or an
                optimizer instance (then `variables` is required).
            before_apply: Optional callable without arguments run after the
                gradients are taken and before they are applied (e.g.
                sharpness-aware minimization restores its perturbed weights).

        Returns:
            What `loss_fn` returned.
        """
        return gradient_primitive.minimize(
            self, loss_fn, variables, optimizer, before_apply
        )

    def gradients(
        self,
        loss_fn: Callable[[], Any],
        variables: Sequence | None = None,
        optimizer: str | keras.optimizers.Optimizer = "optimizer",
    ):
        """Takes the gradients of `loss_fn` without applying them.

        For mathematics that needs a gradient before the update (the
        perturbation of sharpness-aware minimization). The loss is treated
        as `minimize` treats it and the gradients unscaled; under a
        distribution strategy they are summed over the replicas, so every
        replica holds the gradient of the global batch's loss.

        Args:
            loss_fn: As in `minimize`.
            variables: As in `minimize`.
            optimizer: As in `minimize`; its loss scale is used.

        Returns:
            `(output, gradients)`: what `loss_fn` returned and one gradient
            (or `None`) per variable.
        """
        return gradient_primitive.gradients(self, loss_fn, variables, optimizer)

    def scalar(self, value: schedules.Scalar, optimizer: str = "optimizer"):
        """A float or schedule evaluated at optimizer `optimizer`'s iterations.

        Evaluating at an optimizer's `iterations` makes a warm-up or decay
        resume where it stopped after saving and loading.
        """
        return schedules.scalar_value(
            value, optimizer_registry.get(self, optimizer).iterations
        )

    # ------------------------------------------------------------------
    # Default steps: Keras's supervised steps, or derived from `compute_loss`
    # ------------------------------------------------------------------

    def train_step(self, data):
        """Minimizes `compute_loss` with `self.optimizer`; logs its terms."""
        return default_steps.train_step(self, data)

    def test_step(self, data):
        """Evaluates `compute_loss` and the metrics, without any update."""
        return default_steps.test_step(self, data)

    def _set_untracked(self, name: str, value) -> None:
        keras_internals.set_untracked(self, name, value)
