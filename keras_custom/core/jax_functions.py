"""The compiled JAX functions of keras_custom: a stateful step made stateless.

Keras's JAX trainer calls `train_function(state, iterator)` with the
values of the model's variables and expects `(logs, state)` back; a
`CustomModel` step is written as on TensorFlow, reading and assigning
variables. Here the step runs in a `jax_backend.StateScope` mapping every
variable of the state to its value, and what it assigned is collected
into the state it returns, all under one `jax.jit`.

The state is the model's (`CustomModel._state_variables`): its trainable
and non-trainable variables (seed generators included), the variables of
every optimizer it holds (Keras's trainer knows only `self.optimizer`)
and those of its metrics and trackers.
"""

from collections.abc import Callable, Sequence

import jax
import keras

from keras_custom.core import jax_backend
from keras_custom.core.tensorflow_functions import unbuffered_dataset

__all__ = [
    "inference_function",
    "one_step_function",
    "read_state",
    "step_function",
    "unbuffered_dataset",
]

TRAIN_PARTS = (
    "trainable_variables",
    "non_trainable_variables",
    "optimizer_variables",
    "metrics_variables",
)
TEST_PARTS = ("trainable_variables", "non_trainable_variables", "metrics_variables")


def read_state(model, parts: Sequence[str]) -> tuple:
    """The values of the model's state `parts`, one list per part."""
    variables = model._state_variables()
    return tuple([variable.value for variable in variables[part]] for part in parts)


def _flat_variables(model, parts) -> list:
    variables = model._state_variables()
    return [variable for part in parts for variable in variables[part]]


def _initialize_created_variables() -> None:
    """Initializes the variables a traced step created, outside the trace.

    Keras defers a variable created in a stateless scope and initializes it
    when the outermost scope exits; the step's scope does not (it exits
    inside the trace), so an empty outermost scope does it here.
    """
    with keras.StatelessScope():
        pass


def _stateless(model, step: Callable, parts: Sequence[str]):
    """`step(data)` as a function `(state, data) -> (logs, state)`."""

    def stateless_step(state, data):
        variables = _flat_variables(model, parts)
        values = [value for part in state for value in part]
        if len(values) != len(variables):
            raise RuntimeError(
                f"Model '{model.name}': the state passed to its step has "
                f"{len(values)} values for {len(variables)} variables."
            )
        with jax_backend.state_scope(
            list(zip(variables, values, strict=True))
        ) as scope:
            logs = step(data)
        known = {id(variable) for variable in variables}
        unknown = [v for v, _ in scope.updated_values() if id(v) not in known]
        if unknown:
            raise ValueError(
                f"A step of model '{model.name}' assigned "
                f"{[v.path for v in unknown]}, which the model does not track, "
                "so on JAX the update would be lost. Make the layer or metric "
                "owning it an attribute of the model (or of one of its layers)."
            )
        new_state = []
        for part in parts:
            part_variables = model._state_variables()[part]
            new_state.append([scope.get_current_value(v) for v in part_variables])
        return logs, tuple(new_state)

    return stateless_step


def _discover_created_variables(model, stateless_step, state, data, parts):
    """Traces the step abstractly until it creates no more variables.

    A step may create what it needs the first time it runs (a tracker for
    a name it logs, an optimizer built at its first `apply`, a layer of a
    model without `call`); those become part of the state.
    """
    for _ in range(3):
        before = {id(v) for v in _flat_variables(model, parts)}
        jax.eval_shape(stateless_step, state, data)
        _initialize_created_variables()
        if {id(v) for v in _flat_variables(model, parts)} == before:
            return state
        state = read_state(model, parts)
    return state


def _shardings(model, parts):
    """The state's shardings under a distribution (as Keras's trainer keeps them)."""
    if keras.distribution.distribution() is None:
        return None
    variables = model._state_variables()
    return (
        None,
        tuple(
            [variable.value.sharding for variable in variables[part]] for part in parts
        ),
    )


def _jit_wanted(model) -> bool:
    """Whether the step runs under `jax.jit`: unless `jit_compile=False` was asked.

    Keras resolves `jit_compile="auto"` to False when a layer has
    `supports_jit = False`, which image augmentation layers
    (`RandomTranslation`, `RandomZoom`) set for TensorFlow's XLA; on JAX
    they compile, and the self-supervised models' augmenters would
    otherwise run op by op, ten times slower.
    """
    if model.jit_compile:
        return True
    arguments = getattr(model, "_compile_arguments", {})
    return arguments.get("jit_compile", "auto") == "auto"


def step_function(model, step: Callable, kind: str) -> Callable:
    """The train (`kind="train"`) or test function `fit()` calls.

    Args:
        model: The `CustomModel`.
        step: Its train or test step with trackers, `step(data) -> logs`.
        kind: `"train"` or `"test"`, which fixes the parts of the state.

    Returns:
        `function(state, iterator) -> (logs, state)`, running
        `steps_per_execution` steps.
    """
    parts = TRAIN_PARTS if kind == "train" else TEST_PARTS
    stateless_step = _stateless(model, step, parts)
    compiled = {}

    def compiled_step():
        if "step" not in compiled:
            if model.run_eagerly or not _jit_wanted(model):
                compiled["step"] = stateless_step
            else:
                compiled["step"] = jax.jit(
                    stateless_step, out_shardings=_shardings(model, parts)
                )
        return compiled["step"]

    def function(state, iterator):
        data = next(iterator)
        if "step" not in compiled:
            state = _discover_created_variables(
                model, stateless_step, state, data, parts
            )
        step_fn = compiled_step()
        logs, state = step_fn(state, data)
        for _ in range(model.steps_per_execution - 1):
            try:
                data = next(iterator)
            except StopIteration:
                break
            logs, state = step_fn(state, data)
        return logs, state

    return function


def one_step_function(model, step_function, keras_function):
    """Keras's own function: on JAX the core's functions are `step_function`."""
    del model, step_function
    return keras_function


def inference_function(fn: Callable, model=None) -> Callable:
    """`fn` compiled once (per input shapes), returning NumPy arrays.

    For the many small forward passes that run outside `fit()`'s steps,
    such as choosing actions while an environment is stepped. On JAX a
    compiled function sees the values of variables as arguments, so
    `model` names whose variables `fn` reads: each call passes their
    current values (first bringing back the values a running `fit()` holds).

    Args:
        fn: The function, of tensors.
        model: The model (or layer) whose variables `fn` reads.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.core import inference_function

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    act = inference_function(
        lambda states: keras.ops.argmax(policy(states), -1), policy)
    actions = act(np.zeros((3, 4), "float32"))  # a NumPy array of 3 actions
    ```
    """
    variables = [] if model is None else list(model.variables)

    def stateless(values, *args):
        with jax_backend.state_scope(list(zip(variables, values, strict=True))):
            return fn(*args)

    compiled = jax.jit(stateless)

    def call(*args):
        # The variables' latest values, without marking them synced: this
        # may run while Keras's JAX trainer has a step in flight.
        read = getattr(model, "jax_state_read", None)
        if read is not None:
            read()
        outputs = compiled([variable.value for variable in variables], *args)
        return jax.tree.map(lambda t: jax.device_get(t), outputs)

    return call
