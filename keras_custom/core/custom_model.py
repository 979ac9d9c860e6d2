"""`CustomModel`: a drop-in `keras.Model` for training logic of your own."""

import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras.src.saving.serialization_lib import SerializableDict
from keras.src.trainers.compile_utils import CompileMetrics
from keras.src.utils import tracking

from keras_custom.core import functional as functional_lib
from keras_custom.core import (
    keras_internals,
    named_optimizers,
    schedules,
    tensorflow_backend,
)
from keras_custom.core.named_optimizers import OptimizerLike, OptimizerSlot
from keras_custom.core.trackers import Trackers

_MIXED_POLICIES = ("mixed_float16",)
_SEED_STATE_KEY = "seed_generator_state_"


def _accepts_name(cls) -> bool:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return any(
        p.name == "name" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def _first_tensor(structure):
    return next(
        (t for t in keras.tree.flatten(structure) if t is not None),
        None,
    )


def _unscaled_output(output):
    """`loss_fn`'s output with its loss multiplied back by the replica count."""
    if isinstance(output, tuple):
        return (tensorflow_backend.unscale_for_replicas(output[0]), *output[1:])
    return tensorflow_backend.unscale_for_replicas(output)


@keras.saving.register_keras_serializable(package="keras_custom")
class CustomModel(keras.Model):
    """A `keras.Model` whose `fit()` drives custom gradient logic.

    With nothing overridden and a normal `compile(optimizer, loss, metrics)`,
    a `CustomModel` trains exactly like a `keras.Model`. On top of that it
    fixes what breaks when training logic lives inside the model:

    - `compile()` keeps an optimizer set in `__init__` (Keras replaces it with
      RMSprop) and keeps a loss given to the constructor or set as
      `self.loss_fn`, so `evaluate()` and `validation_data` work without a
      loss given to `compile()`.
    - A model can own several **named optimizers**, each tied to the
      variables it updates (`add_optimizer`). All of them are created under
      the model's distribution strategy, built before the first step, wrapped
      in a `LossScaleOptimizer` under `mixed_float16`, and saved and restored
      with the model (`.keras` files, `BackupAndRestore`).
    - `minimize(loss_fn, variables, optimizer)` is the one gradient step:
      forward pass under a tape, loss scaling, gradients with respect to
      exactly `variables`, apply, and the unscaled loss back for logging.
    - A step returns a dict of named batch values; each name gets a `Mean`
      **tracker**, so epoch logs and `evaluate()` are means over all batches
      and every train key `k` has its `val_k`.
    - `get_config()`/`compile_from_config()` cover the optimizers and the
      loss, so `keras.models.load_model()` returns a model that trains on.

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
    from keras_custom import CustomModel

    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(1)(inputs)
    model = CustomModel(inputs, outputs, optimizer="adam", loss="mse")
    model.compile()
    model.fit(keras.ops.ones((32, 8)), keras.ops.ones((32, 1)), verbose=0)
    ```

    Subclass it to write a paradigm: declare optimizers and trackers in
    `__init__`, return batch values from `train_step`:

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
        self._set_untracked("_trackers", Trackers(self.name))
        self.add_optimizer("optimizer", optimizer, variables=None, default="rmsprop")
        self._optimizer_slots["optimizer"].implicit = True
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
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"An optimizer name must be a Python identifier. Got: {name!r}"
            )
        if variables is not None:
            named_optimizers.trainable_variables_of(variables)  # validates
        self._optimizer_slots[name] = OptimizerSlot(name, variables, default)
        instance = named_optimizers.resolve_optimizer(optimizer, name)
        if instance is not None or not hasattr(self, name):
            self._set_untracked(name, instance)

    @property
    def optimizer_names(self) -> list[str]:
        """Names of the optimizers this model declares, in declaration order."""
        return list(self._optimizer_slots)

    @property
    def optimizers(self) -> dict:
        """The model's optimizers by name (those that are set)."""
        return {
            name: getattr(self, name)
            for name in self._optimizer_slots
            if getattr(self, name, None) is not None
        }

    def optimizer_variables(self, name: str = "optimizer") -> list:
        """The trainable variables that optimizer `name` updates."""
        slot = self._slot(name)
        if slot.owner is not None:
            return named_optimizers.trainable_variables_of(slot.owner)
        claimed = [
            variable
            for other in self._optimizer_slots.values()
            if other.owner is not None and getattr(self, other.name, None) is not None
            for variable in named_optimizers.trainable_variables_of(other.owner)
        ]
        return named_optimizers.unclaimed_variables(self.trainable_variables, claimed)

    def _slot(self, name: str) -> OptimizerSlot:
        if name not in self._optimizer_slots:
            raise ValueError(
                f"Model '{self.name}' has no optimizer named '{name}'. Its "
                f"optimizers are: {self.optimizer_names}."
            )
        return self._optimizer_slots[name]

    def _get_optimizer(self, name: str):
        self._slot(name)
        optimizer = getattr(self, name, None)
        if optimizer is None:
            raise ValueError(
                f"Optimizer '{name}' of model '{self.name}' is not set. Give "
                f"it to the constructor or to `compile({name}=...)`."
            )
        return optimizer

    def _build_optimizers(self, strict: bool = False) -> None:
        """Builds every optimizer on its variables, before the first step.

        Keras builds only `self.optimizer`, and on all trainable variables;
        the others would be built inside the first traced step, which fails
        under `MirroredStrategy` and leaves their saved state unloaded.
        """
        for name, slot in self._optimizer_slots.items():
            optimizer = getattr(self, name, None)
            if optimizer is None or optimizer.built:
                continue
            owner = self if slot.owner is None else slot.owner
            if not named_optimizers.owner_is_built(owner):
                if strict:
                    raise ValueError(
                        f"Optimizer '{name}' of model '{self.name}' cannot be "
                        "built because the layers it updates are not built. "
                        "Build them (call them on a batch, or construct them "
                        "from `keras.Input`) before training under a "
                        "distribution strategy."
                    )
                continue
            variables = self.optimizer_variables(name)
            if variables:
                with tensorflow_backend.strategy_scope(self):
                    optimizer.build(variables)

    # ------------------------------------------------------------------
    # Trackers
    # ------------------------------------------------------------------

    def add_tracker(self, name: str) -> keras.metrics.Mean:
        """Declares a logged scalar; returns its `Mean` tracker.

        A step may log names it did not declare when training on one device;
        under a distribution strategy every logged name must be declared
        here (in `__init__`) so its variables exist before training.
        """
        with tensorflow_backend.strategy_scope(self):
            return self._trackers.add(name)

    @property
    def metrics(self) -> list:
        others = [m for m in super().metrics if m is not self._loss_tracker]
        return list(self._trackers) + self._trackers.excluding(others)

    def reset_metrics(self) -> None:
        super().reset_metrics()
        # A subclass may list only its own metrics in `metrics`.
        self._trackers.reset()

    def _metric_names(self) -> set:
        """Names of the model's metrics other than the core's trackers."""
        names = set()
        for metric in self._trackers.excluding(self.metrics):
            if isinstance(metric, CompileMetrics):
                names.update(m.name for m in metric.metrics)
            else:
                names.add(metric.name)
        return names

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Updates compiled metrics; returns the results of non-tracker metrics."""
        del x
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
        results = {}
        for metric in self._trackers.excluding(self.metrics):
            result = metric.result()
            if isinstance(result, dict):
                results.update(result)
            else:
                results[metric.name] = result
        return results

    def _with_trackers(self, step: Callable, step_name: str) -> Callable:
        @functools.wraps(step)
        def tracked_step(data):
            # Unpacked before the step, so a batch of the wrong structure
            # fails with Keras's message, not inside a step of the user's.
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            logs = step(data)
            first = _first_tensor(x)
            batch_size = 1 if first is None else keras.ops.shape(first)[0]
            return self._trackers.record(
                logs, batch_size, self._metric_names(), step_name
            )

        return tracked_step

    def _make_function(self, step_function):
        return tensorflow_backend.one_step_function(
            self, step_function, super()._make_function(step_function)
        )

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        self._build_optimizers()
        self.train_function = self._make_function(
            self._with_trackers(self.train_step, "train_step")
        )
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        self.test_function = self._make_function(
            self._with_trackers(self.test_step, "test_step")
        )
        return self.test_function

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # `fit()` passes its epoch iterator here, just before the callbacks'
        # `on_train_begin`: where `BackupAndRestore` finds the data to resume.
        keras_internals.record_epoch_iterator(self, iterator)
        # Under a strategy Keras reduces a distributed sample batch to its
        # mean across replicas, eagerly, only to read its shapes: that
        # fails on boolean data (terminal flags) and across workers. One
        # replica's part has the same shapes.
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tensorflow_backend.first_replica_part(
                    next(batches), self.distribute_strategy
                )
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def _symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds `self.optimizer` on every trainable variable; each
        # optimizer is built on its own variables instead.
        main_optimizer = getattr(self, "optimizer", None)
        self._set_untracked("optimizer", None)
        try:
            super()._symbolic_build(iterator=iterator, data_batch=data_batch)
        finally:
            self._set_untracked("optimizer", main_optimizer)
        self._build_optimizers(strict=tensorflow_backend.has_distribution_strategy())

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
            optimizer: The main optimizer, `self.optimizer`.
            loss: The loss `compute_loss` and the default steps use. Defaults
                to the constructor's `loss`, then to `self.loss_fn`.
            **optimizers: Named optimizers declared with `add_optimizer`.

        The other arguments are those of `keras.Model.compile`.
        """
        unknown = sorted(set(optimizers) - set(self._optimizer_slots))
        if unknown:
            raise ValueError(
                f"`compile()` got unknown arguments {unknown}. Model "
                f"'{self.name}' has the optimizers {self.optimizer_names}."
            )
        optimizers["optimizer"] = optimizer
        others_declared = len(self._optimizer_slots) > 1
        mixed = self.dtype_policy.name in _MIXED_POLICIES
        with tensorflow_backend.strategy_scope(self):
            for name, slot in self._optimizer_slots.items():
                chosen = optimizers.get(name)
                if chosen is None:
                    chosen = getattr(self, name, None)
                if chosen is None and not (slot.implicit and others_declared):
                    chosen = slot.default
                chosen = named_optimizers.resolve_optimizer(chosen, name)
                if mixed and auto_scale_loss:
                    chosen = named_optimizers.loss_scaled(chosen, name)
                self._set_untracked(name, chosen)
        if loss is None:
            loss = (
                self.loss if self.loss is not None else getattr(self, "loss_fn", None)
            )
        arguments = {
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
            "run_eagerly": run_eagerly,
            "steps_per_execution": steps_per_execution,
            "jit_compile": jit_compile,
        }
        # The optimizers are already loss-scaled above, each one of them.
        super().compile(optimizer=self.optimizer, auto_scale_loss=False, **arguments)
        if (
            not len(self._trackers)
            and type(self).train_step is CustomModel.train_step
            and "loss" not in self._metric_names()
        ):
            self.add_tracker("loss")
        self._compile_config = SerializableDict(
            **arguments, auto_scale_loss=auto_scale_loss
        )
        self._build_optimizers()

    def get_compile_config(self) -> dict:
        """The `compile()` arguments, every named optimizer included."""
        if not self.compiled:
            return {}
        config = dict(self._compile_config.config)
        config.update(self.optimizers)
        return SerializableDict(**config).serialize()

    def compile_from_config(self, config: dict) -> None:
        """Compiles from `get_compile_config()` and builds every optimizer."""
        self.compile(**keras.saving.deserialize_keras_object(config))

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
        """Takes one gradient step on `loss_fn`; returns the loss to log.

        Runs `loss_fn` (the forward pass) under a gradient tape, scales the
        loss for mixed precision, takes gradients with respect to exactly
        `variables`, and applies them with `optimizer` (so its `clipnorm`,
        `global_clipnorm` and `gradient_accumulation_steps` apply).

        The loss follows the Keras convention under `tf.distribute`: a mean
        over the replica's batch divided by the number of replicas, which is
        what `keras.losses.Loss` objects return (use
        `keras_custom.core.scale_for_replicas` on a loss made with raw
        `ops.mean`). The loss returned is the replica's batch mean, unscaled.

        Args:
            loss_fn: Callable without arguments returning the loss, or a
                tuple `(loss, aux...)`; the tuple is returned likewise.
            variables: Variables to update. Defaults to those the named
                optimizer is tied to, looked up after the forward pass.
            optimizer: Name of one of the model's optimizers, or an
                optimizer instance (then `variables` is required).
            before_apply: Optional callable without arguments run after the
                gradients are taken and before they are applied (e.g.
                sharpness-aware minimization restores its perturbed weights).

        Returns:
            The loss (or the tuple) with the loss unscaled.
        """
        optimizer, variables = self._optimizer_and_variables(
            optimizer, variables, "minimize"
        )
        output, variables, gradients = tensorflow_backend.value_and_gradients(
            loss_fn, variables, optimizer.scale_loss
        )
        if before_apply is not None:
            before_apply()
        if variables:
            optimizer.apply(gradients, variables)
        else:
            warnings.warn(
                f"`minimize()` on model '{self.name}' got no trainable "
                "variables to update.",
                stacklevel=2,
            )
        return _unscaled_output(output)

    def gradients(
        self,
        loss_fn: Callable[[], Any],
        variables: Sequence | None = None,
        optimizer: str | keras.optimizers.Optimizer = "optimizer",
    ):
        """Takes the gradients of `loss_fn` without applying them.

        For mathematics that needs a gradient before the update (the
        perturbation of sharpness-aware minimization). The loss is scaled
        for mixed precision as `minimize` does and the gradients unscaled;
        under a distribution strategy they are summed over the replicas, so
        every replica holds the gradient of the global batch's loss.

        Args:
            loss_fn: As in `minimize`.
            variables: As in `minimize`.
            optimizer: As in `minimize`; its loss scale is used.

        Returns:
            `(output, gradients)`: what `loss_fn` returned, with the loss
            unscaled, and one gradient (or `None`) per variable.
        """
        optimizer, variables = self._optimizer_and_variables(
            optimizer, variables, "gradients"
        )
        output, _, gradients = tensorflow_backend.value_and_gradients(
            loss_fn, variables, optimizer.scale_loss
        )
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            scale = optimizer.dynamic_scale
            gradients = [
                None if g is None else g / keras.ops.cast(scale, g.dtype)
                for g in gradients
            ]
        gradients = tensorflow_backend.all_reduce_sum(gradients)
        return _unscaled_output(output), gradients

    def _optimizer_and_variables(self, optimizer, variables, caller: str):
        if isinstance(optimizer, str):
            if variables is None:
                variables = functools.partial(self.optimizer_variables, optimizer)
            return self._get_optimizer(optimizer), variables
        if variables is None:
            raise ValueError(
                f"`{caller}()` needs `variables` when `optimizer` is an "
                "instance rather than the name of one of the model's optimizers."
            )
        return optimizer, variables

    def scalar(self, value: schedules.Scalar, optimizer: str = "optimizer"):
        """A float or schedule evaluated at optimizer `optimizer`'s iterations.

        Evaluating at an optimizer's `iterations` makes a warm-up or decay
        resume where it stopped after saving and loading.
        """
        return schedules.scalar_value(value, self._get_optimizer(optimizer).iterations)

    # ------------------------------------------------------------------
    # Default steps: supervised, as keras.Model's
    # ------------------------------------------------------------------

    def _call_model(self, x, training: bool):
        if self._call_has_training_arg:
            return self(x, training=training)
        return self(x)

    def _check_loss_inputs(self, y, step_name: str) -> None:
        if self._compile_loss is None:
            raise ValueError(
                f"Model '{self.name}' has no loss for its default "
                f"`{step_name}`: give `loss=` to the constructor or to "
                "`compile()`, set `self.loss_fn`, or override "
                f"`{step_name}`."
            )
        if y is None:
            raise ValueError(
                f"Model '{self.name}' was given no labels: its loss needs "
                "targets `y`. Pass `fit(x, y)`, or a dataset of `(x, y)` "
                "tuples."
            )

    def train_step(self, data):
        """The supervised step of `keras.Model`, through `minimize`."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._check_loss_inputs(y, "train_step")

        def forward():
            y_pred = self._call_model(x, training=True)
            loss = self._compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            return loss, y_pred

        loss, y_pred = self.minimize(forward)
        return self._supervised_logs(loss, y, y_pred, sample_weight, x)

    def test_step(self, data):
        """Evaluates the loss and metrics on `self(x, training=False)`.

        It also works for a subclass that overrides only `train_step`: with
        a loss known to the model (constructor, `compile()` or
        `self.loss_fn`) it evaluates that loss, and the subclass's own `Mean`
        tracker named `"loss"` and its `(y_true, y_pred)` metrics are updated
        as its `train_step` would.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self._call_model(x, training=False)
        loss = None
        if self._compile_loss is not None:
            self._check_loss_inputs(y, "test_step")
            loss = tensorflow_backend.unscale_for_replicas(
                self._compute_loss(
                    x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
                )
            )
        logs = self._supervised_logs(loss, y, y_pred, sample_weight, x)
        if not logs:
            raise ValueError(
                f"Model '{self.name}' has nothing to evaluate: it has no loss "
                "and no metrics. Give `loss=` to the constructor or to "
                "`compile()`, or override `test_step`."
            )
        return logs

    def _supervised_logs(self, loss, y, y_pred, sample_weight, x) -> dict:
        """Updates the metrics of a supervised step; returns its logs.

        The model's own metrics (attributes, as the Keras guide creates them)
        are updated too: a `Mean` named `"loss"` with the loss, the others
        with `(y, y_pred)`. Otherwise the loss goes to the core's tracker.
        """
        for metric in self._metrics:  # the core's trackers are not among them
            if type(metric) is keras.metrics.Mean:
                if metric.name == "loss" and loss is not None:
                    metric.update_state(loss)
            elif y is not None:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        if loss is not None and "loss" not in logs:
            logs = {"loss": loss, **logs}
        return logs

    # ------------------------------------------------------------------
    # Configuration
    # ------------------------------------------------------------------

    def get_config(self) -> dict:
        if isinstance(self, functional_lib.Functional):
            config = functional_lib.Functional.get_config(self)
        else:
            config = keras.Model.get_config(self)
        for name in self._optimizer_slots:
            optimizer = getattr(self, name, None)
            config[name] = (
                None
                if optimizer is None
                else keras.saving.serialize_keras_object(optimizer)
            )
        config["loss"] = keras.saving.serialize_keras_object(self.loss)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """Rebuilds the model, including a functional subclass whose
        `__init__(self, inputs, outputs)` takes no `name` (Keras cannot)."""
        if functional_lib.is_functional_config(config) and not _accepts_name(cls):

            def construct(inputs, outputs, name=None, trainable=None, **extra):
                model = cls(inputs, outputs)
                model.name = name or model.name
                if trainable is not None:
                    model.trainable = trainable
                return model

            return functional_lib.functional_from_config(
                construct, dict(config), custom_objects=custom_objects
            )
        return super().from_config(config, custom_objects=custom_objects)

    # ------------------------------------------------------------------
    # Random state: saved, so a resumed run draws what an uninterrupted one
    # would (Keras saves no `SeedGenerator` state).
    # ------------------------------------------------------------------

    def _all_seed_generators(self) -> list:
        generators, seen = [], set()
        for layer in self._flatten_layers(include_self=True):
            for generator in layer._seed_generators:
                if id(generator) not in seen:
                    seen.add(id(generator))
                    generators.append(generator)
        return generators

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        for index, generator in enumerate(self._all_seed_generators()):
            store[f"{_SEED_STATE_KEY}{index}"] = generator.state

    def load_own_variables(self, store) -> None:
        own = {k: store[k] for k in store.keys() if not k.startswith(_SEED_STATE_KEY)}
        super().load_own_variables(own)
        for index, generator in enumerate(self._all_seed_generators()):
            key = f"{_SEED_STATE_KEY}{index}"
            if key in store.keys():
                generator.state.assign(store[key])

    # ------------------------------------------------------------------

    @tracking.no_automatic_dependency_tracking
    def _set_untracked(self, name: str, value) -> None:
        setattr(self, name, value)
