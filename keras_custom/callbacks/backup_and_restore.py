"""`BackupAndRestore`: resume an interrupted `fit()` exactly, mid-epoch included."""

import json
import os
import pickle
import shutil
import uuid
import warnings

import keras
import numpy as np

from keras_custom.core import (
    CustomModel,
    first_replica_part,
    keras_internals,
    optimizer_registry,
)

_WEIGHTS = "latest.weights.h5"
_METADATA = "training_metadata.json"
_STATE = "training_state.pkl"
_PREVIOUS = ".bkp"
_FORMAT = "keras_custom/1"


class _InconsistentCheckpoint(Exception):
    """The files of a checkpoint come from different saves."""


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up training and resumes it exactly, from the middle of an epoch too.

    A drop-in for `keras.callbacks.BackupAndRestore` with the same arguments
    and files. Keras's callback resumes at the start of the epoch it saved
    in, so with `save_freq=N` the batches of that epoch before the checkpoint
    are trained a second time, and a `tf.data` pipeline that reshuffles
    (`shuffle(seed=...)`) gives the resumed epoch another order than the
    uninterrupted run. This one records, with the weights, how far the epoch
    got and where its data stood, and a re-run of the same script:

    - starts at the epoch and batch after the last checkpoint: the batches
      the interrupted run trained before it are read past, not trained
      (callbacks still see their `on_train_batch_*` calls, with the restored
      running means as logs, so batch numbering and `save_freq` stay those
      of an uninterrupted run);
    - sees the data in the uninterrupted run's order, for NumPy arrays
      (with `shuffle=True` under `keras.utils.set_random_seed`) and for
      `tf.data` pipelines (`shuffle(seed=...)`, `repeat()` with
      `steps_per_epoch`); other inputs (Python generators,
      `keras.utils.PyDataset`) are read past the same way, which gives the
      same order when they yield the same batches in a new process;
    - restores the weights, every optimizer's state and step counter and the
      models' random-generator states (saved with the weights by
      `CustomModel`), and the running means of the epoch's metrics;
    - restores the state of an experience dataset built with
      `save_state=True` (`ReplayBufferDataset`, `RolloutDataset`): its replay
      buffer, environments, random generator and counters.

    With op determinism on (`tf.config.experimental.enable_op_determinism()`)
    and the same seeds, the resumed run ends with exactly the weights of an
    uninterrupted one. It needs a `keras_custom` model (a `CustomModel` or a
    subclass: they let it reach the data of the running `fit()`) and the
    TensorFlow backend. The files are written each to a temporary name and
    renamed; a checkpoint whose files come from different saves (a process
    killed between two of them) is refused, or replaced by the previous one
    with `double_checkpoint=True`. The state of an experience dataset and the
    metrics are stored with `pickle`: keep `backup_dir` as private as the
    code you run.

    Args:
        backup_dir: Local directory of the checkpoint, used by this run
            only.
        save_freq: `"epoch"` to save at the end of each epoch, or an integer
            `N` to save every `N` batches (counted across epochs, as Keras
            does).
        double_checkpoint: Whether to keep the previous checkpoint as well,
            to fall back on if the latest cannot be read.
        delete_checkpoint: Whether to delete the checkpoint when `fit()`
            completes.

    Example:

    ```python
    import tempfile

    import keras
    import numpy as np
    from keras_custom import CustomModel
    from keras_custom.callbacks import BackupAndRestore


    class InterruptAt(keras.callbacks.Callback):
        def __init__(self, epoch, batch):
            super().__init__()
            self.at, self.epoch = (epoch, batch), 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == self.at:
                raise RuntimeError("interrupted")


    def run(backup_dir, *callbacks):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        model = CustomModel(inputs, keras.layers.Dense(1)(inputs), loss="mse")
        model.compile(optimizer="adam")
        x, y = np.ones((64, 4)), np.ones((64, 1))
        backup = BackupAndRestore(backup_dir, save_freq=3)
        try:
            model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                      callbacks=[backup, *callbacks])
        except RuntimeError:
            pass
        return model


    uninterrupted = run(tempfile.mkdtemp())
    backup_dir = tempfile.mkdtemp()
    run(backup_dir, InterruptAt(1, 5))  # last saved after batch 3 of epoch 1
    resumed = run(backup_dir)  # trains from batch 4 of epoch 1 on
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    ```
    """

    def __init__(
        self,
        backup_dir: str,
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ):
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int)
        ):
            raise ValueError(
                '`save_freq` must be "epoch" or a positive integer. Got: '
                f"{save_freq!r}."
            )
        if isinstance(save_freq, int) and save_freq < 1:
            raise ValueError(f"`save_freq` must be positive. Got: {save_freq}.")
        super().__init__(
            backup_dir,
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "keras_custom's `BackupAndRestore` needs the TensorFlow "
                f"backend; the backend is {keras.backend.backend()!r}."
            )
        self._files = {
            "weights": os.path.join(backup_dir, _WEIGHTS),
            "metadata": os.path.join(backup_dir, _METADATA),
            "state": os.path.join(backup_dir, _STATE),
        }
        self._clear()

    def _clear(self) -> None:
        """Forgets the running `fit()`."""
        self._epoch_iterator = None
        self._adapter = None
        self._undo_iterator_hook = None
        self._created = 0  # data iterators created since `on_train_begin`
        self._catch_up_to = None
        self._iterator = None  # the iterator the last step read
        self._iterator_index = 0
        self._reads = 0
        self._epoch = 0
        self._batches_done = 0
        self._since_save = 0
        self._resume = None
        self._restored = False
        self._skip = 0
        self._skip_until = 0
        self._extra_reads = 0
        self._metrics_state = None

    # ------------------------------------------------------------------
    # fit() begins and ends
    # ------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        model = self.model
        if not model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, your model must be "
                f"built before you call `fit()`. Model {model.name} is "
                "unbuilt. You can build it beforehand by calling it on a "
                "batch of data."
            )
        self._clear()
        epoch_iterator = keras_internals.take_epoch_iterator(model)
        if epoch_iterator is None and isinstance(model, CustomModel):
            raise keras_internals.missing(
                "a call of `Model._maybe_symbolic_build(iterator=...)` in `fit()`",
                "to reach the data of `fit()`",
            )
        if epoch_iterator is None:
            raise ValueError(
                "keras_custom's `BackupAndRestore` needs a keras_custom model "
                "(`CustomModel` or a subclass) to reach the data of `fit()`; "
                f"got {type(model).__name__}. Use "
                "`keras.callbacks.BackupAndRestore(save_freq='epoch')` with "
                "other models."
            )
        self._epoch_iterator = epoch_iterator
        self._adapter = keras_internals.data_adapter(epoch_iterator)
        self._undo_iterator_hook = keras_internals.on_iterator_creation(
            epoch_iterator, self._before_iterator_creation
        )
        keras_internals.wrap_train_function(model, self._wrap)
        checkpoint = self._load()
        if checkpoint is not None:
            self._restore(*checkpoint)

    def on_train_end(self, logs=None):
        self._stop()
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    def _stop(self) -> None:
        keras_internals.unwrap_train_function(self.model)
        if self._restored:
            # Keras leaves it set, so a later `fit()` of the same model
            # would start at the resumed epoch again.
            keras_internals.set_initial_epoch(self.model, None)
        if self._undo_iterator_hook is not None:
            self._undo_iterator_hook()
        self._clear()

    # ------------------------------------------------------------------
    # Epochs and batches
    # ------------------------------------------------------------------

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._batches_done = epoch, 0
        self._skip = self._skip_until = self._extra_reads = 0
        self._metrics_state = None
        resume, self._resume = self._resume, None
        if resume is None or resume["epoch"] != epoch:
            return
        self._skip = self._skip_until = resume["batches_done"]
        if not self._stateful_data:
            self._extra_reads = max(resume["reads"] - resume["batches_done"], 0)
        self._metrics_state = resume["metrics"]

    def on_train_batch_end(self, batch, logs=None):
        previous, self._batches_done = self._batches_done, batch + 1
        if self._batches_done <= self._skip_until or self.save_freq == "epoch":
            return
        self._since_save += self._batches_done - previous
        if self._since_save >= self.save_freq:
            self._since_save = 0
            self._save(self._epoch, self._batches_done)

    def on_epoch_end(self, epoch, logs=None):
        self._skip_until = 0
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    # ------------------------------------------------------------------
    # The data of the running fit()
    # ------------------------------------------------------------------

    @property
    def _stateful_data(self) -> bool:
        """Whether the data is an experience dataset, whose own state (not
        a position in a stream) determines the batches to come."""
        adapter = self._adapter
        return callable(getattr(adapter, "get_state", None)) and callable(
            getattr(adapter, "set_state", None)
        )

    def _before_iterator_creation(self, make_iterator) -> None:
        self._created += 1
        target, self._catch_up_to = self._catch_up_to, None
        # A resumed run creates the iterators the interrupted run had
        # created before its current one, so that a `tf.data` pipeline that
        # reshuffles per iterator shuffles this epoch as that run did.
        while target is not None and self._created < target:
            make_iterator()
            self._created += 1

    def _read(self, iterator, count: int):
        batch = None
        for _ in range(count):
            batch = keras_internals.next_batch(iterator)
        self._reads += count
        return batch

    def _wrap(self, train_function):
        def resumable_train_function(iterator):
            if iterator is not self._iterator:
                # Created last: `fit()` creates an iterator just before use.
                self._iterator, self._iterator_index = iterator, self._created
                self._reads = 0
            if self._extra_reads:
                # An iterator continued across epochs (`steps_per_epoch`):
                # the batches earlier epochs read from it.
                count, self._extra_reads = self._extra_reads, 0
                self._read(iterator, count)
                keras_internals.add_steps_seen(self._epoch_iterator, count)
            if self._skip > 0:
                count = min(self._skip, self.model.steps_per_execution)
                self._skip -= count
                batch = self._read(iterator, 0 if self._stateful_data else count)
                if self._metrics_state is not None:
                    self._restore_metrics(self._metrics_state, batch)
                    self._metrics_state = None
                return self.model.get_metrics_result()
            logs = train_function(iterator)
            self._reads += self.model.steps_per_execution
            return logs

        return resumable_train_function

    def _position(self, batches_done: int) -> tuple[int, int]:
        """`(iterator, reads)`: which data iterator (counted from 1 since
        `on_train_begin`) the next batch comes from, and how many batches
        were read from it before."""
        if batches_done:
            return self._iterator_index, self._reads
        if keras_internals.epochs_share_iterator(self._epoch_iterator):
            latest = self._created
            continued = self._iterator_index == latest
            return latest, self._reads if continued else 0
        return self._created + 1, 0

    # ------------------------------------------------------------------
    # Metrics
    # ------------------------------------------------------------------

    def _metric_values(self) -> list:
        return [
            (metric.name, [np.array(v) for v in metric.variables])
            for metric in self.model.metrics
        ]

    def _restore_metrics(self, saved: list, batch) -> None:
        model = self.model

        def unmatched():
            current = {metric.name: metric for metric in model.metrics}
            return [
                name
                for name, values in saved
                if name not in current or len(current[name].variables) != len(values)
            ]

        if unmatched() and batch is not None:
            # Compiled metrics are built in the first step; build them now.
            with model.distribute_strategy.scope():
                keras_internals.symbolic_build(
                    model,
                    first_replica_part(batch, model.distribute_strategy),
                )
        if callable(getattr(model, "add_tracker", None)):
            current = {metric.name for metric in model.metrics}
            for name, values in saved:
                # A tracker the step creates when it first logs the name.
                if name not in current and len(values) == 2:
                    model.add_tracker(name)
        missing = unmatched()
        if missing:
            warnings.warn(
                f"`BackupAndRestore` could not restore the running values of "
                f"the metrics {missing}: the resumed epoch's logs of them "
                "count only the batches trained after the restart.",
                stacklevel=2,
            )
        values = dict(saved)
        for metric in model.metrics:
            if metric.name in missing or metric.name not in values:
                continue
            for variable, value in zip(
                metric.variables, values[metric.name], strict=True
            ):
                variable.assign(value)

    # ------------------------------------------------------------------
    # Saving and loading
    # ------------------------------------------------------------------

    def _optimizer_steps(self) -> int:
        optimizers = getattr(self.model, "optimizers", None)
        if not isinstance(optimizers, dict):
            optimizer = getattr(self.model, "optimizer", None)
            optimizers = {} if optimizer is None else {"optimizer": optimizer}
        return sum(
            int(keras.ops.convert_to_numpy(optimizer.iterations))
            for optimizer in optimizers.values()
        )

    def _save(self, epoch: int, batches_done: int) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in self._files.values():
                if os.path.exists(path):
                    _copy(path, path + _PREVIOUS)
        iterator, reads = self._position(batches_done)
        data = None
        if self._stateful_data and getattr(self._adapter, "save_state", False):
            data = self._adapter.get_state()
        token = uuid.uuid4().hex
        state = {
            "checkpoint": token,
            "metrics": self._metric_values() if batches_done else None,
            "data": data,
        }
        metadata = {
            # Keras's keys: its own `BackupAndRestore` reads "epoch".
            "epoch": epoch,
            "batch": max(batches_done - 1, 0),
            "format": _FORMAT,
            "batches_done": batches_done,
            "iterator": iterator,
            "reads": reads,
            "iterations": self._optimizer_steps(),
            "checkpoint": token,
        }
        temporary = os.path.join(self.backup_dir, "saving." + _WEIGHTS)
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, self._files["weights"])
        _write(self._files["state"], pickle.dumps(state, protocol=5))
        _write(self._files["metadata"], json.dumps(metadata).encode())

    def _load(self):
        """`(metadata, state)` of the latest readable checkpoint, or None."""
        try:
            return self._read_checkpoint()
        except (OSError, _InconsistentCheckpoint) as error:
            previous = self._files["weights"] + _PREVIOUS
            if not os.path.exists(previous):
                if isinstance(error, OSError):
                    raise
                raise ValueError(
                    f"The checkpoint in {self.backup_dir!r} is incomplete "
                    f"({error}); training was probably killed while saving "
                    "it. Delete the directory to start over, or use "
                    "`double_checkpoint=True` to keep the previous one."
                ) from error
            for path in self._files.values():
                if os.path.exists(path + _PREVIOUS):
                    _copy(path + _PREVIOUS, path)
                elif os.path.exists(path):
                    os.remove(path)
            return self._read_checkpoint()

    def _read_checkpoint(self):
        files = self._files
        if not os.path.exists(files["weights"]):
            return None
        if isinstance(self.model, CustomModel):
            optimizer_registry.build_all(self.model)
        elif self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(files["weights"])
        if not os.path.exists(files["metadata"]):
            return None
        with open(files["metadata"]) as file:
            metadata = json.load(file)
        if metadata.get("format") != _FORMAT:
            # Written by `keras.callbacks.BackupAndRestore`: the epoch's start.
            return {"epoch": int(metadata["epoch"]), "batches_done": 0}, {}
        state = {}
        if os.path.exists(files["state"]):
            with open(files["state"], "rb") as file:
                state = pickle.load(file)
        if state.get("checkpoint") != metadata["checkpoint"]:
            raise _InconsistentCheckpoint("its state file is from another save")
        if self._optimizer_steps() != metadata["iterations"]:
            raise _InconsistentCheckpoint("its weights are from another save")
        return metadata, state

    def _restore(self, metadata: dict, state: dict) -> None:
        keras_internals.set_initial_epoch(self.model, metadata["epoch"])
        self._restored = True
        self._resume = {
            "epoch": metadata["epoch"],
            "batches_done": metadata["batches_done"],
            "reads": metadata.get("reads", 0),
            "metrics": state.get("metrics"),
        }
        if self._stateful_data:
            if state.get("data") is not None:
                self._adapter.set_state(state["data"])
            else:
                warnings.warn(
                    f"The experience dataset {type(self._adapter).__name__} "
                    "was not saved with the checkpoint (build it with "
                    "`save_state=True`): the resumed run collects experience "
                    "from where this process's dataset stands, and differs "
                    "from an uninterrupted run.",
                    stacklevel=2,
                )
        elif "iterator" in metadata:
            self._catch_up_to = metadata["iterator"]


def _write(path: str, content: bytes) -> None:
    temporary = path + ".saving"
    with open(temporary, "wb") as file:
        file.write(content)
    os.replace(temporary, path)


def _copy(source: str, destination: str) -> None:
    temporary = destination + ".saving"
    shutil.copyfile(source, temporary)
    os.replace(temporary, destination)
