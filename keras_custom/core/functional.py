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

from keras.src.models.functional import Functional, functional_from_config
from keras.src.models.model import functional_init_arguments
from keras.src.saving import object_registration

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
    registered_name = object_registration.GLOBAL_CUSTOM_NAMES.get(cls)
    if registered_name is not None:
        # Save under the name of `cls`, so that loading calls `cls`, whose
        # `__new__` picks this variant again.
        object_registration.GLOBAL_CUSTOM_NAMES[variant] = registered_name
    return variant


def is_functional_config(config: dict) -> bool:
    """Whether `config` describes a functional graph (`Functional.get_config`)."""
    return all(key in config for key in _FUNCTIONAL_CONFIG_KEYS)
