"""One `keras.metrics.Mean` per scalar a training step logs."""

import functools
import threading
from collections.abc import Callable, Iterable, Mapping

import keras
from keras import ops

from keras_custom.core import backend, keras_internals


class Trackers:
    """The named `Mean` trackers of a model, and the logs a step reports.

    A step returns a dict of named batch values (`{"d_loss": ..., "g_loss":
    ...}`). Each value whose name is not one of the model's own metrics is
    averaged over the epoch by a `Mean` tracker of that name, weighted by the
    batch size as Keras weights its own loss, so `fit()` epoch logs and
    `evaluate()` are means over all batches, not the last one.

    Args:
        owner_name: Name of the owning model, used in error messages.
    """

    def __init__(self, owner_name: str):
        self.owner_name = owner_name
        self._by_name: dict[str, keras.metrics.Mean] = {}
        # Names of the trackers a step updated itself while it was traced,
        # per thread: `MirroredStrategy` traces each replica's step in a
        # thread of its own.
        self._tracing = threading.local()
        # Names the traced steps logged.
        self._logged: set[str] = set()

    @property
    def _updated_by_step(self) -> set[str]:
        return self._tracing.__dict__.setdefault("updated", set())

    def unused(self, name: str) -> bool:
        """Whether steps have been traced and none logged `name`."""
        return bool(self._logged) and name not in self._logged

    def _watch(self, tracker: keras.metrics.Mean) -> keras.metrics.Mean:
        """Notes, when a step is traced, whether it updates `tracker` itself.

        A step written as the Keras guide's updates the model's metrics and
        returns their results (`{m.name: m.result() for m in
        self.metrics}`); such a value is logged as it is, not averaged again.
        """
        if getattr(tracker, "_keras_custom_watched", False):
            return tracker
        update_state = tracker.update_state

        def watched_update_state(*args, **kwargs):
            self._updated_by_step.add(tracker.name)
            return update_state(*args, **kwargs)

        tracker.update_state = watched_update_state
        tracker._keras_custom_watched = True
        return tracker

    def begin_step(self) -> None:
        """Called before a step runs (is traced): forget what earlier ones did."""
        self._updated_by_step.clear()

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def excluding(self, metrics) -> list:
        """The metrics of `metrics` that are not trackers of this set."""
        ids = {id(tracker) for tracker in self._by_name.values()}
        return [metric for metric in metrics if id(metric) not in ids]

    def adopt(self, tracker: keras.metrics.Mean) -> keras.metrics.Mean:
        """Makes an existing `Mean` the tracker of its name; returns it.

        The core adopts Keras's own loss tracker as the tracker of `"loss"`,
        so that `model.metrics[0]` is that tracker, as in Keras.
        """
        self._by_name[tracker.name] = self._watch(tracker)
        return tracker

    def get(self, name: str) -> keras.metrics.Mean | None:
        """The tracker of `name`, or `None`."""
        return self._by_name.get(name)

    def add(self, name: str) -> keras.metrics.Mean:
        """Returns the tracker of `name`, creating it if needed."""
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"A tracker name must be a non-empty string. Got: {name!r}"
            )
        if name not in self._by_name:
            self._by_name[name] = self._watch(keras.metrics.Mean(name=name))
        return self._by_name[name]

    def record(
        self,
        logs: Mapping,
        batch_size,
        passthrough: Iterable[str],
        step_name: str,
    ) -> dict:
        """Updates the trackers with one step's logs; returns the epoch means.

        Args:
            logs: What the step returned.
            batch_size: Number of samples in the step's batch (the weight).
            passthrough: Names whose values are already aggregated results
                of the model's own metrics; they are returned unchanged.
            step_name: `"train_step"` or `"test_step"`, for messages.
        """
        if not isinstance(logs, Mapping) or not logs:
            raise ValueError(
                f"`{step_name}` of model '{self.owner_name}' must return a "
                "non-empty dict of named scalars, such as "
                f"{{'loss': loss}}. Got: {logs!r}"
            )
        passthrough = set(passthrough) | self._updated_by_step
        self._logged.update(logs)
        weight = ops.cast(batch_size, "float32")
        results = {}
        for name, value in logs.items():
            if isinstance(value, Mapping):
                # Results of a metric with several values, such as the
                # compiled metrics (`{"compile_metrics": {"mae": ...}}`, as
                # the Keras guide's steps return): Keras flattens them.
                results.update(value)
                continue
            if name in passthrough:
                results[name] = value
                continue
            tracker = self._by_name.get(name)
            if tracker is None:
                tracker = self._add_during_step(name, step_name)
            tracker.update_state(value, sample_weight=weight)
            results[name] = tracker.result()
        return results

    def _add_during_step(self, name: str, step_name: str) -> keras.metrics.Mean:
        if backend.has_distribution_strategy():
            raise ValueError(
                f"`{step_name}` of model '{self.owner_name}' logged '{name}', "
                "which has no tracker. Under a distribution strategy every "
                "tracker must exist before training: call "
                f"`self.add_tracker('{name}')` in `__init__`."
            )
        with backend.outside_step():
            return self.add(name)

    def reset(self) -> None:
        for tracker in self._by_name.values():
            tracker.reset_state()


# ----------------------------------------------------------------------
# The trackers of a `CustomModel`, among Keras's metrics
# ----------------------------------------------------------------------


def model_metrics(model, keras_metrics: list) -> list:
    """`model.metrics`: the trackers, then Keras's metrics (`keras_metrics`).

    As in Keras, the first is the loss tracker when the model logs
    `"loss"`; Keras's loss tracker is left out when the model's steps log
    other names only (it would log a `loss` of 0).
    """
    keras_loss_tracker = keras_internals.loss_tracker(model)
    trackers = list(model._trackers)
    loss_tracker = model._trackers.get("loss")
    if loss_tracker is not None:
        trackers.remove(loss_tracker)
        # Keras's tracker, taken before the steps were known, is left out
        # once they turn out to log other names only.
        if not (loss_tracker is keras_loss_tracker and model._trackers.unused("loss")):
            trackers.insert(0, loss_tracker)
    others = [m for m in keras_metrics if m is not keras_loss_tracker]
    return trackers + model._trackers.excluding(others)


def share_loss_tracker(model) -> None:
    """Makes the tracker of `"loss"` and Keras's loss tracker one object.

    Keras lists its loss tracker first in `metrics`; a model that logs
    `"loss"` keeps its own tracker there, and a model with no tracker yet
    (Keras's supervised step, or a step of the Keras guide that updates
    `self.metrics` itself) takes Keras's as its tracker of `"loss"`.
    """
    own = model._trackers.get("loss")
    if own is not None:
        keras_internals.set_loss_tracker(model, own)
    elif not len(model._trackers) and "loss" not in metric_names(model):
        model._trackers.adopt(keras_internals.loss_tracker(model))


def metric_names(model) -> set:
    """Names of the model's metrics other than the core's trackers."""
    names = set()
    for metric in model._trackers.excluding(model.metrics):
        if isinstance(metric, keras_internals.CompileMetrics):
            names.update(m.name for m in metric.metrics)
        else:
            names.add(metric.name)
    return names


def metric_results(model) -> dict:
    """The results of the model's metrics other than the core's trackers."""
    results = {}
    for metric in model._trackers.excluding(model.metrics):
        result = metric.result()
        if isinstance(result, dict):
            results.update(result)
        else:
            results[metric.name] = result
    return results


def tracked_step(model, step: Callable, step_name: str) -> Callable:
    """`step`, its logs recorded by the model's trackers.

    A test step runs with Keras losses computed as means over the replica's
    batch (`keras_internals.replica_mean_losses`), as the losses `minimize`
    differentiates are, so that what it logs does not depend on the number
    of replicas.
    """

    @functools.wraps(step)
    def step_with_trackers(data):
        # Unpacked before the step, so a batch of the wrong structure fails
        # with Keras's message, not inside a step of the user's.
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        model._trackers.begin_step()
        if step_name == "test_step":
            with keras_internals.replica_mean_losses():
                logs = step(data)
        else:
            logs = step(data)
        first = next((t for t in keras.tree.flatten(x) if t is not None), None)
        batch_size = 1 if first is None else ops.shape(first)[0]
        return model._trackers.record(logs, batch_size, metric_names(model), step_name)

    return step_with_trackers
