"""The batch structure of the semi-supervised models."""

import keras

from keras_custom.core.input_checks import check_single_input, network_input


def split_batch(data, model, needs_unlabeled: bool, network=None):
    """Returns `(x_labeled, x_unlabeled, y_labeled, sample_weight)` of a batch.

    A semi-supervised batch is `((x_labeled, x_unlabeled), y_labeled)`; a
    plain `(x, y)` batch (validation data) has `x_unlabeled = None`.

    Args:
        data: The batch a step receives.
        model: The model whose step it is (named in error messages).
        needs_unlabeled: Whether the batch must have an unlabeled part.
        network: The classifier both parts feed; when given, each part must
            be one tensor of the shape of its input.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if isinstance(x, (tuple, list)) and len(x) == 2:
        x_labeled, x_unlabeled = x
    elif isinstance(x, (tuple, list)):
        raise ValueError(
            f"Model '{model.name}' takes batches `((x_labeled, x_unlabeled), "
            f"y_labeled)`; got inputs with {len(x)} parts."
        )
    else:
        x_labeled, x_unlabeled = x, None
    if y is None:
        raise ValueError(
            f"Model '{model.name}' was given no labels: batches must be "
            "`((x_labeled, x_unlabeled), y_labeled)` (see "
            "`keras_custom.semi_supervised.SemiSupervisedDataset`) or, to "
            "evaluate, `(x, y)`."
        )
    if needs_unlabeled and x_unlabeled is None:
        raise ValueError(
            f"Model '{model.name}' trains on batches `((x_labeled, x_unlabeled), "
            "y_labeled)`: zip the two sets with `keras_custom.semi_supervised."
            "SemiSupervisedDataset`, or call `fit(x=(x_labeled, x_unlabeled), "
            "y=y_labeled)`."
        )
    if network is not None:
        expected = network_input(network)
        check_single_input(x_labeled, model, expected, "labeled inputs")
        if x_unlabeled is not None:
            check_single_input(x_unlabeled, model, expected, "unlabeled inputs")
    return x_labeled, x_unlabeled, y, sample_weight
