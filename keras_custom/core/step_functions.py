"""The train and test functions `fit()` and `evaluate()` call, and what runs first.

`CustomModel.make_train_function` and `make_test_function` wrap the
model's steps with its trackers; before `fit()`'s first step (under a
strategy, before any replica runs) every optimizer is built on its
variables.
"""

import keras

from keras_custom.core import (
    backend,
    default_steps,
    keras_internals,
    named_optimizers,
    optimizer_registry,
    trackers,
)


def train_function(model):
    """The model's train function: `train_step` with trackers, compiled."""
    optimizer_registry.build_all(model)
    return backend.step_function(
        model,
        trackers.tracked_step(
            model,
            optimizer_registry.train_step_building_optimizers(model),
            "train_step",
        ),
        "train",
    )


def test_function(model):
    """The model's test function: `test_step` with trackers, compiled."""
    return backend.step_function(
        model, trackers.tracked_step(model, model.test_step, "test_step"), "test"
    )


def state_variables(model) -> dict[str, list]:
    """The variables a step may read or assign, by part of Keras's JAX state.

    Keras's JAX trainer passes the values of the trainable, non-trainable,
    `self.optimizer`'s and metrics' variables to the train function; a
    `CustomModel` step also updates the optimizers it holds by name or as
    attributes, so all of theirs are the optimizer part. No variable is in
    two parts.
    """
    optimizers = [getattr(model, "optimizer", None)]
    optimizers += optimizer_registry.by_name(model).values()
    optimizers += optimizer_registry.attribute_optimizers(model).values()
    parts = {
        "trainable_variables": list(model.trainable_variables),
        "non_trainable_variables": list(model.non_trainable_variables),
        "optimizer_variables": [
            variable
            for optimizer in optimizers
            if optimizer is not None
            for variable in optimizer.variables
        ],
        "metrics_variables": list(model.metrics_variables),
    }
    seen = set()
    for name, variables in parts.items():
        unique = []
        for variable in variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                unique.append(variable)
        parts[name] = unique
    return parts


def build_before_training(model, iterator, data_batch) -> None:
    """Builds the model and its optimizers before `fit()`'s first step.

    Under a strategy Keras reduces a distributed sample batch to its mean
    across replicas, eagerly, only to read its shapes: that fails on
    boolean data (terminal flags) and across workers. One replica's part
    has the same shapes.
    """
    if keras_internals.creation_strategy(model) is None:
        return
    if iterator is not None:
        data_batch = backend.first_replica_part(
            keras_internals.first_batch(iterator), model.distribute_strategy
        )
    # Before the first step runs in a replica context, a model without
    # `call` is built where Keras would call it, and the optimizers held as
    # attributes are built on their variables.
    if (
        data_batch is not None
        and type(model).call is keras.Model.call
        and not all(layer.built for layer in model.layers)
    ):
        with model.distribute_strategy.scope():
            # Its layers left unbuilt are built by a symbolic run of its
            # step, mirrored, as Keras's symbolic build does with `call`.
            named_optimizers.applied_variables(
                model.train_step,
                data_batch,
                optimizer_registry.attribute_optimizers(model),
            )
    if data_batch is not None:
        # Outside the scope, where TensorFlow takes gradients of mirrored
        # variables; the optimizers are built under it. Before the symbolic
        # build, which builds `self.optimizer` on the variables they leave.
        optimizer_registry.find_attribute_optimizer_variables(model, data_batch)
    with model.distribute_strategy.scope():
        optimizer_registry.build_without_call(model)
        keras_internals.symbolic_build(model, data_batch)


class FitFunctions:
    """`CustomModel`'s overrides of the functions `fit()` and `evaluate()` call.

    A mixin before `keras.Model` in `CustomModel`'s bases; three of its
    methods are the hooks `keras_internals.TrainerHooks` calls.
    """

    def make_train_function(self, force=False):
        if self.train_function is None or force:
            self.train_function = train_function(self)
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is None or force:
            self.test_function = test_function(self)
        return self.test_function

    def _step_function(self, step_function, keras_function):
        """The train or test function `fit()` calls (`TrainerHooks`)."""
        return backend.one_step_function(self, step_function, keras_function)

    def _state_variables(self) -> dict[str, list]:
        """The model's state on JAX, by part (`TrainerHooks`)."""
        return state_variables(self)

    def _build_before_training(self, iterator, data_batch) -> None:
        """Builds the model and its optimizers first (`TrainerHooks`)."""
        build_before_training(self, iterator, data_batch)

    def _before_symbolic_build(self, iterator, data_batch):
        """The batch to build from, its labels checked first (`TrainerHooks`).

        Keras's symbolic build on JAX fails on a batch without labels with
        "None is not a valid value for jnp.array", before the default step
        could say that its loss needs labels.
        """
        if backend.NAME != "jax":
            return data_batch
        if data_batch is None and iterator is not None:
            data_batch = keras_internals.first_batch(iterator)
            keras_internals.give_back_first_batch(iterator, data_batch)
        if data_batch is not None and default_steps.uses_default(self, "train_step"):
            _, y, _ = keras.utils.unpack_x_y_sample_weight(data_batch)
            default_steps.check_loss_inputs(self, y, "train_step")
        return data_batch

    def _explain_build_failure(self, data_batch, error) -> None:
        """Raises the step's own error on a batch Keras's build failed on.

        On JAX Keras builds the model by calling it on the first batch
        before any step runs, so a batch of the wrong shape fails inside a
        layer; the step, run symbolically, says what it expects.
        """
        if backend.NAME != "jax" or data_batch is None:
            return
        _, step_error = named_optimizers.applied_variables(
            self.train_step, data_batch, {}
        )
        # Keras wraps what the step raised in its own message: the step's
        # is the innermost.
        own = None
        while step_error is not None:
            if isinstance(step_error, ValueError):
                own = step_error
            step_error = step_error.__cause__ or step_error.__context__
        if own is not None:
            raise own from error

    def _after_symbolic_build(self) -> None:
        """Builds each optimizer on its own variables (`TrainerHooks`)."""
        optimizer_registry.build_all(self, strict=backend.has_distribution_strategy())
