"""`ReinforcementModel`: the base of `DQN` and `ActorCritic`."""

import keras
import numpy as np
from keras import ops

from keras_custom.core import CustomModel, inference_function
from keras_custom.reinforcement.transitions import observations_of, transition_batch


class ReinforcementModel(CustomModel):
    """A model trained by one optimizer on a loss of batches of transitions.

    A subclass names the transition keys its loss reads
    (`transition_keys`), the constructor arguments that are networks
    (`_serialized_arguments`) and the values it logs (`logged`),
    and writes `transition_loss(transitions, training)`, which returns a
    dict of those values with the total loss under `"loss"`. That is
    Keras's `compute_loss` hook, so `CustomModel` derives the steps: `fit()`
    minimizes the total with the model's `optimizer` and `evaluate()` logs
    the same values without updating, on one device or several replicas
    alike. `model(x)` runs `act` on the observations of `x` (a dict of
    transitions or the observations themselves); `greedy_actions` is the
    argmax of its output.

    Args:
        networks: The networks given to the subclass's constructor, by
            argument name, each checked to be a built Keras model.
        optimizer: The optimizer of the loss.
        **kwargs: Forwarded to `CustomModel` (`name`, ...).
    """

    #: The keys of a batch of transitions that `transition_loss` reads.
    transition_keys: tuple[str, ...] = ()
    #: The constructor arguments that are networks, saved with the model
    #: (`CustomModel.from_config` gives them back to the constructor).
    _serialized_arguments: tuple[str, ...] = ()
    #: The values `transition_loss` returns, each logged with a tracker.
    logged: tuple[str, ...] = ("loss",)
    #: `compute_loss` runs the networks itself.
    predicts_before_loss = False

    def __init__(self, networks: dict, optimizer=None, **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        for name, network in networks.items():
            if not isinstance(network, keras.layers.Layer) or not network.built:
                raise ValueError(
                    f"`{name}` must be a built Keras model. Got: {network!r}."
                )
        for name in self.logged:
            self.add_tracker(name)
        self._inference_functions = {}

    def transition_loss(self, transitions: dict, training: bool) -> dict:
        """The total loss (under `"loss"`) and the other logged values."""
        raise NotImplementedError

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """`transition_loss` of the batch of transitions `x` (no `y`)."""
        transitions = transition_batch(x, y, self.transition_keys, self.name)
        return self.transition_loss(transitions, training)

    def call(self, inputs, training=False):
        return self.act(observations_of(inputs), training)

    def act(self, observations, training: bool):
        """The network output whose argmax is the greedy action."""
        raise NotImplementedError

    def _compiled(self, name: str, fn):
        """`fn` compiled once (by `name`), run on NumPy observations."""
        if name not in self._inference_functions:
            compiled = inference_function(fn, self)
            self._inference_functions[name] = lambda observations: compiled(
                np.asarray(observations, "float32")
            )
        return self._inference_functions[name]

    def greedy_actions(self, observations) -> np.ndarray:
        """The actions of highest output, for a NumPy batch of observations."""
        greedy = self._compiled(
            "greedy_actions", lambda x: ops.argmax(self.act(x, False), axis=-1)
        )
        return greedy(observations)

    def get_config(self) -> dict:
        config = super().get_config()
        for name in self._serialized_arguments:
            network = getattr(self, name)
            if network is not None:
                network = keras.saving.serialize_keras_object(network)
            config[name] = network
        return config
