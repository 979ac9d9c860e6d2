"""Functional construction of `CustomModel` subclasses, without Keras's splice.

`keras.Model.__init__` called with `(inputs, outputs)` on a subclass rewrites
the subclass's bases to put `Functional` in them
(`inject_functional_model_class`). That rewrite is permanent, so every later
subclass-style use of the same class breaks. Instead, when
`CustomModel.__init__` receives `(inputs, outputs)`, that one instance's
class becomes a class derived from both its class `C` and `Functional`,
created once per `C` and serialized under `C`'s name, so `C` itself never
changes.
"""

from keras_custom.core.keras_internals import (
    Functional,
    functional_from_config,
    functional_init_arguments,
    register_under_name_of,
)

__all__ = [
    "Functional",
    "functional_from_config",
    "functional_init_arguments",
    "functional_variant",
    "is_functional_config",
]

_FUNCTIONAL_CONFIG_KEYS = ("name", "layers", "input_layers", "output_layers")

_VARIANTS: dict[type, type] = {}


def functional_variant(cls: type) -> type:
    """Returns the class derived from `cls` and `Functional`, made once."""
    if issubclass(cls, Functional):
        return cls
    variant = _VARIANTS.get(cls)
    if variant is None:

        def __init__(self, *args, **kwargs):
            # Never called (instances switch class inside `__init__`); its
            # signature tells `Functional.get_config` that the graph can be
            # saved even when `cls.__init__` takes only `inputs, outputs`.
            cls.__init__(self, *args, **kwargs)

        variant = type(
            cls.__name__,
            (cls, Functional),
            {
                "__init__": __init__,
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
            },
        )
        _VARIANTS[cls] = variant
    # Save under the name of `cls`, so that loading calls `cls`, whose
    # `__new__` picks this variant again.
    register_under_name_of(variant, cls)
    return variant


def is_functional_config(config: dict) -> bool:
    """Whether `config` describes a functional graph (`Functional.get_config`)."""
    return all(key in config for key in _FUNCTIONAL_CONFIG_KEYS)
