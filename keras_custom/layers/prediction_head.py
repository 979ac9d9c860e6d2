"""`PredictionHead`: the predictor of SimSiam and BYOL."""

import keras

from keras_custom.layers.projection_head import ProjectionHead


@keras.saving.register_keras_serializable(package="keras_custom")
class PredictionHead(ProjectionHead):
    """The predictor MLP of SimSiam and BYOL: `Dense-BN-ReLU-Dense`.

    A `ProjectionHead` with one hidden block and a linear output of the
    projection's size; the papers make its hidden layer a bottleneck
    (SimSiam: a quarter of the output size).

    Args:
        output_units: Size of the output, the projection size.
        hidden_units: Size of the hidden block.
        **kwargs: Forwarded to `keras.layers.Layer`.

    Example:

    ```python
    import numpy as np
    from keras_custom.layers import PredictionHead

    predictor = PredictionHead(output_units=32, hidden_units=8)
    predictions = predictor(np.zeros((4, 32)), training=True)
    ```

    Reference:
        Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
        (https://arxiv.org/abs/2006.07733); Chen and He, "Exploring Simple
        Siamese Representation Learning", CVPR 2021
        (https://arxiv.org/abs/2011.10566).
    """

    def __init__(self, output_units: int, hidden_units: int = 64, **kwargs):
        super().__init__(
            output_units,
            hidden_units=hidden_units,
            hidden_layers=1,
            output_batch_norm=False,
            **kwargs,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["hidden_layers"], config["output_batch_norm"]
        return config
