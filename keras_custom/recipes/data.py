"""The 8x8 digits as the recipes train on them: one loader for every family.

`load_digits()` scales the bundled digits (`keras_custom.datasets.digits`)
to float32 pixels in [0, 1], as images of shape `IMAGE_SHAPE` for the
convolutional networks or, with `shape=(NUM_PIXELS,)`, as flat vectors for
the multilayer perceptrons; `label_split()` keeps the labels of a few
training digits per class, the protocol of the semi-supervised recipes.

Example:

```python
from keras_custom.recipes import data

(x_train, y_train), (x_test, y_test) = data.load_digits()
x_train.shape, x_test.shape  # (1437, 8, 8, 1), (360, 8, 8, 1)
x_labeled, y_labeled, x_unlabeled = data.label_split()  # 50 and 1,387
```
"""

import numpy as np

from keras_custom.datasets import digits

#: Shape of one digit image: 8x8 pixels, one channel.
IMAGE_SHAPE = (8, 8, 1)
#: Pixels of a flattened 8x8 digit.
NUM_PIXELS = 64
#: Number of digit classes.
NUM_CLASSES = 10

#: Labeled training digits per class of the semi-supervised split.
LABELS_PER_CLASS = 5
#: Seed of the semi-supervised split (fixed: every recipe uses one split).
SPLIT_SEED = 0


def load_digits(
    shape: tuple[int, ...] = IMAGE_SHAPE,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the digits as float32 images in [0, 1] and int32 labels.

    Args:
        shape: Shape of one image: `IMAGE_SHAPE`, `(8, 8, 1)`, for the
            convolutional networks, or `(NUM_PIXELS,)`, the 64 pixels row by
            row, for the multilayer perceptrons.

    Returns:
        Tuple `(x_train, y_train), (x_test, y_test)`: images of shape
        `(count, *shape)` (the pixels divided by 16) and class ids of shape
        `(count,)`; 1,437 training and 360 test digits.
    """
    (x_train, y_train), (x_test, y_test) = digits.load_data()

    def prepare(x):
        return (x.astype("float32") / 16.0).reshape((len(x), *shape))

    return (
        (prepare(x_train), y_train.astype("int32")),
        (prepare(x_test), y_test.astype("int32")),
    )


def label_split(
    labels_per_class: int = LABELS_PER_CLASS, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits the training digits into a few labeled ones and the rest.

    Args:
        labels_per_class: Labeled digits drawn per class.
        seed: Seed of the NumPy generator drawing them.

    Returns:
        Tuple `(x_labeled, y_labeled, x_unlabeled)`: `labels_per_class * 10`
        labeled training images (shuffled, of shape `IMAGE_SHAPE`) with their
        labels, and the other training images, whose labels are dropped.
    """
    (x_train, y_train), _ = load_digits()
    rng = np.random.default_rng(seed)
    labeled = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_train == label), labels_per_class, False)
            for label in range(NUM_CLASSES)
        ]
    )
    labeled = rng.permutation(labeled)
    unlabeled = np.setdiff1d(np.arange(len(x_train)), labeled)
    return x_train[labeled], y_train[labeled], x_train[unlabeled]
