"""The 8x8 handwritten digits, bundled so that tests and demos need no download."""

from importlib import resources

import numpy as np


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the 8x8 handwritten digits data set.

    1,797 grayscale images of the digits 0-9, 8x8 pixels with integer values
    0..16, from the UCI "Optical Recognition of Handwritten Digits" data set
    (the copy scikit-learn ships). The split is fixed and stratified by class:
    1,437 training and 360 test images. The file is part of the package, so
    nothing is downloaded. Licence: CC BY 4.0 (see `data/LICENSE.txt`).

    Returns:
        Tuple of NumPy arrays `(x_train, y_train), (x_test, y_test)`, in the
        form `keras.datasets.mnist.load_data()` returns them.
        `x_train`: `uint8` array of shape `(1437, 8, 8)`, values 0..16.
        `y_train`: `uint8` array of shape `(1437,)`, labels 0..9.
        `x_test`: `uint8` array of shape `(360, 8, 8)`.
        `y_test`: `uint8` array of shape `(360,)`.

    Example:

    >>> from keras_custom.datasets import digits
    >>> (x_train, y_train), (x_test, y_test) = digits.load_data()
    >>> x_train.shape, x_test.shape
    ((1437, 8, 8), (360, 8, 8))

    Reference:
        Alpaydin, E. and Kaynak, C. (1998). Optical Recognition of Handwritten
        Digits. UCI Machine Learning Repository. DOI 10.24432/C50P49.
    """
    path = resources.files("keras_custom.datasets") / "data" / "digits.npz"
    with resources.as_file(path) as file, np.load(file) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
