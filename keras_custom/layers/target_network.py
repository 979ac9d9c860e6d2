"""`TargetNetwork`: a copy of a network that follows it by moving average."""

from collections.abc import Sequence

import keras

from keras_custom.core import assign_moving_average, keras_internals, scalar_value


class _Reference:
    """Holds layers without making them sub-layers (so they are saved once)."""

    def __init__(self, layers: list):
        self.layers = layers


def _state(layer) -> list:
    """A layer's weights in structural order, without random-seed states."""
    return [v for v in layer.variables if "float" in str(v.dtype)]


class TargetNetwork(keras.layers.Layer):
    """A frozen copy of an online network that follows it by moving average.

    At construction the online layers are cloned (`keras.models.clone_model`)
    with their weights. The copy receives no gradients (its weights are not
    trainable, and its output is gradient-stopped), but its layers follow
    `training` as the online network's do: called with `training=True`,
    batch normalization uses the batch's statistics, as BYOL's target does.
    `update(decay)` moves every weight, batch-normalization statistics
    included, to `decay * target + (1 - decay) * online`. Under a
    distribution strategy the update runs once on the mirrored weights. The
    copy's weights are weights of the model that owns it, so they are saved,
    restored and resumed with it; the model creates it again from the online
    network when it is rebuilt from its config.

    Args:
        online: The online network: a layer or model, or a list of them
            applied in sequence (e.g. `[encoder, projector]`).
        **kwargs: Forwarded to `keras.layers.Layer`.

    Example:

    ```python
    import keras
    from keras_custom.layers import TargetNetwork

    online = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    target = TargetNetwork(online)
    online.layers[0].kernel.assign(keras.ops.ones((4, 2)))
    target.update(decay=0.9)  # target kernel moved 10% of the way
    ```

    Reference:
        Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
        (https://arxiv.org/abs/2006.07733), section 3.1.
    """

    def __init__(self, online, **kwargs):
        super().__init__(**kwargs)
        parts = list(online) if isinstance(online, Sequence) else [online]
        for part in parts:
            if not isinstance(part, keras.layers.Layer) or not part.built:
                raise ValueError(
                    "TargetNetwork follows built Keras layers or models. Got: "
                    f"{part!r}."
                )
        self._online = _Reference(parts)
        self.parts = [keras.models.clone_model(part) for part in parts]
        for copy, part in zip(self.parts, parts, strict=True):
            for target, source in zip(_state(copy), _state(part), strict=True):
                target.assign(source)
                # Frozen by its variables, not by `layer.trainable = False`:
                # a frozen `BatchNormalization` layer would normalize with its
                # moving averages even when called with `training=True`,
                # where the target must use the batch's statistics.
                target.trainable = False
            for layer in keras_internals.flatten_layers(copy):
                if isinstance(layer, keras.layers.BatchNormalization):
                    # Its statistics move by the moving average alone.
                    layer.momentum = 1.0
        self.built = True

    def call(self, inputs, training=None):
        outputs = inputs
        for part in self.parts:
            outputs = part(outputs, training=training)
        return keras.ops.stop_gradient(outputs)

    def target_weights(self) -> list:
        """The copy's weights, paired in order with `online_weights()`."""
        return [v for part in self.parts for v in _state(part)]

    def online_weights(self) -> list:
        """The online network's weights, paired in order with the copy's."""
        return [v for part in self._online.layers for v in _state(part)]

    def update(self, decay) -> None:
        """Moves the copy towards the online network.

        Args:
            decay: The moving-average decay: a float, a scalar tensor, or a
                callable without arguments returning one (evaluated where the
                update runs, once per step under a strategy).
        """
        decay_fn = decay if callable(decay) else (lambda: scalar_value(decay, 0))
        assign_moving_average(self.target_weights(), self.online_weights(), decay_fn)
