"""The bundled digits: shapes, split, and a known result."""

import numpy as np

from keras_custom.datasets import digits


def test_shapes_types_and_ranges():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert x_train.max() == 16 and x_train.min() == 0
    assert set(np.unique(y_test)) == set(range(10))
    # Stratified split: every class has 35 to 37 test images.
    assert np.bincount(y_test).min() >= 35 and np.bincount(y_test).max() <= 37


def test_split_is_fixed_and_covers_the_whole_set():
    (x_train, _), (x_test, _) = digits.load_data()
    (x_train_again, _), _ = digits.load_data()
    np.testing.assert_array_equal(x_train, x_train_again)
    # The sum of all 1,797 images of scikit-learn's copy of the data set.
    total = int(x_train.astype(np.int64).sum() + x_test.astype(np.int64).sum())
    assert total == 561_718


def test_nearest_neighbour_accuracy_is_as_published():
    """1-NN on raw pixels reaches about 0.98 on this data set."""
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    train = x_train.reshape(len(x_train), -1).astype("float64")
    test = x_test.reshape(len(x_test), -1).astype("float64")
    distances = (test**2).sum(1)[:, None] - 2 * test @ train.T + (train**2).sum(1)
    accuracy = np.mean(y_train[distances.argmin(1)] == y_test)
    assert accuracy >= 0.97
