"""Private attributes of a Keras model, and the trainer hooks `CustomModel` overrides.

Part of `keras_internals`: each name with its reason.
"""

import io

import keras

from keras_custom.core.keras_internals import missing, resume
from keras_custom.core.keras_internals.modules import set_untracked

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


def give_back_first_batch(epoch_iterator, batch) -> None:
    """Hands `first_batch`'s batch back to a data adapter that takes it.

    Reason: on JAX, `fit()` builds the model from a batch of a fresh
    iterator and then resets it (`EpochIterator.data_adapter` is an
    attribute of a private class). An experience dataset makes each batch
    from its environments when it is read, and a batch read only to build
    would be lost with its environment steps; its `give_back` keeps it for
    the first step, as `get_tf_dataset` does on TensorFlow.
    """
    adapter = getattr(epoch_iterator, "data_adapter", None)
    give_back = getattr(adapter, "give_back", None)
    if give_back is not None:
        give_back(batch)


def make_function(model, step_function):
    """Keras's train or test function of `step_function`, through the hook.

    Reason: Keras's `make_train_function` and `make_test_function` build
    their functions with `Model._make_function`, which `TrainerHooks`
    overrides; the core's own versions of those two build them the same way.
    """
    return model._make_function(step_function)


class TrainerHooks:
    """The private hooks of Keras's trainers that `CustomModel` overrides.

    A mixin placed before `keras.Model` in `CustomModel`'s bases. Each hook
    delegates to a method of the model whose name says what it does, so
    that the overrides of private hooks are here and nowhere else.
    """

    def _make_function(self, step_function, **kwargs):
        # Reason: the TensorFlow trainer builds the train and test functions
        # from a step here; the core replaces the single-step case by a
        # leaner function (`tensorflow_functions.one_step_function`). The
        # JAX trainer builds its predict function here (with
        # `concatenate_outputs`), kept as it is.
        return self._step_function(
            step_function, super()._make_function(step_function, **kwargs)
        )

    def _get_jax_state(
        self,
        trainable_variables=False,
        non_trainable_variables=False,
        optimizer_variables=False,
        metrics_variables=False,
        purge_model_variables=False,
    ):
        # Reason: Keras's JAX trainer reads the state it passes to the
        # train function here, with only `self.optimizer`'s variables;
        # a `CustomModel` step updates every optimizer it holds
        # (`_state_variables`). The values stay attached to the variables
        # (no purge), so code that reads them between steps, such as an
        # experience dataset choosing actions, sees the last synced ones.
        del purge_model_variables
        # Two variables may hold one array (a target network assigned its
        # online network's values); Keras's predict function donates its
        # state, and one buffer cannot be donated twice.
        seen = set()

        def value_of(variable):
            value = variable.value
            if id(value) in seen:
                return keras.ops.copy(value)
            seen.add(id(value))
            return value

        wanted = {
            "trainable_variables": trainable_variables,
            "non_trainable_variables": non_trainable_variables,
            "optimizer_variables": optimizer_variables,
            "metrics_variables": metrics_variables,
        }
        variables = self._state_variables()
        return tuple(
            [value_of(variable) for variable in variables[part]]
            for part, asked in wanted.items()
            if asked
        )

    def jax_state_sync(self):
        # Reason: Keras's JAX trainer writes the state its loop holds
        # (`_jax_state`, a private attribute) back to `self.optimizer`'s
        # variables only; here to the variables of `_get_jax_state`.
        if self._jax_state_synced:
            return
        if self.jax_state_read():
            self._jax_state_synced = True

    def jax_state_read(self) -> bool:
        # Reason: as `jax_state_sync`, but leaves `_jax_state_synced` as it
        # is. Code that reads the variables while Keras's JAX trainer is
        # inside a train function call (an experience dataset choosing
        # actions when the step fetches its batch) must not mark them
        # synced: the trainer would then start its next step from the
        # variables, which hold the state from before the step in flight,
        # and lose that step's update.
        state = getattr(self, "_jax_state", None)
        if not state:
            return False
        variables = self._state_variables()
        for part, values in state.items():
            for variable, value in zip(
                variables[part], values or (), strict=bool(values)
            ):
                variable.assign(value)
        return True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Reason: `fit()` calls it with its epoch iterator just before the
        # callbacks' `on_train_begin` (where `BackupAndRestore` finds the
        # data to resume), and under a strategy it builds the model from a
        # batch reduced across replicas, which fails on boolean data.
        resume.record_epoch_iterator(self, iterator)
        self._build_before_training(iterator, data_batch)

    def _symbolic_build(self, iterator=None, data_batch=None):
        # Reason: Keras builds `self.optimizer` on every trainable variable
        # here; each named optimizer is built on its own variables instead.
        data_batch = self._before_symbolic_build(iterator, data_batch)
        if data_batch is not None:
            iterator = None
        main_optimizer = getattr(self, "optimizer", None)
        set_untracked(self, "optimizer", None)
        failure = None
        try:
            super()._symbolic_build(iterator=iterator, data_batch=data_batch)
        except Exception as error:
            failure = error
        finally:
            set_untracked(self, "optimizer", main_optimizer)
        if failure is not None:
            # Outside the `except`, so the step's own error is not chained
            # to Keras's.
            self._explain_build_failure(data_batch, failure)
            raise failure
        self._after_symbolic_build()


def variable_key(optimizer, variable):
    """The key under which `optimizer` knows `variable`.

    Reason: under a distribution strategy a step sees each replica's
    component of a mirrored variable, and only the optimizer's own key
    (`Optimizer._var_key`) maps it back to the variable it was built on;
    Keras exposes no public key.
    """
    return optimizer._var_key(variable)


def optimizer_built_on(optimizer) -> list:
    """The variables `optimizer` was built on, in its order.

    Reason: `Optimizer.stateless_apply` (how Keras's JAX trainer applies
    gradients) takes one value per such variable, and Keras keeps the list
    only as `Optimizer._trainable_variables`.
    """
    return list(optimizer._trainable_variables)
