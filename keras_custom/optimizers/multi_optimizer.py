"""`MultiOptimizer`: a different optimizer for each group of layers."""

import functools
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import keras

from keras_custom.core import keras_internals


class _Group:
    """What one inner optimizer updates, and the optimizer.

    A plain object on purpose: Keras's attribute trackers and its savers walk
    lists, dicts and `Trackable`s held by an optimizer, and would otherwise
    take the layers and model variables held here for the optimizer's own.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.layers: list = []  # layer objects: their variables, by identity
        self.variables: list = []  # variable objects, by identity
        self.paths: list[str] = []  # variable paths (from a config)
        self.names: list[str] = []  # layer names or path prefixes
        self.indices: list[int] | None = None  # positions (from a config)
        self.default = False  # takes every variable no other group takes

    def describe(self, index: int) -> str:
        keys = [f"layer {layer.name!r}" for layer in self.layers]
        keys += [
            f"variable {_variable_path(variable)!r}" for variable in self.variables
        ]
        keys += [repr(name) for name in self.names]
        if self.paths:
            keys.append(f"{len(self.paths)} saved variable paths")
        if self.default:
            keys.append("None: the catch-all")
        return (
            f"group {index} ({', '.join(keys) or 'no keys'}; "
            f"{type(self.optimizer).__name__} {self.optimizer.name!r})"
        )


class _Resolved:
    """What `build()` resolved: also a plain object, for the same reason."""

    def __init__(self, variables: list, assignment: list[int], count: int, key):
        self.variables = variables  # the list built on, in order
        self.group_of = {
            key(v): index for v, index in zip(variables, assignment, strict=True)
        }
        self.paths: list[list[str]] = [[] for _ in range(count)]
        self.indices: list[list[int]] = [[] for _ in range(count)]
        self.members: list[list] = [[] for _ in range(count)]
        for position, (variable, index) in enumerate(
            zip(variables, assignment, strict=True)
        ):
            self.paths[index].append(_variable_path(variable))
            self.indices[index].append(position)
            self.members[index].append(variable)


def _variable_path(variable) -> str:
    """A variable's path (a `tf.Variable` has only a name)."""
    return getattr(variable, "path", None) or variable.name


def _flatten_key(key) -> list:
    if isinstance(key, (tuple, list)):
        return [item for part in key for item in _flatten_key(part)]
    return [key]


def _path_tail_matches(saved: str, path: str) -> bool:
    """Whether one path ends with the other, in whole components."""
    return saved.endswith("/" + path) or path.endswith("/" + saved)


@keras.saving.register_keras_serializable(package="keras_custom")
class MultiOptimizer(keras.optimizers.Optimizer):
    """An optimizer that updates each group of layers with its own optimizer.

    Discriminative fine-tuning, as in ULMFiT (Howard and Ruder, 2018,
    https://arxiv.org/abs/1801.06146): a small learning rate for a pretrained
    backbone and a larger one, or another optimizer altogether, for a new
    head, under a plain `model.compile(optimizer=...)` and `fit()`. The step
    takes the gradients once; each variable's gradient goes to the optimizer
    of its group, which applies its own settings (`clipnorm`,
    `weight_decay`, `gradient_accumulation_steps`, `use_ema`, ...) to its
    own variables. It is a Keras optimizer like `LossScaleOptimizer`, which
    can wrap it (under `mixed_float16`, `compile()` does: the loss is scaled
    once, for every group), and it works with `keras.Model` and
    `keras_custom.CustomModel` alike, in `tf.function` and under
    `tf.distribute` strategies.

    Every variable the optimizer is built on (by `fit()`, the model's
    trainable variables) must belong to exactly one group; one in no group,
    or in two, is a `ValueError` naming it. A group that gets no variable
    (its layers frozen, say) updates nothing, with a warning.

    `iterations` counts the steps of the whole; each inner optimizer's
    `iterations` counts the steps it applied (those in which its group had
    gradients). `variables` lists this optimizer's own variables and then
    those of each inner optimizer in group order, so `.keras` files and
    `BackupAndRestore` save and restore every inner state. `learning_rate`
    reads the first group's rate; setting it (as `LearningRateScheduler` and
    `ReduceLROnPlateau` do) sets every group's rate, keeping the ratios the
    rates had when this optimizer was made. A group whose optimizer has a
    `LearningRateSchedule` cannot be set that way: give each inner optimizer
    a schedule of its own instead.

    `get_config()` stores the groups as the paths of their variables (and,
    once built, their positions in the list it was built on, which identify
    them in a loaded copy of the model when its paths differ), so
    `from_config()` and `keras.models.load_model()` need no layer objects.

    Args:
        groups: A dict mapping what a group updates to its optimizer (a
            `keras.optimizers.Optimizer`, or a name or config that
            `keras.optimizers.get` takes), or a list of such
            `(key, optimizer)` pairs. A key is a layer or model (its
            variables), a `keras.Variable`, a string (a layer name or path
            prefix: it selects the variables whose path contains it as whole
            components, e.g. `"backbone"` selects `"backbone/dense/kernel"`
            and `"model/backbone/dense/kernel"`), `None` (the catch-all:
            every variable no other group takes), or a tuple or list of
            these. An optimizer given under two keys is one group. An inner
            optimizer must not be built, nor be a `LossScaleOptimizer`.
        loss_scale_factor: Optional float: the loss is multiplied by it and
            the gradients divided by it once, before they are routed. Set it
            here, not on the inner optimizers.
        name: Name of the optimizer.
        **kwargs: Only for Keras compatibility. The settings of
            `keras.optimizers.Optimizer` (`clipnorm`, `weight_decay`, ...)
            belong to the inner optimizers; passing them here is a
            `ValueError`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_custom.optimizers import MultiOptimizer

    inputs = keras.Input((8,))
    backbone = keras.layers.Dense(16, activation="relu", name="backbone")
    head = keras.layers.Dense(1, name="head")
    model = keras.Model(inputs, head(backbone(inputs)))
    optimizer = MultiOptimizer(
        {backbone: keras.optimizers.SGD(1e-3), head: keras.optimizers.Adam(1e-2)}
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((32, 8)), np.ones((32, 1)), batch_size=8, verbose=0)
    sgd, adam = optimizer.inner_optimizers
    assert int(optimizer.iterations) == int(adam.iterations) == 4
    assert optimizer.optimizer_for(head.kernel) is adam

    optimizer.learning_rate = 1e-4  # every group, keeping the ratio 1:10
    assert np.isclose(float(adam.learning_rate), 1e-3)
    ```
    """

    def __init__(
        self,
        groups: Mapping | Iterable,
        loss_scale_factor: float | None = None,
        name: str | None = None,
        **kwargs,
    ):
        for setting in (
            "learning_rate",
            "weight_decay",
            "clipnorm",
            "clipvalue",
            "global_clipnorm",
            "use_ema",
            "ema_momentum",
            "ema_overwrite_frequency",
            "gradient_accumulation_steps",
        ):
            if setting in kwargs:
                raise ValueError(
                    f"MultiOptimizer does not take `{setting}`: set it on each "
                    "inner optimizer, which applies it to its own group."
                )
        if kwargs:
            raise ValueError(f"MultiOptimizer got unknown arguments {sorted(kwargs)}.")
        super().__init__(
            learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name
        )
        groups = self._make_groups(groups)
        self._groups = groups
        # The rates the setter keeps the ratios of (`None`: not settable).
        self._initial_rates = [self._settable_rate(g.optimizer) for g in groups]
        self._resolved = None  # a `_Resolved`, once built
        self._saved_count = None  # length of the saved build list (config)

    # ------------------------------------------------------------------
    # Groups
    # ------------------------------------------------------------------

    def _make_groups(self, groups) -> list[_Group]:
        pairs = list(groups.items()) if isinstance(groups, Mapping) else list(groups)
        if not pairs:
            raise ValueError(
                "MultiOptimizer needs at least one group: a dict such as "
                "`{backbone: keras.optimizers.Adam(1e-5), head: 'adam'}`."
            )
        made: list[_Group] = []
        by_optimizer: dict[int, _Group] = {}
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ValueError(
                    "MultiOptimizer takes a dict `{key: optimizer}` or a list "
                    f"of `(key, optimizer)` pairs. Got the item {pair!r}."
                )
            key, identifier = pair
            optimizer = self._inner_optimizer(identifier, key)
            group = by_optimizer.get(id(optimizer))
            if group is None:
                group = by_optimizer[id(optimizer)] = _Group(optimizer)
                made.append(group)
            if isinstance(key, _Group):  # from `from_config`
                group.paths, group.names = key.paths, key.names
                group.indices, group.default = key.indices, key.default
                continue
            for item in _flatten_key(key):
                if item is None:
                    group.default = True
                elif isinstance(item, keras.layers.Layer):
                    group.layers.append(item)
                elif isinstance(item, keras.Variable):
                    group.variables.append(item)
                elif isinstance(item, str) and item.strip("/"):
                    group.names.append(item.strip("/"))
                else:
                    raise ValueError(
                        "A MultiOptimizer key must be a layer, a keras.Variable, "
                        "a layer name (or path prefix) string, None (the "
                        f"catch-all), or a tuple of these. Got: {item!r}."
                    )
        defaults = [i for i, group in enumerate(made) if group.default]
        if len(defaults) > 1:
            raise ValueError(
                "MultiOptimizer got more than one catch-all group (key None): "
                f"{', '.join(made[i].describe(i) for i in defaults)}. Give None "
                "to one optimizer only."
            )
        return made

    def _inner_optimizer(self, identifier, key):
        try:
            optimizer = keras.optimizers.get(identifier)
        except ValueError as error:
            raise ValueError(
                f"MultiOptimizer could not interpret the optimizer {identifier!r} "
                f"given for {key!r}. Pass a keras.optimizers.Optimizer, its "
                "name (e.g. 'adam') or its config dict."
            ) from error
        if isinstance(optimizer, (keras.optimizers.LossScaleOptimizer, MultiOptimizer)):
            raise ValueError(
                f"MultiOptimizer cannot hold a {type(optimizer).__name__} "
                f"({optimizer.name!r}). Give it plain optimizers; under "
                "mixed precision `compile()` wraps the MultiOptimizer itself in a "
                "LossScaleOptimizer, so that the loss is scaled once for all "
                "groups."
            )
        if optimizer.built:
            raise ValueError(
                f"The optimizer {optimizer.name!r} given to MultiOptimizer is "
                "already built (it has been used). Give each group a new "
                "optimizer."
            )
        if optimizer.loss_scale_factor is not None:
            raise ValueError(
                f"The optimizer {optimizer.name!r} given to MultiOptimizer has "
                "its own `loss_scale_factor`; the loss is scaled once for all "
                "groups. Set `loss_scale_factor` on the MultiOptimizer instead."
            )
        return optimizer

    @staticmethod
    def _settable_rate(optimizer) -> float | None:
        """The optimizer's rate if it is a variable (settable), else `None`."""
        learning_rate = optimizer.learning_rate
        if isinstance(learning_rate, keras.Variable):
            return float(keras.ops.convert_to_numpy(learning_rate))
        return None

    def _assign(self, var_list: list) -> list[int]:
        """The index of the group of each variable of `var_list`."""
        groups = self._groups
        if self._saved_count == len(var_list):
            # Positions identify variables in a loaded copy of the model,
            # whose paths may differ (a `Sequential` loaded inside a
            # functional model drops its name from its variables' paths).
            by_position = {}
            for index, group in enumerate(groups):
                if group.indices is not None:
                    for position, path in zip(group.indices, group.paths, strict=True):
                        by_position[position] = (index, path)
            if len(by_position) == len(var_list) and all(
                by_position[position][1].rsplit("/", 1)[-1]
                == _variable_path(variable).rsplit("/", 1)[-1]
                for position, variable in enumerate(var_list)
            ):
                return [by_position[p][0] for p in range(len(var_list))]

        identities = [
            {
                keras_internals.variable_key(self, variable)
                for layer in group.layers
                for variable in layer.variables
            }
            | {
                keras_internals.variable_key(self, variable)
                for variable in group.variables
            }
            for group in groups
        ]
        saved_paths = [set(group.paths) for group in groups]
        default = next((i for i, group in enumerate(groups) if group.default), None)
        assignment, unassigned, conflicts = [], [], []
        for variable in var_list:
            path, key = (
                _variable_path(variable),
                keras_internals.variable_key(self, variable),
            )
            wrapped = f"/{path}/"
            matches = [
                index
                for index, group in enumerate(groups)
                if key in identities[index]
                or path in saved_paths[index]
                or any(f"/{name}/" in wrapped for name in group.names)
            ]
            if not matches:
                # A saved path whose prefix the loaded model lacks or adds.
                matches = [
                    index
                    for index, group in enumerate(groups)
                    if any(_path_tail_matches(saved, path) for saved in group.paths)
                ]
            if len(matches) > 1:
                conflicts.append((path, matches))
            elif matches:
                assignment.append(matches[0])
                continue
            elif default is not None:
                assignment.append(default)
                continue
            else:
                unassigned.append(path)
            assignment.append(-1)

        problems = []
        if unassigned:
            problems.append(
                f"These variables are in no group: {unassigned}. Add their "
                "layers (or a name or path prefix of theirs) to a group, or "
                "add a catch-all group with the key None, e.g. "
                "`{None: 'adam'}`."
            )
        if conflicts:
            described = "; ".join(
                f"{path!r} in " + " and ".join(groups[i].describe(i) for i in indices)
                for path, indices in conflicts
            )
            problems.append(
                f"These variables are in more than one group: {described}. "
                "Give each layer to one optimizer only (a layer inside "
                "another layer of a group belongs to that group)."
            )
        if problems:
            raise ValueError(
                f"MultiOptimizer {self.name!r} cannot be built on these "
                f"{len(var_list)} variables. " + " ".join(problems)
            )
        return assignment

    # ------------------------------------------------------------------
    # Optimizer
    # ------------------------------------------------------------------

    @property
    def inner_optimizers(self) -> list:
        """The inner optimizers, in group order.

        Not named `optimizers`: Keras 3.15's `LearningRateScheduler` and
        `ReduceLROnPlateau` set the rate of each of an optimizer's
        `optimizers` on its own, which would bypass the setter that keeps
        the groups' ratios.
        """
        return [group.optimizer for group in self._groups]

    def optimizer_for(self, variable) -> keras.optimizers.Optimizer:
        """The inner optimizer that updates `variable` (once built).

        Args:
            variable: A variable this optimizer was built on.

        Returns:
            The inner optimizer of the variable's group.

        Example:

        ```python
        import keras
        from keras_custom.optimizers import MultiOptimizer

        dense = keras.layers.Dense(2)
        dense.build((None, 3))
        sgd = keras.optimizers.SGD()
        optimizer = MultiOptimizer({dense: sgd})
        optimizer.build(dense.trainable_variables)
        assert optimizer.optimizer_for(dense.kernel) is sgd
        ```
        """
        if not self.built:
            raise ValueError(
                f"MultiOptimizer {self.name!r} is not built yet: its groups "
                "are resolved when it is built on the variables it updates."
            )
        index = self._resolved.group_of.get(
            keras_internals.variable_key(self, variable)
        )
        if index is None:
            raise ValueError(
                f"Variable {_variable_path(variable)!r} is not one "
                f"of those MultiOptimizer {self.name!r} was built on."
            )
        return self._groups[index].optimizer

    def build(self, var_list):
        if self.built:
            return
        var_list = list(var_list)
        assignment = self._assign(var_list)
        super().build(var_list)
        built = _Resolved(
            var_list,
            assignment,
            len(self._groups),
            functools.partial(keras_internals.variable_key, self),
        )
        for index, group in enumerate(self._groups):
            if not built.members[index] and not group.default:
                warnings.warn(
                    f"MultiOptimizer {self.name!r}: {group.describe(index)} got "
                    f"none of the {len(var_list)} variables it is built on (a "
                    "frozen layer has none); its optimizer updates nothing.",
                    stacklevel=2,
                )
            # Every inner optimizer is built, on no variable too, so that
            # `variables` has the same length in a loaded copy.
            group.optimizer.build(built.members[index])
        self._resolved = built

    @property
    def variables(self) -> list:
        variables = super().variables
        for group in getattr(self, "_groups", []):
            variables.extend(group.optimizer.variables)
        return variables

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer "
                    "must already be built on a list of variables. Call "
                    "`optimizer.build(trainable_variables)` first."
                )
            trainable_variables = self._resolved.variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        if len(grads) != len(trainable_variables):
            raise ValueError(
                f"MultiOptimizer {self.name!r} got {len(grads)} gradients for "
                f"{len(trainable_variables)} variables."
            )
        if all(grad is None for grad in grads):
            raise ValueError("No gradients provided for any variable.")
        routed = [([], []) for _ in self._groups]
        unknown = []
        for grad, variable in zip(grads, trainable_variables, strict=True):
            index = self._resolved.group_of.get(
                keras_internals.variable_key(self, variable)
            )
            if index is None:
                unknown.append(_variable_path(variable))
                continue
            routed[index][0].append(grad)
            routed[index][1].append(variable)
        if unknown:
            raise ValueError(
                f"MultiOptimizer {self.name!r} was not built on the variables "
                f"{unknown}. An optimizer updates the variables it was built "
                "on; for new variables make a new optimizer."
            )
        scale = self.loss_scale_factor
        for group, (group_grads, variables) in zip(self._groups, routed, strict=True):
            if not variables:
                continue
            if all(grad is None for grad in group_grads):
                warnings.warn(
                    "Gradients do not exist for variables "
                    f"{[_variable_path(v) for v in variables]} when minimizing "
                    "the loss; "
                    f"optimizer {group.optimizer.name!r} skips this step.",
                    stacklevel=2,
                )
                continue
            if scale is not None:
                group_grads = [None if g is None else g / scale for g in group_grads]
            group.optimizer.apply(group_grads, variables)
        self.iterations.assign_add(1)

    def finalize_variable_values(self, var_list):
        if not self.built:
            return
        routed = [[] for _ in self._groups]
        for variable in var_list:
            index = self._resolved.group_of.get(
                keras_internals.variable_key(self, variable)
            )
            if index is not None:
                routed[index].append(variable)
        for group, variables in zip(self._groups, routed, strict=True):
            if variables:
                group.optimizer.finalize_variable_values(variables)

    # ------------------------------------------------------------------
    # Learning rate
    # ------------------------------------------------------------------

    @property
    def learning_rate(self):
        """The first group's learning rate; setting it sets every group's."""
        return self._groups[0].optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if isinstance(
            learning_rate, keras.optimizers.schedules.LearningRateSchedule
        ) or callable(learning_rate):
            raise ValueError(
                "MultiOptimizer cannot set one learning rate schedule for all "
                "groups. Give each inner optimizer its own schedule instead."
            )
        for index, group in enumerate(self._groups):
            if not isinstance(group.optimizer.learning_rate, keras.Variable):
                raise ValueError(
                    f"MultiOptimizer {self.name!r} cannot set the learning rate "
                    f"of {group.describe(index)}: its optimizer has a "
                    "LearningRateSchedule (or a callable rate). A callback that "
                    "sets the learning rate (LearningRateScheduler, "
                    "ReduceLROnPlateau) cannot keep it; give each inner "
                    "optimizer a schedule of its own instead of using the "
                    "callback."
                )
        first = self._initial_rates[0]
        if first is None or first == 0:
            raise ValueError(
                f"MultiOptimizer {self.name!r} cannot keep the ratios of its "
                f"groups' learning rates: the first group's rate was {first} "
                "when it was made. Set each inner optimizer's rate instead."
            )
        for group, initial in zip(self._groups, self._initial_rates, strict=True):
            if initial is None:  # a schedule set on the optimizer since
                raise ValueError(
                    f"MultiOptimizer {self.name!r}: the optimizer "
                    f"{group.optimizer.name!r} had a schedule when the "
                    "MultiOptimizer was made; set its rate itself."
                )
            ratio = initial / first
            group.optimizer.learning_rate = (
                learning_rate if ratio == 1.0 else learning_rate * ratio
            )

    # ------------------------------------------------------------------
    # Config
    # ------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        groups = []
        for index, group in enumerate(self._groups):
            config: dict[str, Any] = {
                "optimizer": keras.optimizers.serialize(group.optimizer)
            }
            if self._resolved is not None:
                config["variables"] = list(self._resolved.paths[index])
                config["indices"] = list(self._resolved.indices[index])
            else:
                paths = list(group.paths)
                names = list(group.names)
                for layer in group.layers:
                    if layer.built:
                        paths += [_variable_path(v) for v in layer.variables]
                    else:  # its variables do not exist yet
                        names.append(layer.name)
                paths += [_variable_path(v) for v in group.variables]
                config["variables"] = paths
                if names:
                    config["names"] = names
                if group.indices is not None:
                    config["indices"] = list(group.indices)
            if group.default:
                config["default"] = True
            groups.append(config)
        config = {
            "name": self.name,
            "groups": groups,
            "loss_scale_factor": self.loss_scale_factor,
        }
        count = self._saved_count
        if self._resolved is not None:
            count = len(self._resolved.variables)
        if count is not None:
            config["num_variables"] = count
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "MultiOptimizer":
        config = dict(config)
        count = config.pop("num_variables", None)
        pairs = []
        for group_config in config.pop("groups"):
            optimizer = keras.optimizers.deserialize(
                dict(group_config["optimizer"]), custom_objects=custom_objects
            )
            key = _Group(optimizer)
            key.paths = list(group_config.get("variables", []))
            key.names = list(group_config.get("names", []))
            if "indices" in group_config:
                key.indices = list(group_config["indices"])
            key.default = bool(group_config.get("default", False))
            pairs.append((key, optimizer))
        optimizer = cls(pairs, **config)
        optimizer._saved_count = count
        return optimizer
