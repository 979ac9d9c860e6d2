"""`SemiSupervisedDataset`: labeled and unlabeled batches zipped for `fit`."""

import math

import keras
import numpy as np


class SemiSupervisedDataset(keras.utils.PyDataset):
    """Zips a small labeled set with a large unlabeled one for `fit()`.

    Each batch is `((x_labeled, x_unlabeled), y_labeled)`: `batch_size`
    labeled examples and `unlabeled_ratio * batch_size` unlabeled ones (the
    FixMatch paper's `mu`). An epoch is one pass over the unlabeled set; the
    labeled set is reshuffled and repeated as often as needed. This is the
    batch structure `FixMatch` and `MeanTeacher` train on; the same
    structure from NumPy arrays is `fit(x=(x_labeled, x_unlabeled),
    y=y_labeled)` (equal lengths and batch sizes), and from `tf.data`, a
    dataset of `((x_labeled, x_unlabeled), y_labeled)` elements.

    Args:
        x_labeled: Labeled inputs, an array `(n_labeled, ...)`.
        y_labeled: Their labels, `(n_labeled, ...)`.
        x_unlabeled: Unlabeled inputs, `(n_unlabeled, ...)`.
        batch_size: Labeled examples per batch.
        unlabeled_ratio: Unlabeled examples per labeled example in a batch.
        shuffle: Whether to reshuffle both sets every epoch.
        seed: Seed of the shuffling.
        **kwargs: Forwarded to `keras.utils.PyDataset` (`workers`, ...).

    Example:

    ```python
    import numpy as np
    from keras_custom.semi_supervised import SemiSupervisedDataset

    rng = np.random.default_rng(0)
    data = SemiSupervisedDataset(rng.normal(size=(20, 4)), np.arange(20) % 2,
                                 rng.normal(size=(100, 4)), batch_size=4,
                                 unlabeled_ratio=3, seed=0)
    (x_labeled, x_unlabeled), y_labeled = data[0]
    len(data), x_labeled.shape, x_unlabeled.shape  # (9, (4, 4), (12, 4))
    ```
    """

    def __init__(
        self,
        x_labeled,
        y_labeled,
        x_unlabeled,
        batch_size: int = 32,
        unlabeled_ratio: int = 7,
        shuffle: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.x_labeled = np.asarray(x_labeled)
        self.y_labeled = np.asarray(y_labeled)
        self.x_unlabeled = np.asarray(x_unlabeled)
        if len(self.x_labeled) != len(self.y_labeled):
            raise ValueError(
                f"`x_labeled` has {len(self.x_labeled)} examples but `y_labeled` "
                f"has {len(self.y_labeled)}."
            )
        if len(self.x_labeled) == 0 or len(self.x_unlabeled) == 0:
            raise ValueError("Both the labeled and the unlabeled set need examples.")
        if self.x_labeled.shape[1:] != self.x_unlabeled.shape[1:]:
            raise ValueError(
                f"Labeled inputs have shape {self.x_labeled.shape[1:]} per "
                f"example and unlabeled ones {self.x_unlabeled.shape[1:]}."
            )
        if int(batch_size) < 1 or int(unlabeled_ratio) < 1:
            raise ValueError("`batch_size` and `unlabeled_ratio` must be >= 1.")
        self.batch_size = int(batch_size)
        self.unlabeled_ratio = int(unlabeled_ratio)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._unlabeled_order = np.arange(len(self.x_unlabeled))
        self._labeled_order = np.arange(len(self.x_labeled))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(
            len(self.x_unlabeled) / (self.batch_size * self.unlabeled_ratio)
        )

    def _labeled_indices(self, index: int) -> np.ndarray:
        start = index * self.batch_size
        return self._labeled_stream[start : start + self.batch_size]

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} of {len(self)}.")
        size = self.batch_size * self.unlabeled_ratio
        unlabeled = self._unlabeled_order[index * size : (index + 1) * size]
        labeled = self._labeled_indices(index)
        return (
            (self.x_labeled[labeled], self.x_unlabeled[unlabeled]),
            self.y_labeled[labeled],
        )

    def on_epoch_end(self) -> None:
        count = len(self) * self.batch_size
        repeats = math.ceil(count / len(self.x_labeled))
        if self.shuffle:
            self._rng.shuffle(self._unlabeled_order)
            stream = [
                self._rng.permutation(len(self.x_labeled)) for _ in range(repeats)
            ]
        else:
            stream = [self._labeled_order] * repeats
        self._labeled_stream = np.concatenate(stream)
