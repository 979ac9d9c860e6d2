"""`compile()` and the model's configuration: what `load_model` needs to train on.

`get_compile_config` records every named optimizer and, for a subclass
with a `compile` of its own (the Keras guide's GAN), the arguments of its
last call, so that `compile_from_config` compiles a loaded model the same
way and builds every optimizer before Keras loads its state.
"""

import functools
import inspect
import warnings
from collections.abc import Callable

import keras

from keras_custom.core import (
    backend,
    named_optimizers,
    optimizer_registry,
    trackers,
)
from keras_custom.core import functional as functional_lib

# Keys of `get_compile_config()` beside `keras.Model.compile`'s arguments.
_COMPILE_CALL_KEY = "compile_call"
_ATTRIBUTE_OPTIMIZERS_KEY = "attribute_optimizer_variables"


def recording_compile(compile_method: Callable) -> Callable:
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


def compile_model(model, keras_compile: Callable, loss, arguments: dict) -> None:
    """Compiles with Keras (`keras_compile`), keeping the model's loss.

    The optimizers were set first (`optimizer_registry.set_compiled`), each
    loss-scaled as needed, so Keras is told not to scale `self.optimizer`
    again. Without `call` there are no predictions for a loss to compare:
    the guide's GAN sets `self.loss_fn` for its own step, and a second
    `compile()` must not make Keras build the loss by calling the model.
    """
    auto_scale_loss = arguments.pop("auto_scale_loss")
    if loss is None and type(model).call is not keras.Model.call:
        loss = model.loss if model.loss is not None else getattr(model, "loss_fn", None)
    arguments = {"loss": loss, **arguments}
    # Under the model's strategy, so Keras's loss tracker and compiled
    # metrics are mirrored as the trackers are.
    with backend.strategy_scope(model):
        keras_compile(optimizer=model.optimizer, auto_scale_loss=False, **arguments)
    trackers.share_loss_tracker(model)
    model._set_untracked(
        "_compile_arguments", {**arguments, "auto_scale_loss": auto_scale_loss}
    )
    optimizer_registry.build_all(model)


def compile_config(model) -> dict:
    """`get_compile_config`: the `compile()` arguments and every optimizer."""
    if not model.compiled:
        return {}
    config = dict(model._compile_arguments)
    config.update(model.optimizers)
    config = keras.saving.serialize_keras_object(config)
    own = {}
    call = getattr(model, "_compile_call", None)
    if call is not None:
        own[_COMPILE_CALL_KEY] = keras.saving.serialize_keras_object(call)
    attributes = optimizer_registry.attribute_optimizers(model)
    positions = {}
    for name, variables in model._attribute_optimizer_variables.items():
        if variables and name in attributes:
            indices = named_optimizers.variable_indices(
                model.trainable_variables, variables
            )
            if indices is not None:
                positions[name] = indices
    if positions:
        own[_ATTRIBUTE_OPTIMIZERS_KEY] = positions
    return {**config, **own}


def compile_from_config(model, config: dict) -> None:
    """Compiles from `compile_config()` and builds every optimizer.

    A subclass with a `compile` of its own is compiled by it, with the
    arguments of its last call; optimizers it holds as attributes are built
    on the variables they updated, so that their saved state loads (Keras
    loads the state of built optimizers only).
    """
    config = dict(config)
    call = config.pop(_COMPILE_CALL_KEY, None)
    positions = config.pop(_ATTRIBUTE_OPTIMIZERS_KEY, None) or {}
    if call is None:
        model.compile(**keras.saving.deserialize_keras_object(config))
    else:
        args, kwargs = _call_arguments(
            model.compile, keras.saving.deserialize_keras_object(call)
        )
        model.compile(*args, **kwargs)
    for name, indices in positions.items():
        variables = named_optimizers.variables_at(model.trainable_variables, indices)
        if variables is None:
            warnings.warn(
                f"Optimizer '{name}' of model '{model.name}' was saved for the "
                f"trainable variables at {indices}, which this model does not "
                "have; its saved state is not loaded.",
                stacklevel=3,
            )
            continue
        model._attribute_optimizer_variables[name] = variables
    optimizer_registry.build_attribute_optimizers(model)


def model_config(model, keras_config: dict) -> dict:
    """`get_config`: Keras's config with every optimizer and the loss."""
    config = dict(keras_config)
    for name in model._optimizer_slots:
        optimizer = getattr(model, name, None)
        config[name] = (
            None
            if optimizer is None
            else keras.saving.serialize_keras_object(optimizer)
        )
    config["loss"] = keras.saving.serialize_keras_object(model.loss)
    return config


def _is_serialized_object(value) -> bool:
    return isinstance(value, dict) and {"class_name", "config"} <= set(value)


def deserialized_arguments(config: dict, custom_objects) -> dict:
    """`config` with each serialized Keras object deserialized.

    A subclass's `get_config` serializes its sub-models (and optimizers,
    losses, schedules) with `keras.saving.serialize_keras_object`; Keras
    gives a subclass's constructor its config as it is.
    """
    return {
        key: keras.saving.deserialize_keras_object(value, custom_objects=custom_objects)
        if _is_serialized_object(value)
        else value
        for key, value in config.items()
    }


def _accepts_name(cls) -> bool:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return any(
        p.name == "name" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def functional_from_config(cls, config: dict, custom_objects):
    """A functional subclass whose `__init__(inputs, outputs)` takes no `name`.

    Keras's loader passes `name`; `None` when `cls` takes it (Keras loads it).
    """
    if not functional_lib.is_functional_config(config) or _accepts_name(cls):
        return None

    def construct(inputs, outputs, name=None, trainable=None, **extra):
        model = cls(inputs, outputs)
        model.name = name or model.name
        if trainable is not None:
            model.trainable = trainable
        return model

    return functional_lib.functional_from_config(
        construct, dict(config), custom_objects=custom_objects
    )
