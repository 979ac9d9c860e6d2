"""What `CustomModel` adds to saving: random state, serving, legacy files.

Keras saves no `SeedGenerator` state; the model's are saved with its
variables, so a resumed run draws the random numbers an uninterrupted one
would. `export()` finds a serving signature for a model built from built
sub-models, and the legacy `.h5` writer is given a model without
optimizer when it has only named ones.
"""

import keras

from keras_custom.core import compile_config, keras_internals
from keras_custom.core import functional as functional_lib

_SEED_STATE_KEY = "seed_generator_state_"


def _all_seed_generators(model) -> list:
    generators, seen = [], set()
    for layer in keras_internals.flatten_layers(model):
        for generator in keras_internals.seed_generators(layer):
            if id(generator) not in seen:
                seen.add(id(generator))
                generators.append(generator)
    return generators


def save_seed_states(model, store) -> None:
    """Adds the state of every seed generator of the model to `store`."""
    for index, generator in enumerate(_all_seed_generators(model)):
        store[f"{_SEED_STATE_KEY}{index}"] = generator.state


def without_seed_states(store) -> dict:
    """`store` without the seed generators' entries (Keras's own variables)."""
    return {k: store[k] for k in store.keys() if not k.startswith(_SEED_STATE_KEY)}


def load_seed_states(model, store) -> None:
    """Restores every seed generator whose state `store` holds."""
    for index, generator in enumerate(_all_seed_generators(model)):
        key = f"{_SEED_STATE_KEY}{index}"
        if key in store.keys():
            generator.state.assign(store[key])


def serving_signature(model, input_signature):
    """`input_signature`, or the inputs of the model's serving network.

    Keras infers the serving signature of a subclassed model from the call
    that built it; a model built from built sub-models was never called, so
    the signature defaults to the inputs (with their dtypes) of the network
    named by `serving_network`, which `call` feeds.
    """
    network = getattr(model, model.serving_network or "", None)
    inputs = getattr(network, "inputs", None)
    if input_signature is None and inputs:
        input_signature = [inputs[0] if len(inputs) == 1 else list(inputs)]
    return input_signature


def save_arguments(model, filepath, kwargs: dict) -> dict:
    """`save()`'s keyword arguments for `filepath`.

    Keras's legacy `.h5` writer saves `model.optimizer` whenever the
    attribute exists and fails on `None` (a model not compiled, or whose
    optimizers are all named, as a GAN's): such a model is written without
    optimizer. The `.keras` format keeps every optimizer.
    """
    if str(filepath).endswith((".h5", ".hdf5")) and model.optimizer is None:
        kwargs = {"include_optimizer": False, **kwargs}
    return kwargs


class ModelSaving:
    """`CustomModel`'s overrides of Keras's configuration and saving methods.

    A mixin before `keras.Model` in `CustomModel`'s bases: every method
    defers to Keras's own and adds what this module describes.
    """

    #: The attribute name of the network whose inputs `export()` serves by
    #: default (`"generator"` for a GAN); `None` lets Keras infer them.
    serving_network: str | None = None

    def get_config(self) -> dict:
        if isinstance(self, functional_lib.Functional):
            config = functional_lib.Functional.get_config(self)
        else:
            config = keras.Model.get_config(self)
        return compile_config.model_config(self, config)

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """Rebuilds the model from `get_config()`.

        A subclass's constructor gets every serialized Keras object of its
        config (sub-models, optimizers, losses, schedules) deserialized, so
        a subclass that serializes them in `get_config` needs no
        `from_config`. A functional subclass whose `__init__(self, inputs,
        outputs)` takes no `name` is rebuilt too (Keras cannot).
        """
        model = compile_config.functional_from_config(cls, config, custom_objects)
        if model is not None:
            return model
        if not functional_lib.is_functional_config(config):
            # Keras calls `cls(**config)`: the sub-models, optimizers and
            # schedules a subclass's `get_config` serialized are given to
            # its constructor as the objects they were.
            config = compile_config.deserialized_arguments(config, custom_objects)
        return super().from_config(config, custom_objects=custom_objects)

    def export(
        self,
        filepath,
        format: str = "tf_saved_model",
        verbose: bool | None = None,
        input_signature=None,
        **kwargs,
    ):
        """Exports the model for inference, as `keras.Model.export` does.

        A model built from built sub-models is served on the inputs of the
        network named by `serving_network`. Arguments are those of
        `keras.Model.export`.
        """
        return super().export(
            filepath,
            format=format,
            verbose=verbose,
            input_signature=serving_signature(self, input_signature),
            **kwargs,
        )

    def save(self, filepath, overwrite: bool = True, zipped=None, **kwargs) -> None:
        """Saves the model, as `keras.Model.save` does (`.h5` without optimizer
        when the model has only named ones)."""
        kwargs = save_arguments(self, filepath, kwargs)
        return super().save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        save_seed_states(self, store)

    def load_own_variables(self, store) -> None:
        super().load_own_variables(without_seed_states(store))
        load_seed_states(self, store)

    def __reduce__(self):
        # Keras pickles `(type(self)._unpickle_model, (buffer,))`; pickle
        # cannot name the class of a functional instance (it shares its
        # name with the class it derives from), so name Keras's loader
        # through `keras_internals` instead.
        _, arguments = super().__reduce__()
        return keras_internals.unpickle_model, arguments
