"""The internals of an exact mid-epoch resume (`callbacks.BackupAndRestore`).

Part of `keras_internals`: each name with its reason.
"""

import weakref

from keras_custom.core.keras_internals import missing

_EPOCH_ITERATOR = "_keras_custom_epoch_iterator"

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
