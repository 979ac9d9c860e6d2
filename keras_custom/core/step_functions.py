"""The train and test functions `fit()` and `evaluate()` call, and what runs first.

`CustomModel.make_train_function` and `make_test_function` wrap the
model's steps with its trackers; before `fit()`'s first step (under a
strategy, before any replica runs) every optimizer is built on its
variables.
"""

import keras

from keras_custom.core import (
    keras_internals,
    named_optimizers,
    optimizer_registry,
    tensorflow_backend,
    tensorflow_functions,
    trackers,
)


def train_function(model):
    """The model's train function: `train_step` with trackers, compiled."""
    optimizer_registry.build_all(model)
    return keras_internals.make_function(
        model,
        trackers.tracked_step(
            model,
            optimizer_registry.train_step_building_optimizers(model),
            "train_step",
        ),
    )


def test_function(model):
    """The model's test function: `test_step` with trackers, compiled."""
    return keras_internals.make_function(
        model, trackers.tracked_step(model, model.test_step, "test_step")
    )


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
        data_batch = tensorflow_backend.first_replica_part(
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
        return tensorflow_functions.one_step_function(
            self, step_function, keras_function
        )

    def _build_before_training(self, iterator, data_batch) -> None:
        """Builds the model and its optimizers first (`TrainerHooks`)."""
        build_before_training(self, iterator, data_batch)

    def _after_symbolic_build(self) -> None:
        """Builds each optimizer on its own variables (`TrainerHooks`)."""
        optimizer_registry.build_all(
            self, strict=tensorflow_backend.has_distribution_strategy()
        )
