"""Scores of a frozen encoder's features on the digits (NumPy).

The self-supervised quality tests, the demo and the notebook score the
features the self-supervised recipes (`keras_custom.recipes.self_supervised`)
learn the same way:

- `embedding_std`: the spread of the l2-normalized features, which detects
  a collapsed representation;
- `knn_accuracy`: a k-nearest-neighbour classifier (cosine similarity) on
  all the training labels;
- `few_shot_linear_accuracy`: a linear classifier fit on a few labeled
  training digits per class;
- `evaluate_encoder`: the three on the digits, from an encoder or a
  self-supervised model (`encoder_features`).

Example:

```python
from keras_custom.recipes import self_supervised, self_supervised_scores

untrained = self_supervised.build_self_supervised("simclr", seed=0)
self_supervised_scores.evaluate_encoder(untrained)["few_shot_accuracy"]  # 0.7
```
"""

import math

import keras
import numpy as np

from keras_custom.recipes.data import load_digits

#: Scores: neighbours of `knn_accuracy`, labeled digits per class of
#: `few_shot_linear_accuracy`, and the factor of the collapse threshold
#: `COLLAPSE_STD_FACTOR / sqrt(d)` of `embedding_std`.
KNN_NEIGHBORS = 5
FEW_SHOT_PER_CLASS = 10
COLLAPSE_STD_FACTOR = 0.5


def _l2_normalize(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2:
        raise ValueError(f"Features must be 2D (count, d); got {features.shape}.")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def embedding_std(features: np.ndarray) -> dict[str, float]:
    """Per-dimension standard deviation of the l2-normalized features.

    Each feature vector is divided by its l2 norm, then the standard
    deviation of each of the `d` dimensions is taken over the examples. A
    representation that collapsed to one point has 0 in every dimension;
    unit vectors spread like an isotropic Gaussian have about `1 / sqrt(d)`.
    The collapse criterion is on the **mean** over the dimensions (as in the
    SimSiam paper's collapse figure, section 4.1): at least
    `COLLAPSE_STD_FACTOR / sqrt(d)`. The minimum is reported too, to show
    dead or constant dimensions. The mean detects a collapse to a point, not
    a collapse to a subspace (a line of centered features has a mean near
    `0.8 / sqrt(d)`); the k-nearest-neighbour and few-shot scores catch
    the rest.

    Args:
        features: Array `(count, d)` of features.

    Returns:
        Dict of floats: `"mean"` and `"min"`, the mean and the minimum over
        the dimensions of the standard deviations, and `"threshold"`,
        `COLLAPSE_STD_FACTOR / sqrt(d)`.

    Example:

    ```python
    import numpy as np
    from keras_custom.recipes.self_supervised_scores import embedding_std

    rng = np.random.default_rng(0)
    embedding_std(rng.normal(size=(1000, 16)))["mean"]  # about 1 / 4
    embedding_std(np.ones((1000, 16)))["mean"]  # 0.0
    ```
    """
    stds = np.std(_l2_normalize(features), axis=0)
    return {
        "mean": float(np.mean(stds)),
        "min": float(np.min(stds)),
        "threshold": COLLAPSE_STD_FACTOR / math.sqrt(stds.shape[0]),
    }


def knn_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    k: int = KNN_NEIGHBORS,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier with cosine similarity.

    Each test example gets the majority class of its `k` most
    cosine-similar training examples; a tie between classes goes to the one
    with the larger sum of similarities.

    Args:
        train_features: Array `(n, d)` of the labeled examples' features.
        train_labels: Integer class ids `(n,)`.
        test_features: Array `(m, d)` of the features to classify.
        test_labels: Their true class ids `(m,)`.
        k: Number of neighbours.

    Returns:
        The fraction of test examples classified correctly.
    """
    train = _l2_normalize(train_features)
    test = _l2_normalize(test_features)
    train_labels = np.asarray(train_labels).astype("int64").reshape(-1)
    test_labels = np.asarray(test_labels).astype("int64").reshape(-1)
    if not 1 <= k <= len(train):
        raise ValueError(f"`k` must be in [1, {len(train)}]; got {k}.")
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    correct = 0
    for start in range(0, len(test), 1024):
        similarity = test[start : start + 1024] @ train.T
        rows = np.arange(len(similarity))[:, None]
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(similarity), num_classes))
        sums = np.zeros((len(similarity), num_classes))
        np.add.at(votes, (rows, train_labels[nearest]), 1.0)
        np.add.at(sums, (rows, train_labels[nearest]), similarity[rows, nearest])
        # Counts are integers and sums are in [-k, k]: votes decide first.
        predictions = np.argmax(votes * (2 * k + 1) + sums, axis=1)
        correct += int(np.sum(predictions == test_labels[start : start + 1024]))
    return correct / len(test)


def _fit_softmax_regression(
    x: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    l2: float,
    tolerance: float = 1e-6,
    max_iterations: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by accelerated gradient descent.

    Minimizes the mean cross-entropy plus `l2 / 2 * ||kernel||^2` (the bias
    is not penalized) with Nesterov's method and adaptive restart, until
    the largest gradient entry is below `tolerance`.
    """
    count, dim = x.shape
    inputs = np.concatenate([x, np.ones((count, 1))], axis=1)
    onehot = np.eye(num_classes)[labels]
    penalty = np.ones((dim + 1, 1))
    penalty[-1] = 0.0
    # The softmax cross-entropy's Hessian is at most 1/2 X^T X / n.
    step = 1.0 / (0.5 * np.linalg.norm(inputs, 2) ** 2 / count + l2)
    weights = np.zeros((dim + 1, num_classes))
    previous, momentum = weights, 1.0

    def gradient(w):
        logits = inputs @ w
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return inputs.T @ (probabilities - onehot) / count + l2 * penalty * w

    point = weights
    for _ in range(max_iterations):
        if np.max(np.abs(gradient(weights))) < tolerance:
            break
        grad = gradient(point)
        weights, previous = point - step * grad, weights
        if np.sum(grad * (weights - previous)) > 0:  # restart the momentum
            momentum = 1.0
        next_momentum = (1.0 + math.sqrt(1.0 + 4.0 * momentum**2)) / 2.0
        point = weights + (momentum - 1.0) / next_momentum * (weights - previous)
        momentum = next_momentum
    return weights[:-1], weights[-1]


def few_shot_linear_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    per_class: int = FEW_SHOT_PER_CLASS,
    seed: int = 0,
    l2: float = 0.01,
) -> float:
    """Accuracy of a linear classifier fit on a few labeled examples per class.

    Picks `per_class` training examples of each class at random (NumPy
    generator seeded with `seed`), standardizes the features with the mean
    and standard deviation of those examples, fits a multinomial logistic
    regression to convergence (mean cross-entropy plus `l2 / 2` times the
    squared kernel norm: with 100 examples, `l2=0.01` is scikit-learn's
    default `C=1`), and scores it on the test features, standardized the
    same way.

    Args:
        train_features: Array `(n, d)` to pick the labeled examples from.
        train_labels: Their integer class ids `(n,)`; every class needs
            `per_class` examples.
        test_features: Array `(m, d)` of the features to classify.
        test_labels: Their true class ids `(m,)`.
        per_class: Labeled examples per class.
        seed: Seed of the choice of the labeled examples.
        l2: Weight of the l2 penalty on the kernel.

    Returns:
        The fraction of test examples classified correctly.
    """
    train_features = np.asarray(train_features, dtype="float64")
    test_features = np.asarray(test_features, dtype="float64")
    train_labels = np.asarray(train_labels).astype("int64").reshape(-1)
    test_labels = np.asarray(test_labels).astype("int64").reshape(-1)
    classes = np.unique(train_labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in classes:
        candidates = np.flatnonzero(train_labels == label)
        if len(candidates) < per_class:
            raise ValueError(
                f"Class {label} has {len(candidates)} examples; {per_class} needed."
            )
        chosen.append(rng.choice(candidates, per_class, replace=False))
    chosen = np.concatenate(chosen)
    x, labels = train_features[chosen], np.searchsorted(classes, train_labels[chosen])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    kernel, bias = _fit_softmax_regression((x - mean) / std, labels, len(classes), l2)
    predictions = classes[np.argmax((test_features - mean) / std @ kernel + bias, 1)]
    return float(np.mean(predictions == test_labels))


def encoder_features(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Features of `images`, from an encoder or a self-supervised model.

    Args:
        model: An encoder, or a self-supervised model (whose `predict`
            returns its encoder's features).
        images: Images `(count, 8, 8, 1)` in [0, 1].

    Returns:
        Array `(count, d)` of features, in inference mode.
    """
    return np.asarray(model.predict(images, batch_size=512, verbose=0))


def evaluate_encoder(model: keras.Model, few_shot_seed: int = 0) -> dict[str, float]:
    """The three scores of a frozen encoder on the digits.

    Features of the 1,437 training and 360 test digits, then
    `embedding_std` of the training features, `knn_accuracy` (5 cosine
    neighbours among the training digits, all labeled) and
    `few_shot_linear_accuracy` (10 labeled training digits per class, chosen
    with `few_shot_seed`), both on the test digits.

    Args:
        model: An encoder, or a self-supervised model.
        few_shot_seed: Seed of the choice of the few labeled digits.

    Returns:
        Dict of floats: `"embedding_std"` (mean over dimensions),
        `"min_embedding_std"`, `"collapse_threshold"` (`0.5 / sqrt(d)`),
        `"knn_accuracy"` and `"few_shot_accuracy"`.
    """
    (x_train, y_train), (x_test, y_test) = load_digits()
    features = encoder_features(model, np.concatenate([x_train, x_test]))
    train, test = features[: len(x_train)], features[len(x_train) :]
    spread = embedding_std(train)
    return {
        "embedding_std": spread["mean"],
        "min_embedding_std": spread["min"],
        "collapse_threshold": spread["threshold"],
        "knn_accuracy": knn_accuracy(train, y_train, test, y_test),
        "few_shot_accuracy": few_shot_linear_accuracy(
            train, y_train, test, y_test, seed=few_shot_seed
        ),
    }
