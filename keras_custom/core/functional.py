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

from keras.src.models.functional import Functional
from keras.src.models.model import functional_init_arguments
from keras.src.saving import object_registration

__all__ = ["Functional", "functional_init_arguments", "functional_variant"]

_VARIANTS: dict[type, type] = {}


def functional_variant(cls: type) -> type:
    """Returns the class derived from `cls` and `Functional`, made once."""
    if issubclass(cls, Functional):
        return cls
    variant = _VARIANTS.get(cls)
    if variant is None:
        variant = type(
            cls.__name__,
            (cls, Functional),
            {"__module__": cls.__module__, "__qualname__": cls.__qualname__},
        )
        _VARIANTS[cls] = variant
    registered_name = object_registration.GLOBAL_CUSTOM_NAMES.get(cls)
    if registered_name is not None:
        # Save under the name of `cls`, so that loading calls `cls`, whose
        # `__new__` picks this variant again.
        object_registration.GLOBAL_CUSTOM_NAMES[variant] = registered_name
    return variant


def user_facing_class(cls: type) -> type:
    """The class a user wrote, for a functional variant or any other class."""
    for base_class, variant in _VARIANTS.items():
        if variant is cls:
            return base_class
    return cls
