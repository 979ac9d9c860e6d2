"""Private Keras and TensorFlow modules, and the switches they hold.

Part of `keras_internals`: each name with its reason.
"""

import contextlib
import threading

from keras_custom.core.keras_internals import _private

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
_loss_module = _private(
    "keras.src.losses",
    "loss",
    "to compute losses as means over the replica's batch",
)
_REPLICA_SCALING = ("scale_loss_for_distribution", "unscale_loss_for_distribution")
_replica_mean = threading.local()
_switch_lock = threading.Lock()


def _switchable(scaling):
    """`scaling`, skipped while `replica_mean_losses()` is active here."""

    def switchable(value):
        if getattr(_replica_mean, "depth", 0):
            return value
        return scaling(value)

    switchable.keras_custom_original = scaling
    return switchable


@contextlib.contextmanager
def replica_mean_losses():
    """A context in which Keras losses are means over this replica's batch.

    Under `tf.distribute`, Keras divides the value of every `Loss` object
    (and of the regularization losses its trainer sums) by the number of
    replicas, so that summing gradients over replicas averages them; a loss
    made with raw `ops.mean` is not divided. A step that mixes both cannot
    be corrected afterwards. Inside this context (entered by the core
    around the losses it differentiates and around test steps) neither is
    divided, and the core divides the total once.

    Reason: Keras's scaling (`keras.src.losses.loss.
    scale_loss_for_distribution`, and its inverse for logged loss terms)
    has no public switch. The two module functions are wrapped once, in
    place, by functions that defer to them outside the context; the context
    is per thread, as `MirroredStrategy` runs each replica in a thread of
    its own, so other threads and `keras.Model`s are untouched.
    """
    with _switch_lock:
        for name in _REPLICA_SCALING:
            scaling = getattr(_loss_module, name)
            if not hasattr(scaling, "keras_custom_original"):
                setattr(_loss_module, name, _switchable(scaling))
    _replica_mean.depth = getattr(_replica_mean, "depth", 0) + 1
    try:
        yield
    finally:
        _replica_mean.depth -= 1


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
