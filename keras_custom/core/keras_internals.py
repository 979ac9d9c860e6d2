"""Every Keras and TensorFlow internal keras_custom relies on, each with its reason.

The rest of the library uses public APIs only: a private module
(`keras.src...`, `tensorflow.python...`), an underscore attribute of a Keras
object or an override of a private hook of Keras's trainer is reached
through a name of this module, whose docstring says why no public API does
the job. `check()` verifies that the installed Keras and TensorFlow still
have every one of them (the test suite runs it), so a release that renames
one fails with a message naming it instead of deep inside `fit()`.

Supported versions: Keras `SUPPORTED_KERAS` and TensorFlow
`SUPPORTED_TENSORFLOW` (both ends included), the range `pyproject.toml`
declares and CI tests.

The internals fall into five groups:

- Private modules: `reduce_per_replica` (Keras's reduction of step logs),
  `LossFunctionWrapper` (a `Loss` from a function, with its config),
  `Functional`, `functional_from_config`, `functional_init_arguments` and
  the registry of custom names (functional construction of a subclass
  without Keras's rewrite of its bases), `CompileMetrics`, `DataAdapter`
  (experience datasets that `fit()` takes as they are), the automatic
  dependency tracking switch, and TensorFlow's op-determinism switch.
- Private attributes of a compiled model: its compiled loss and metrics,
  its loss tracker, the metrics set as attributes, the strategy it was
  created under, whether `call` takes `training`, its seed generators and
  its nested layers.
- Private hooks of Keras's TensorFlow trainer that `CustomModel` overrides
  (`TrainerHooks`): `_make_function`, `_maybe_symbolic_build`,
  `_symbolic_build`.
- Pickling: `KerasSaveable._unpickle_model`.
- Exact mid-epoch resume (`keras_custom.callbacks.BackupAndRestore`).

"""

import importlib
import io
import weakref

import keras
import tensorflow as tf

#: The oldest and newest Keras minor versions CI tests (both included).
SUPPORTED_KERAS = ("3.12", "3.15")
#: The oldest and newest TensorFlow minor versions CI tests (both included).
SUPPORTED_TENSORFLOW = ("2.19", "2.21")

_EPOCH_ITERATOR = "_keras_custom_epoch_iterator"


def supported_range() -> str:
    """The supported versions and the installed ones, in a sentence."""
    return (
        f"keras_custom supports Keras {SUPPORTED_KERAS[0]} to "
        f"{SUPPORTED_KERAS[1]} and TensorFlow {SUPPORTED_TENSORFLOW[0]} to "
        f"{SUPPORTED_TENSORFLOW[1]}; installed: Keras {keras.__version__}, "
        f"TensorFlow {tf.__version__}"
    )


def missing(what: str, why: str) -> RuntimeError:
    """The error for an internal `what` the installed Keras lacks."""
    return RuntimeError(
        f"The installed Keras ({keras.__version__}) lacks {what}, which "
        f"keras_custom needs {why}. {supported_range()}."
    )


def _private(module: str, name: str, why: str):
    """`module.name`, or an `ImportError` naming it and the supported range."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"`{module}.{name}` is missing from the installed Keras or "
            f"TensorFlow; keras_custom needs it {why}. {supported_range()}."
        ) from error


def minor_version(version: str) -> tuple[int, int]:
    """`(major, minor)` of a version string such as `"3.15.1"` or `"2.21.0rc1"`."""
    major, minor = version.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def unsupported_versions() -> list[str]:
    """The installed packages outside the supported range, as `"Keras 3.16.0"`."""
    outside = []
    for package, version, (oldest, newest) in (
        ("Keras", keras.__version__, SUPPORTED_KERAS),
        ("TensorFlow", tf.__version__, SUPPORTED_TENSORFLOW),
    ):
        installed = minor_version(version)
        if not minor_version(oldest) <= installed <= minor_version(newest):
            outside.append(f"{package} {version}")
    return outside


# ----------------------------------------------------------------------
# Private modules
# ----------------------------------------------------------------------

#: Reason: reduces a distributed step's logs exactly as Keras's own train
#: function does (mean over replicas, concatenation of batch outputs); the
#: lean one-step function must return the same values.
reduce_per_replica = _private(
    "keras.src.backend.tensorflow.trainer",
    "reduce_per_replica",
    "to reduce step logs over replicas as Keras does",
)
#: Reason: Keras's own `Loss` around a function `fn(y_true, y_pred)`, with
#: the reduction and the config (the function serialized) that
#: `compile(loss=fn)` gives; Keras exports no such class.
LossFunctionWrapper = _private(
    "keras.src.losses.losses",
    "LossFunctionWrapper",
    "to make a `Loss` of a loss function",
)
#: Reason: `keras.Model(inputs, outputs)` on a subclass rewrites the
#: subclass's bases for good; `CustomModel` makes one instance functional
#: with a class derived from `Functional` instead, which is not exported.
Functional = _private(
    "keras.src.models.functional", "Functional", "for functional construction"
)
#: Reason: rebuilds a functional graph from its config for a subclass whose
#: `__init__` takes no `name` (Keras's loader cannot).
functional_from_config = _private(
    "keras.src.models.functional",
    "functional_from_config",
    "to load a functional subclass",
)
#: Reason: Keras's own test of whether `Model(...)` arguments are a
#: functional `(inputs, outputs)` call, so that `CustomModel` decides as
#: `keras.Model` does.
functional_init_arguments = _private(
    "keras.src.models.model",
    "functional_init_arguments",
    "to tell functional construction from subclassing as Keras does",
)
#: Reason: a functional variant class must be saved under the registered
#: name of the class it derives from; only the registry maps classes to
#: names (`keras.saving.get_registered_name` reads it, nothing writes it).
_object_registration = _private(
    "keras.src.saving", "object_registration", "to register functional variants"
)
#: Reason: the compiled metrics' container, whose result is a dict of the
#: compiled metrics by name; told apart from a model's own metrics.
CompileMetrics = _private(
    "keras.src.trainers.compile_utils",
    "CompileMetrics",
    "to log compiled metrics by name",
)
#: Reason: `fit()` takes a `DataAdapter` as it is, with no read-ahead
#: thread; experience datasets must be read when the step that trains on
#: them starts (pitfall 16), which no public data type guarantees.
DataAdapter = _private(
    "keras.src.trainers.data_adapters.data_adapter",
    "DataAdapter",
    "for experience datasets that `fit()` reads without read-ahead",
)
_tracking = _private(
    "keras.src.utils", "tracking", "to set attributes without tracking them"
)
_tf_config = _private(
    "tensorflow.python.framework",
    "config",
    "to switch TensorFlow's op determinism off again",
)


def register_under_name_of(variant: type, cls: type) -> None:
    """Saves `variant` under the registered name of `cls`, if `cls` has one.

    Reason: Keras's registry of custom names is keyed by class and public
    only for reading; the functional variant of a class must load as it.
    """
    registered = _object_registration.GLOBAL_CUSTOM_NAMES
    if cls in registered:
        registered[variant] = registered[cls]


def set_untracked(obj, name: str, value) -> None:
    """`setattr(obj, name, value)` without Keras's automatic tracking.

    Reason: assigning an optimizer or a metric to a layer's attribute makes
    Keras track it (its variables become the layer's, a metric joins the
    layer's metrics); the core keeps optimizers and trackers itself, as
    Keras's own `compile()` does for `_loss_tracker`.
    """
    _tracking.no_automatic_dependency_tracking(setattr)(obj, name, value)


def is_op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on.

    Reason: TensorFlow has a public switch on
    (`tf.config.experimental.enable_op_determinism`) and none to read it.
    """
    return _tf_config.is_op_determinism_enabled()


def disable_op_determinism() -> None:
    """Switches TensorFlow's op determinism off.

    Reason: TensorFlow has no public switch back.
    """
    _tf_config.disable_op_determinism()


def in_multi_worker_mode(strategy) -> bool:
    """Whether a `MultiWorkerMirroredStrategy` spans several workers.

    Reason: a one-worker `MultiWorkerMirroredStrategy` behaves as
    `MirroredStrategy`; only its extended object says how many workers
    there are.
    """
    return strategy.extended._in_multi_worker_mode()


# ----------------------------------------------------------------------
# Private attributes of a Keras model
# ----------------------------------------------------------------------


def compiled_loss(model):
    """The compiled loss (`None` without one).

    Reason: `model.loss` keeps what `compile()` was given (`{}` when
    nothing), not whether a loss can be computed.
    """
    return model._compile_loss


def compiled_metrics(model):
    """The `CompileMetrics` of `compile(metrics=...)`, or `None`.

    Reason: the core updates compiled metrics in its supervised steps as
    `keras.Model.compute_metrics` does, and only those.
    """
    return model._compile_metrics


def loss_tracker(model):
    """Keras's `Mean` tracker of `"loss"`, made by `compile()`.

    Reason: Keras lists it first in `model.metrics`; the core adopts it as
    its own tracker of `"loss"` so that `metrics[0]` is it, as in Keras.
    """
    return model._loss_tracker


def set_loss_tracker(model, tracker) -> None:
    """Makes `tracker` the model's loss tracker (see `loss_tracker`)."""
    set_untracked(model, "_loss_tracker", tracker)


def attribute_metrics(model) -> list:
    """The metrics a model holds as attributes (as the Keras guide's trackers).

    Reason: `model.metrics` mixes them with compiled metrics and those of
    nested layers; the default steps update these as the guide's steps do.
    """
    return list(model._metrics)


def creation_strategy(model):
    """The `tf.distribute` strategy the model was created under, or `None`.

    Reason: `model.distribute_strategy` falls back to the default strategy,
    which cannot be told apart from "created outside any strategy".
    """
    return model._distribute_strategy


def call_takes_training(model) -> bool:
    """Whether `model.call` takes a `training` argument, as Keras decided.

    Reason: Keras reads `call`'s signature once when the layer is made and
    passes `training` by that; the core's steps call the model as Keras's.
    """
    return model._call_has_training_arg


def flatten_layers(layer, include_self: bool = True) -> list:
    """Every layer nested in `layer`, once each.

    Reason: `layer.layers` lists direct children only (and only for
    models); Keras's own walk follows attributes, lists and dicts.
    """
    return list(layer._flatten_layers(include_self=include_self))


def seed_generators(layer) -> list:
    """The `keras.random.SeedGenerator`s a layer itself holds.

    Reason: Keras tracks them but saves no seed state and lists them nowhere
    public; the core saves their states so a resumed run draws what an
    uninterrupted one would.
    """
    return list(layer._seed_generators)


def autoconvert_optionals(model, function):
    """`function` wrapped as Keras wraps its step functions for optional data.

    Reason: Keras turns missing `y` or `sample_weight` of a batch into
    `tf.experimental.Optional`s inside `tf.data`; its wrapper turns them
    back into `None` before the step, which the lean step function needs as
    well. Keras before 3.11 puts no `Optional` in its data and has no such
    wrapper; then there is nothing to convert.
    """
    wrap = getattr(model, "_autoconvert_optionals", None)
    return function if wrap is None else wrap(function)


def unpickle_model(buffer: io.BytesIO):
    """Loads a model that `pickle` saved (the function `__reduce__` names).

    Reason: Keras pickles a model as `(type(model)._unpickle_model,
    (buffer,))`; a functional `CustomModel` has a class that pickle cannot
    name (it shares its name with the class it derives from), so the core
    names this function instead, which calls the same Keras loader.
    """
    return keras.Model._unpickle_model(buffer)


def symbolic_build(model, data_batch) -> None:
    """Builds the model, its compiled metrics and loss from a batch, untrained.

    Reason: Keras builds compiled metrics in the first traced step (or in
    `_symbolic_build` under a distribution strategy); a resumed run restores
    their saved state before its first step, and a model under a strategy
    must be built before its first replica step, so the core builds them the
    way Keras does under a strategy.
    """
    build = getattr(model, "_symbolic_build", None)
    if not callable(build):
        raise missing("`Model._symbolic_build`", "to build compiled metrics")
    build(data_batch=data_batch)


def first_batch(epoch_iterator):
    """The first batch of `fit()`'s `EpochIterator`, as Keras reads it to build.

    Reason: Keras's `_maybe_symbolic_build` reads it by enumerating the
    iterator, whose items are `(step, iterator)` before Keras 3.11 and
    `(begin_step, end_step, iterator)` since; the batches' iterator is last.
    """
    for item in epoch_iterator:
        return next(item[-1])
    raise ValueError("`fit()` was given no data: its dataset is empty.")


def make_function(model, step_function):
    """Keras's train or test function of `step_function`, through the hook.

    Reason: Keras's `make_train_function` and `make_test_function` build
    their functions with `Model._make_function`, which `TrainerHooks`
    overrides; the core's own versions of those two build them the same way.
    """
    return model._make_function(step_function)


class TrainerHooks:
    """The private hooks of Keras's TensorFlow trainer that `CustomModel` overrides.

    A mixin placed before `keras.Model` in `CustomModel`'s bases. Each hook
    delegates to a method of the model whose name says what it does, so
    that the overrides of private hooks are here and nowhere else.
    """

    def _make_function(self, step_function):
        # Reason: the TensorFlow trainer builds the train and test functions
        # from a step here; the core replaces the single-step case by a
        # leaner function (`tensorflow_backend.one_step_function`).
        return self._step_function(step_function, super()._make_function(step_function))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Reason: `fit()` calls it with its epoch iterator just before the
        # callbacks' `on_train_begin` (where `BackupAndRestore` finds the
        # data to resume), and under a strategy it builds the model from a
        # batch reduced across replicas, which fails on boolean data.
        record_epoch_iterator(self, iterator)
        self._build_before_training(iterator, data_batch)

    def _symbolic_build(self, iterator=None, data_batch=None):
        # Reason: Keras builds `self.optimizer` on every trainable variable
        # here; each named optimizer is built on its own variables instead.
        main_optimizer = getattr(self, "optimizer", None)
        set_untracked(self, "optimizer", None)
        try:
            super()._symbolic_build(iterator=iterator, data_batch=data_batch)
        finally:
            set_untracked(self, "optimizer", main_optimizer)
        self._after_symbolic_build()


# ----------------------------------------------------------------------
# Exact mid-epoch resume
# ----------------------------------------------------------------------
#
# Seen with Keras 3.15 (TensorFlow backend):
#
# - `fit()` makes one `EpochIterator` and hands it to
#   `self._maybe_symbolic_build(iterator=epoch_iterator)` before calling the
#   callbacks' `on_train_begin`; `CustomModel` overrides that hook and records
#   the iterator here (`record_epoch_iterator`), the only way for a callback to
#   reach the data of the running `fit()`.
# - `EpochIterator._get_iterator()` is called once for every iterator of the
#   data `fit()` creates: at the start of each epoch, and again at the end of
#   an epoch whose data ran out. A `tf.data` pipeline with
#   `shuffle(seed=...)` reshuffles per created iterator, so the order of an
#   epoch depends on how many were created before it
#   (`on_iterator_creation`).
# - `EpochIterator.steps_per_epoch`: with it set, epochs continue one iterator
#   instead of starting a new one; `EpochIterator._steps_seen` counts the
#   batches read from it to tell when finite data runs out.
# - `fit()` calls `model.train_function(iterator)` once per
#   `steps_per_execution` steps, with the data iterator itself (TensorFlow
#   trainer), after `make_train_function()` and before `on_train_begin`.
# - `Trainer._initial_epoch`, set by a callback's `on_train_begin`, is the epoch
#   `fit()` starts at (Keras's own `BackupAndRestore` sets it).
# - `Trainer._symbolic_build(data_batch=...)` builds the compiled metrics
#   before the first step, so their saved state can be restored.


def _epoch_iterator_class():
    try:
        from keras.src.trainers.epoch_iterator import EpochIterator
    except ImportError as error:
        raise missing(
            "`keras.src.trainers.epoch_iterator.EpochIterator`",
            "to reach the data of a running `fit()`",
        ) from error
    return EpochIterator


def check() -> None:
    """Raises a `RuntimeError` if the installed Keras lacks an internal used here.

    Builds and compiles a small model and checks every private attribute and
    hook the core reads or overrides (the private modules are imported when
    this module is).

    Example:

    ```python
    from keras_custom.core import keras_internals

    keras_internals.check()  # silent with a supported Keras
    ```
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "keras_custom needs the TensorFlow backend; the backend is "
            f"{keras.backend.backend()!r}."
        )
    if not hasattr(_object_registration, "GLOBAL_CUSTOM_NAMES"):
        raise missing("`object_registration.GLOBAL_CUSTOM_NAMES`", "to save variants")
    for name in ("is_op_determinism_enabled", "disable_op_determinism"):
        if not callable(getattr(_tf_config, name, None)):
            raise missing(f"`tensorflow.python.framework.config.{name}`", "")
    if not callable(getattr(_tracking, "no_automatic_dependency_tracking", None)):
        raise missing("`tracking.no_automatic_dependency_tracking`", "")
    for name in ("_make_function", "_maybe_symbolic_build", "_symbolic_build"):
        if not callable(getattr(keras.Model, name, None)):
            raise missing(f"the trainer hook `Model.{name}`", "to override it")
    for name in ("_unpickle_model", "_flatten_layers"):
        if not callable(getattr(keras.Model, name, None)):
            raise missing(f"`Model.{name}`", "")
    extended = tf.distribute.get_strategy().extended
    if not callable(getattr(extended, "_in_multi_worker_mode", None)):
        raise missing("`StrategyExtended._in_multi_worker_mode`", "")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    for name in (
        "_compile_loss",
        "_compile_metrics",
        "_loss_tracker",
        "_metrics",
        "_distribute_strategy",
        "_call_has_training_arg",
        "_seed_generators",
        "_initial_epoch",
        "train_function",
    ):
        if not hasattr(model, name):
            raise missing(f"`Model.{name}`", "")
    if not isinstance(model._compile_metrics, CompileMetrics):
        raise missing("`CompileMetrics` as the type of `Model._compile_metrics`", "")
    if not isinstance(model._loss_tracker, keras.metrics.Mean):
        raise missing("a `Mean` as `Model._loss_tracker`", "")
    if not callable(getattr(model, "get_metrics_result", None)):
        raise missing("`Model.get_metrics_result`", "to resume `fit()`")
    epoch_iterator = _epoch_iterator_class()
    for name in ("_get_iterator", "_enumerate_iterator", "reset"):
        if not callable(getattr(epoch_iterator, name, None)):
            raise missing(
                f"`EpochIterator.{name}`", "to count the data iterators of `fit()`"
            )
    iterator = epoch_iterator(x=keras.ops.zeros((2, 1)), batch_size=1)
    for name in ("steps_per_epoch", "_steps_seen", "data_adapter"):
        if not hasattr(iterator, name):
            raise missing(
                f"`EpochIterator.{name}`", "to position the data of a resumed run"
            )


# ----------------------------------------------------------------------
# The epoch iterator of the running `fit()`
# ----------------------------------------------------------------------


def record_epoch_iterator(model, epoch_iterator) -> None:
    """Remembers the `EpochIterator` that `fit()` passed to the model's hook.

    Reason: `fit()` keeps its `EpochIterator` in a local variable; the only
    place a callback can reach it is `Model._maybe_symbolic_build(iterator=)`,
    which `fit()` calls with it just before `on_train_begin`. Held weakly, so
    the model does not keep a finished `fit()`'s data alive.
    """
    if epoch_iterator is None:
        return
    object.__setattr__(model, _EPOCH_ITERATOR, weakref.ref(epoch_iterator))


def take_epoch_iterator(model):
    """The `EpochIterator` recorded for the running `fit()`, then forgotten.

    Returns `None` when none was recorded (a model that is not a
    `CustomModel`, or a Keras that no longer calls the hook).
    """
    reference = model.__dict__.get(_EPOCH_ITERATOR)
    object.__setattr__(model, _EPOCH_ITERATOR, None)
    return None if reference is None else reference()


def data_adapter(epoch_iterator):
    """The `DataAdapter` an `EpochIterator` reads (`fit()`'s `x` when that
    is an adapter itself, such as an `ExperienceDataset`)."""
    try:
        return epoch_iterator.data_adapter
    except AttributeError as error:
        raise missing("`EpochIterator.data_adapter`", "to save its state") from error


def epochs_share_iterator(epoch_iterator) -> bool:
    """Whether each epoch continues the previous epoch's data iterator.

    Reason: `EpochIterator` starts a new iterator at every epoch unless
    `steps_per_epoch` is set; then it continues the one it has.
    """
    try:
        return epoch_iterator.steps_per_epoch is not None
    except AttributeError as error:
        raise missing(
            "`EpochIterator.steps_per_epoch`", "to position resumed data"
        ) from error


def on_iterator_creation(epoch_iterator, before_creation):
    """Calls `before_creation(make_iterator)` before `fit()` creates an iterator.

    Reason: `EpochIterator._get_iterator()` is called once before every data
    iterator `fit()` creates. `make_iterator()` creates (and drops) one more
    iterator of the same data, which advances the per-iterator random state
    of a `tf.data` pipeline (`shuffle(seed=...)` reshuffles per iterator), so
    a resumed run can catch up with the iterators an interrupted run made.

    Returns:
        A function that undoes the wrapping.
    """
    original = getattr(epoch_iterator, "_get_iterator", None)
    if not callable(original):
        raise missing("`EpochIterator._get_iterator`", "to count data iterators")

    def make_iterator():
        iter(original())

    def get_iterator():
        before_creation(make_iterator)
        return original()

    epoch_iterator._get_iterator = get_iterator

    def undo():
        if epoch_iterator.__dict__.get("_get_iterator") is get_iterator:
            del epoch_iterator._get_iterator

    return undo


def add_steps_seen(epoch_iterator, count: int) -> None:
    """Adds `count` to the batches `EpochIterator` believes it read.

    Reason: with `steps_per_epoch` set and finite data, `EpochIterator`
    counts the batches read from its iterator (`_steps_seen`) to start a new
    one when the data runs out. Batches a resumed run skips before the
    epoch's first step are read outside that count.
    """
    if not count:
        return
    if not hasattr(epoch_iterator, "_steps_seen"):
        raise missing("`EpochIterator._steps_seen`", "to position resumed data")
    epoch_iterator._steps_seen += count


# ----------------------------------------------------------------------
# The model's side of `fit()`
# ----------------------------------------------------------------------


def set_initial_epoch(model, epoch: int) -> None:
    """Makes the running `fit()` start at `epoch`.

    Reason: `fit()` reads `model._initial_epoch` after `on_train_begin`; it
    is how Keras's own `BackupAndRestore` resumes.
    """
    if not hasattr(model, "_initial_epoch"):
        raise missing("`Model._initial_epoch`", "to start `fit()` at an epoch")
    model._initial_epoch = epoch


def wrap_train_function(model, wrapper) -> None:
    """Replaces `model.train_function` by `wrapper(train_function)`.

    Reason: `fit()` calls `model.train_function(iterator)` once per
    `steps_per_execution` steps with the data iterator itself, after
    `make_train_function()` and before `on_train_begin`; wrapping it there
    lets a resumed run read the batches it skips instead of training on them.
    `unwrap_train_function` puts the original back.
    """
    function = getattr(model, "train_function", None)
    if not callable(function):
        raise missing(
            "`Model.train_function` set before `on_train_begin`",
            "to skip the batches a resumed run already trained",
        )
    function = getattr(function, "_keras_custom_wrapped", function)
    wrapped = wrapper(function)
    wrapped._keras_custom_wrapped = function
    model.train_function = wrapped


def unwrap_train_function(model) -> None:
    """Undoes `wrap_train_function`."""
    function = getattr(model, "train_function", None)
    original = getattr(function, "_keras_custom_wrapped", None)
    if original is not None:
        model.train_function = original


def next_batch(iterator):
    """Reads one batch from the iterator `fit()` gives `train_function`.

    Reason: the TensorFlow trainer passes the `tf.data` (or distributed)
    iterator itself; reading from it is what a step does first.
    """
    return next(iterator)
