"""`CustomModel`: a drop-in `keras.Model` for training logic of your own."""

import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras

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


# Keys of `get_compile_config()` beside `keras.Model.compile`'s arguments.
_COMPILE_CALL_KEY = "compile_call"
_ATTRIBUTE_OPTIMIZERS_KEY = "attribute_optimizer_variables"


def _recording_compile(compile_method: Callable) -> Callable:
    """Wraps a subclass's own `compile` to record the arguments of each call.

    Keras reloads a model with `compile_from_config(get_compile_config())`,
    whose arguments are those of `keras.Model.compile`; a subclass with a
    `compile` of its own (the Keras guide's GAN takes `d_optimizer`,
    `g_optimizer`, `loss_fn`) cannot take them. The arguments it was called
    with are kept instead (by parameter name, serialized when the model is
    saved) and `compile_from_config` calls it again with them. Calls of
    `super().compile(...)` from a sub-subclass are recorded too, but the
    outermost call returns last and so is the one kept.
    """
    if getattr(compile_method, "_keras_custom_records", False):
        return compile_method
    signature = inspect.signature(compile_method)

    @functools.wraps(compile_method)
    def compile(self, *args, **kwargs):
        compile_method(self, *args, **kwargs)
        arguments = dict(signature.bind(self, *args, **kwargs).arguments)
        arguments.pop(next(iter(signature.parameters)))  # `self`
        self._set_untracked("_compile_call", arguments)

    compile._keras_custom_records = True
    return compile


def _call_arguments(method: Callable, arguments: dict) -> tuple[list, dict]:
    """`(args, kwargs)` that call `method` with `arguments` (by name)."""
    args, kwargs = [], {}
    parameters = list(inspect.signature(method).parameters.values())
    variadic = any(
        p.kind is inspect.Parameter.VAR_POSITIONAL and arguments.get(p.name)
        for p in parameters
    )
    for parameter in parameters:
        if parameter.name not in arguments:
            continue
        value = arguments[parameter.name]
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY or (
            parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and variadic
        ):
            args.append(value)
        else:
            kwargs[parameter.name] = value
    return args, kwargs


@keras.saving.register_keras_serializable(package="keras_custom")
class CustomModel(keras_internals.TrainerHooks, keras.Model):
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
    - The Keras guide's GAN works as written: optimizers held as plain
      attributes are found (by running `train_step` once on symbolic data)
      and built on the variables the step applies them to before the first
      step, under the model's strategy, and saved with their state; a
      subclass's own `compile(...)` is called again with the same
      arguments when the model is loaded; a model without `call()` is built
      when its layers are.

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

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A `compile` of the subclass's own: record its calls, so that a
        # loaded model is compiled by it again (`compile_from_config`).
        if "compile" in cls.__dict__:
            cls.compile = _recording_compile(cls.__dict__["compile"])

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
        # Optimizers set as plain attributes: their variables by attribute
        # name, once found (`_find_optimizer_variables`).
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
        # So are those of optimizers held as attributes (the guide's GAN
        # leaves `self.optimizer` unused: it is built on nothing).
        attributes = self._attribute_optimizers()
        claimed += [
            variable
            for attribute, variables in self._attribute_optimizer_variables.items()
            if attribute in attributes
            for variable in variables
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
        self._build_attribute_optimizers()

    # ------------------------------------------------------------------
    # Optimizers held as plain attributes, and models without `call`: the
    # Keras guide's GAN sets `self.d_optimizer` and `self.g_optimizer` in a
    # `compile` of its own and has all its logic in `train_step`.
    # ------------------------------------------------------------------

    def _attribute_optimizers(self) -> dict:
        """Optimizers set as attributes, not declared with `add_optimizer`."""
        return named_optimizers.attribute_optimizers(self, self.optimizers.values())

    def _find_optimizer_variables(self, data, in_replica_context: bool = False):
        """Ties each unbuilt attribute optimizer to the variables it updates.

        Keras builds such an optimizer in its first `apply`, inside the first
        traced step. Under `MirroredStrategy` that step runs in a replica
        context, where the optimizer's variables cannot be created (a
        placeholder error); and a loaded model could not load the
        optimizer's state, having no variables to load it into. Which
        variables a step gives which optimizer is known only to the step
        (the guide applies `d_optimizer` to
        `discriminator.trainable_weights`), so the step is run once on
        symbolic data shaped like `data`, recording what each `apply` gets
        (`named_optimizers.applied_variables`); nothing is executed. Each
        optimizer is then built on its variables, under the model's
        strategy, and they are remembered for `.keras` files.

        Args:
            data: A batch (one replica's part under a strategy), as
                `train_step` receives it.
            in_replica_context: Called from a step running under a
                strategy, where nothing can be built: an optimizer that
                should have been built before the first step raises.
        """
        known = self._attribute_optimizer_variables
        unbuilt = {
            name: optimizer
            for name, optimizer in self._attribute_optimizers().items()
            if not optimizer.built and name not in known
        }
        if not unbuilt:
            return
        applied, error = named_optimizers.applied_variables(
            self.train_step, data, unbuilt
        )
        if error is not None:
            # Once more, with the layers the failed run may have built.
            applied, error = named_optimizers.applied_variables(
                self.train_step, data, unbuilt
            )
        if error is None:
            # The unapplied ones are known to update nothing.
            known.update({name: applied.get(name, []) for name in unbuilt})
        if not in_replica_context:
            # If the symbolic run failed, Keras's lazy build remains (it
            # works on one device).
            self._build_attribute_optimizers()
            return
        if error is not None or applied:
            raise ValueError(
                f"Model '{self.name}' ({type(self).__name__}) holds the "
                f"optimizers {sorted(unbuilt)} as attributes. Under a "
                "distribution strategy they must be built before the first "
                "step, on the variables each one updates, and these were not "
                "found before it (by running `train_step` on symbolic data). "
                "Build them (`optimizer.build(variables)`) before `fit()`, or "
                "declare them with `self.add_optimizer(name, optimizer, "
                "variables)`."
            ) from error

    def _build_attribute_optimizers(self) -> None:
        """Builds the attribute optimizers whose variables are known."""
        attributes = self._attribute_optimizers()
        for name, variables in self._attribute_optimizer_variables.items():
            optimizer = attributes.get(name)
            if optimizer is None or optimizer.built or not variables:
                continue
            # Lifted out of a traced step (the first one, on one device).
            with (
                tensorflow_backend.strategy_scope(self),
                tensorflow_backend.outside_step(),
            ):
                optimizer.build(variables)

    def _train_step_building_optimizers(self, data):
        """`train_step`, with the attribute optimizers built first.

        Runs when the train function is traced. On one device the
        optimizers are built here, before the step's first `apply`; under a
        strategy that was done before the first step
        (`_build_before_training`).
        """
        replica_context = tensorflow_backend.has_distribution_strategy()
        self._find_optimizer_variables(data, in_replica_context=replica_context)
        if not replica_context:
            self._build_without_call()
        return self.train_step(data)

    def _build_without_call(self) -> None:
        """Marks a model without `call()` built when its layers are built.

        Before a distributed first step, Keras builds an unbuilt model by
        running `call` on symbolic inputs ("Unable to automatically build
        the model"); a model whose logic is all in `train_step` has no
        `call`. Its variables are those of its layers, so it is built when
        they are, as Keras marks a layer without `build()` built when it is
        made.
        """
        if (
            not self.built
            and type(self).call is keras.Model.call
            and all(layer.built for layer in self.layers)
        ):
            self.built = True

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
        """The trackers, then Keras's metrics (compiled, attributes, nested).

        As in Keras, the first is the loss tracker when the model logs
        `"loss"`; Keras's loss tracker is left out when the model's steps
        log other names only (it would log a `loss` of 0).
        """
        keras_loss_tracker = keras_internals.loss_tracker(self)
        trackers = list(self._trackers)
        loss_tracker = self._trackers.get("loss")
        if loss_tracker is not None:
            trackers.remove(loss_tracker)
            # Keras's tracker, taken before the steps were known, is left
            # out once they turn out to log other names only.
            if not (
                loss_tracker is keras_loss_tracker and self._trackers.unused("loss")
            ):
                trackers.insert(0, loss_tracker)
        others = [m for m in super().metrics if m is not keras_loss_tracker]
        return trackers + self._trackers.excluding(others)

    def reset_metrics(self) -> None:
        super().reset_metrics()
        # A subclass may list only its own metrics in `metrics`.
        self._trackers.reset()

    def _metric_names(self) -> set:
        """Names of the model's metrics other than the core's trackers."""
        names = set()
        for metric in self._trackers.excluding(self.metrics):
            if isinstance(metric, keras_internals.CompileMetrics):
                names.update(m.name for m in metric.metrics)
            else:
                names.add(metric.name)
        return names

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Updates compiled metrics; returns the results of non-tracker metrics."""
        del x
        compiled_metrics = keras_internals.compiled_metrics(self)
        if compiled_metrics is not None:
            compiled_metrics.update_state(y, y_pred, sample_weight)
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
            self._trackers.begin_step()
            logs = step(data)
            first = _first_tensor(x)
            batch_size = 1 if first is None else keras.ops.shape(first)[0]
            return self._trackers.record(
                logs, batch_size, self._metric_names(), step_name
            )

        return tracked_step

    def _step_function(self, step_function, keras_function):
        """The train or test function `fit()` calls (`TrainerHooks`)."""
        return tensorflow_backend.one_step_function(self, step_function, keras_function)

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        self._build_optimizers()
        self.train_function = keras_internals.make_function(
            self,
            self._with_trackers(self._train_step_building_optimizers, "train_step"),
        )
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        self.test_function = keras_internals.make_function(
            self, self._with_trackers(self.test_step, "test_step")
        )
        return self.test_function

    def _build_before_training(self, iterator, data_batch) -> None:
        """Builds the model before `fit()`'s first step (`TrainerHooks`).

        Under a strategy Keras reduces a distributed sample batch to its
        mean across replicas, eagerly, only to read its shapes: that fails
        on boolean data (terminal flags) and across workers. One replica's
        part has the same shapes.
        """
        if keras_internals.creation_strategy(self) is None:
            return
        if iterator is not None:
            data_batch = tensorflow_backend.first_replica_part(
                keras_internals.first_batch(iterator), self.distribute_strategy
            )
        # Before the first step runs in a replica context, a model without
        # `call` is built where Keras would call it, and the optimizers held
        # as attributes are built on their variables.
        if (
            data_batch is not None
            and type(self).call is keras.Model.call
            and not all(layer.built for layer in self.layers)
        ):
            with self.distribute_strategy.scope():
                # Its layers left unbuilt are built by a symbolic run of its
                # step, mirrored, as Keras's symbolic build does with `call`.
                named_optimizers.applied_variables(
                    self.train_step, data_batch, self._attribute_optimizers()
                )
        if data_batch is not None:
            # Outside the scope, where TensorFlow takes gradients of mirrored
            # variables; the optimizers are built under it. Before the
            # symbolic build, which builds `self.optimizer` on the variables
            # they leave.
            self._find_optimizer_variables(data_batch)
        with self.distribute_strategy.scope():
            self._build_without_call()
            keras_internals.symbolic_build(self, data_batch)

    def _after_symbolic_build(self) -> None:
        """Builds each optimizer on its own variables (`TrainerHooks`)."""
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
        # Without `call` there are no predictions for a loss to compare: the
        # guide's GAN sets `self.loss_fn` for its own step, and a second
        # `compile()` must not make Keras build the loss by calling the model.
        if loss is None and type(self).call is not keras.Model.call:
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
        # Under the model's strategy, so Keras's loss tracker and compiled
        # metrics are mirrored as the trackers are.
        with tensorflow_backend.strategy_scope(self):
            super().compile(
                optimizer=self.optimizer, auto_scale_loss=False, **arguments
            )
        self._share_loss_tracker()
        self._set_untracked(
            "_compile_arguments", {**arguments, "auto_scale_loss": auto_scale_loss}
        )
        self._build_optimizers()

    def _share_loss_tracker(self) -> None:
        """Makes the tracker of `"loss"` and Keras's loss tracker one object.

        Keras lists its loss tracker first in `metrics`; a model that logs
        `"loss"` keeps its own tracker there, and a model with no tracker
        yet (Keras's supervised step, or a step of the Keras guide that
        updates `self.metrics` itself) takes Keras's as its tracker of
        `"loss"`.
        """
        own = self._trackers.get("loss")
        if own is not None:
            keras_internals.set_loss_tracker(self, own)
        elif not len(self._trackers) and "loss" not in self._metric_names():
            self._trackers.adopt(keras_internals.loss_tracker(self))

    def get_compile_config(self) -> dict:
        """The `compile()` arguments, every named optimizer included."""
        if not self.compiled:
            return {}
        config = dict(self._compile_arguments)
        config.update(self.optimizers)
        config = keras.saving.serialize_keras_object(config)
        return {**config, **self._own_compile_config()}

    def compile_from_config(self, config: dict) -> None:
        """Compiles from `get_compile_config()` and builds every optimizer.

        A subclass with a `compile` of its own is compiled by it, with the
        arguments of its last call; optimizers it holds as attributes are
        built on the variables they updated, so that their saved state
        loads (Keras loads the state of built optimizers only).
        """
        config = dict(config)
        call = config.pop(_COMPILE_CALL_KEY, None)
        positions = config.pop(_ATTRIBUTE_OPTIMIZERS_KEY, None) or {}
        if call is None:
            self.compile(**keras.saving.deserialize_keras_object(config))
        else:
            args, kwargs = _call_arguments(
                self.compile, keras.saving.deserialize_keras_object(call)
            )
            self.compile(*args, **kwargs)
        for name, indices in positions.items():
            variables = named_optimizers.variables_at(self.trainable_variables, indices)
            if variables is None:
                warnings.warn(
                    f"Optimizer '{name}' of model '{self.name}' was saved for "
                    f"the trainable variables at {indices}, which this model "
                    "does not have; its saved state is not loaded.",
                    stacklevel=2,
                )
                continue
            self._attribute_optimizer_variables[name] = variables
        self._build_attribute_optimizers()

    def _own_compile_config(self) -> dict:
        """What `get_compile_config` adds to `keras.Model.compile`'s arguments.

        The arguments of the last call of the subclass's own `compile`, if
        it has one, and for each optimizer held as an attribute the
        positions of its variables in `trainable_variables`.
        """
        config = {}
        call = getattr(self, "_compile_call", None)
        if call is not None:
            config[_COMPILE_CALL_KEY] = keras.saving.serialize_keras_object(call)
        attributes = self._attribute_optimizers()
        positions = {}
        for name, variables in self._attribute_optimizer_variables.items():
            if variables and name in attributes:
                indices = named_optimizers.variable_indices(
                    self.trainable_variables, variables
                )
                if indices is not None:
                    positions[name] = indices
        if positions:
            config[_ATTRIBUTE_OPTIMIZERS_KEY] = positions
        return config

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
        if keras_internals.call_takes_training(self):
            return self(x, training=training)
        return self(x)

    def _computed_loss(self, x, y, y_pred, sample_weight, training: bool):
        """`compute_loss`, given `training` when the method takes it.

        Keras 3.3 added `training` to `compute_loss`; an override written
        before may not take it (Keras's own steps check the same way).
        """
        if "training" in inspect.signature(self.compute_loss).parameters:
            return self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
            )
        return self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)

    def _check_loss_inputs(self, y, step_name: str) -> None:
        if keras_internals.compiled_loss(self) is None:
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
            loss = self._computed_loss(
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
        cls = type(self).__name__
        if type(self).call is keras.Model.call:
            # Keras would fail inside `call()`, saying only that it is missing.
            raise NotImplementedError(
                f"Model '{self.name}' ({cls}) cannot be evaluated: it has no "
                f"`test_step` and no `call()`. Add to {cls} a "
                "`test_step(self, data)` returning a dict of the values to "
                "log (for example the losses of `train_step`, computed "
                "without updating any weight), or a `call()` and a loss."
            )
        y_pred = self._call_model(x, training=False)
        loss = None
        if keras_internals.compiled_loss(self) is not None:
            self._check_loss_inputs(y, "test_step")
            loss = tensorflow_backend.unscale_for_replicas(
                self._computed_loss(
                    x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
                )
            )
        logs = self._supervised_logs(loss, y, y_pred, sample_weight, x)
        if not logs:
            raise ValueError(
                f"Model '{self.name}' ({cls}) has nothing to evaluate: it has "
                "no loss and no metrics. Give `loss=` to the constructor or "
                "to `compile()`, set `self.loss_fn`, or add to "
                f"{cls} a `test_step(self, data)` returning the values to log."
            )
        return logs

    def _supervised_logs(self, loss, y, y_pred, sample_weight, x) -> dict:
        """Updates the metrics of a supervised step; returns its logs.

        The model's own metrics (attributes, as the Keras guide creates them)
        are updated too: a `Mean` named `"loss"` with the loss, the others
        with `(y, y_pred)`. Otherwise the loss goes to the core's tracker.
        """
        # The core's trackers are not among them.
        for metric in keras_internals.attribute_metrics(self):
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

    #: The attribute name of the network whose inputs `export()` serves by
    #: default (`"generator"` for a GAN); `None` lets Keras infer them.
    serving_network: str | None = None

    def export(
        self,
        filepath,
        format: str = "tf_saved_model",
        verbose: bool | None = None,
        input_signature=None,
        **kwargs,
    ):
        """Exports the model for inference, as `keras.Model.export` does.

        Keras infers the serving signature of a subclassed model from the
        call that built it; a model built from built sub-models was never
        called, so the signature defaults to the inputs (with their dtypes)
        of the network named by `serving_network`, which `call` feeds.
        Arguments are those of `keras.Model.export`.
        """
        network = getattr(self, self.serving_network or "", None)
        inputs = getattr(network, "inputs", None)
        if input_signature is None and inputs:
            input_signature = [inputs[0] if len(inputs) == 1 else list(inputs)]
        return super().export(
            filepath,
            format=format,
            verbose=verbose,
            input_signature=input_signature,
            **kwargs,
        )

    def save(self, filepath, overwrite: bool = True, zipped=None, **kwargs) -> None:
        """Saves the model, as `keras.Model.save` does.

        Keras's legacy `.h5` writer saves `model.optimizer` whenever the
        attribute exists and fails on `None` (a model not compiled, or whose
        optimizers are all named, as a GAN's): such a model is written
        without optimizer. The `.keras` format keeps every optimizer.
        """
        if str(filepath).endswith((".h5", ".hdf5")) and self.optimizer is None:
            kwargs.setdefault("include_optimizer", False)
        return super().save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    # ------------------------------------------------------------------
    # Random state: saved, so a resumed run draws what an uninterrupted one
    # would (Keras saves no `SeedGenerator` state).
    # ------------------------------------------------------------------

    def _all_seed_generators(self) -> list:
        generators, seen = [], set()
        for layer in keras_internals.flatten_layers(self):
            for generator in keras_internals.seed_generators(layer):
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

    def _set_untracked(self, name: str, value) -> None:
        keras_internals.set_untracked(self, name, value)

    def __reduce__(self):
        # Keras pickles `(type(self)._unpickle_model, (buffer,))`; pickle
        # cannot name the class of a functional instance (it shares its
        # name with the class it derives from), so name Keras's loader
        # through `keras_internals` instead.
        _, arguments = super().__reduce__()
        return keras_internals.unpickle_model, arguments
