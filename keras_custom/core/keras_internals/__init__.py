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
  dependency tracking switch, TensorFlow's op-determinism switch, and
  Keras's division of loss values by the replica count (switched off
  around the losses the core differentiates, `replica_mean_losses`).
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

import keras
import tensorflow as tf

#: The oldest and newest Keras minor versions CI tests (both included).
SUPPORTED_KERAS = ("3.12", "3.15")
#: The oldest and newest TensorFlow minor versions CI tests (both included).
SUPPORTED_TENSORFLOW = ("2.19", "2.21")


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


# The internals, by kind (imported after the helpers above, which they use).
from keras_custom.core.keras_internals.model_attributes import (  # noqa: E402
    TrainerHooks,
    attribute_metrics,
    autoconvert_optionals,
    call_takes_training,
    compiled_loss,
    compiled_metrics,
    creation_strategy,
    first_batch,
    flatten_layers,
    give_back_first_batch,
    loss_tracker,
    make_function,
    optimizer_built_on,
    seed_generators,
    set_loss_tracker,
    symbolic_build,
    unpickle_model,
    variable_key,
)
from keras_custom.core.keras_internals.modules import (  # noqa: E402
    _REPLICA_SCALING,
    CompileMetrics,
    DataAdapter,
    Functional,
    LossFunctionWrapper,
    _loss_module,
    _object_registration,
    _tf_config,
    _tracking,
    disable_op_determinism,
    functional_from_config,
    functional_init_arguments,
    in_multi_worker_mode,
    is_op_determinism_enabled,
    reduce_per_replica,
    register_under_name_of,
    replica_mean_losses,
    set_untracked,
)
from keras_custom.core.keras_internals.resume import (  # noqa: E402
    _epoch_iterator_class,
    add_steps_seen,
    data_adapter,
    epochs_share_iterator,
    next_batch,
    on_iterator_creation,
    record_epoch_iterator,
    set_initial_epoch,
    take_epoch_iterator,
    unwrap_train_function,
    wrap_train_function,
)

__all__ = [
    "add_steps_seen",
    "attribute_metrics",
    "autoconvert_optionals",
    "call_takes_training",
    "check",
    "compiled_loss",
    "compiled_metrics",
    "CompileMetrics",
    "creation_strategy",
    "data_adapter",
    "DataAdapter",
    "disable_op_determinism",
    "epochs_share_iterator",
    "first_batch",
    "flatten_layers",
    "Functional",
    "give_back_first_batch",
    "functional_from_config",
    "functional_init_arguments",
    "in_multi_worker_mode",
    "is_op_determinism_enabled",
    "loss_tracker",
    "LossFunctionWrapper",
    "make_function",
    "minor_version",
    "optimizer_built_on",
    "missing",
    "next_batch",
    "on_iterator_creation",
    "record_epoch_iterator",
    "reduce_per_replica",
    "register_under_name_of",
    "replica_mean_losses",
    "seed_generators",
    "set_initial_epoch",
    "set_loss_tracker",
    "set_untracked",
    "SUPPORTED_KERAS",
    "supported_range",
    "SUPPORTED_TENSORFLOW",
    "symbolic_build",
    "take_epoch_iterator",
    "TrainerHooks",
    "unpickle_model",
    "unsupported_versions",
    "unwrap_train_function",
    "variable_key",
    "wrap_train_function",
]


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
    on_jax = keras.backend.backend() == "jax"
    if not hasattr(_object_registration, "GLOBAL_CUSTOM_NAMES"):
        raise missing("`object_registration.GLOBAL_CUSTOM_NAMES`", "to save variants")
    for name in ("is_op_determinism_enabled", "disable_op_determinism"):
        if not callable(getattr(_tf_config, name, None)):
            raise missing(f"`tensorflow.python.framework.config.{name}`", "")
    if not callable(getattr(_tracking, "no_automatic_dependency_tracking", None)):
        raise missing("`tracking.no_automatic_dependency_tracking`", "")
    for name in _REPLICA_SCALING:
        if not callable(getattr(_loss_module, name, None)):
            raise missing(
                f"`keras.src.losses.loss.{name}`",
                "to compute losses as means over the replica's batch",
            )
    hooks = ("_make_function", "_symbolic_build")
    hooks += (
        ("_get_jax_state", "jax_state_sync") if on_jax else ("_maybe_symbolic_build",)
    )
    for name in hooks:
        if not callable(getattr(keras.Model, name, None)):
            raise missing(f"the trainer hook `Model.{name}`", "to override it")
    if not callable(getattr(keras.optimizers.SGD(), "_var_key", None)):
        raise missing("`Optimizer._var_key`", "to route gradients by variable")
    if not isinstance(
        getattr(keras.optimizers.SGD(), "_trainable_variables", None), list
    ):
        raise missing("`Optimizer._trainable_variables`", "to apply gradients on JAX")
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
        "_call_has_training_arg",
        "_seed_generators",
        "_initial_epoch",
        "train_function",
        *(("_jax_state_synced",) if on_jax else ("_distribute_strategy",)),
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
