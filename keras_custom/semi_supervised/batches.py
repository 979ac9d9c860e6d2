"""The batch structure of the semi-supervised models."""

import keras


def split_batch(data, model_name: str, needs_unlabeled: bool):
    """Returns `(x_labeled, x_unlabeled, y_labeled, sample_weight)` of a batch.

    A semi-supervised batch is `((x_labeled, x_unlabeled), y_labeled)`; a
    plain `(x, y)` batch (validation data) has `x_unlabeled = None`.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if isinstance(x, (tuple, list)) and len(x) == 2:
        x_labeled, x_unlabeled = x
    elif isinstance(x, (tuple, list)):
        raise ValueError(
            f"Model '{model_name}' takes batches `((x_labeled, x_unlabeled), "
            f"y_labeled)`; got inputs with {len(x)} parts."
        )
    else:
        x_labeled, x_unlabeled = x, None
    if y is None:
        raise ValueError(
            f"Model '{model_name}' was given no labels: batches must be "
            "`((x_labeled, x_unlabeled), y_labeled)` (see "
            "`keras_custom.semi_supervised.SemiSupervisedDataset`) or, to "
            "evaluate, `(x, y)`."
        )
    if needs_unlabeled and x_unlabeled is None:
        raise ValueError(
            f"Model '{model_name}' trains on batches `((x_labeled, x_unlabeled), "
            "y_labeled)`: zip the two sets with `keras_custom.semi_supervised."
            "SemiSupervisedDataset`, or call `fit(x=(x_labeled, x_unlabeled), "
            "y=y_labeled)`."
        )
    return x_labeled, x_unlabeled, y, sample_weight
