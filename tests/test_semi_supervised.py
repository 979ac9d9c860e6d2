"""Distiller, FixMatch, MeanTeacher and SemiSupervisedDataset against NumPy."""

import keras
import numpy as np
import pytest

from keras_custom import Distiller, FixMatch, MeanTeacher
from keras_custom.semi_supervised import SemiSupervisedDataset
from tests.models import digit_data


def linear(units=10, name=None):
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(units)], name=name)


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def logits_of(model, x):
    weights, bias = (w.astype("float64") for w in model.get_weights())
    return x.astype("float64") @ weights + bias


def cross_entropy(logits, labels, weights=None):
    per_example = -np.log(softmax(logits)[np.arange(len(labels)), labels])
    if weights is not None:
        per_example = per_example * weights
    return float(np.mean(per_example))


def test_distiller_losses_equal_numpy():
    keras.utils.set_random_seed(0)
    teacher, student = linear(name="teacher"), linear(name="student")
    distiller = Distiller(teacher, student, temperature=2.5, alpha=0.3)
    distiller.compile()
    x, y = digit_data(32)
    result = distiller.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    t, s = logits_of(teacher, x) / 2.5, logits_of(student, x) / 2.5
    p, q = softmax(t), softmax(s)
    kl = float(np.mean(np.sum(p * np.log(p / q), axis=1))) * 2.5**2
    student_loss = cross_entropy(logits_of(student, x), y)
    np.testing.assert_allclose(result["distillation_loss"], kl, rtol=1e-5)
    np.testing.assert_allclose(result["student_loss"], student_loss, rtol=1e-5)
    np.testing.assert_allclose(result["loss"], 0.3 * student_loss + 0.7 * kl, rtol=1e-5)


def test_distiller_step_follows_the_gradient_of_the_total_loss():
    # Only the total is differentiated, not the terms logged beside it.
    keras.utils.set_random_seed(0)
    teacher, student = linear(name="teacher"), linear(name="student")
    distiller = Distiller(teacher, student, temperature=2.5, alpha=0.3)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = digit_data(32)
    weights, bias = (w.astype("float64") for w in student.get_weights())
    logits = logits_of(student, x)
    distiller.fit(x, y, batch_size=32, verbose=0)
    p, q = softmax(logits_of(teacher, x) / 2.5), softmax(logits / 2.5)
    # d/dlogits of 0.3 * cross-entropy + 0.7 * 2.5**2 * KL(p || q), per example.
    g = (0.3 * (softmax(logits) - np.eye(10)[y]) + 0.7 * 2.5 * (q - p)) / len(x)
    new_weights, new_bias = student.get_weights()
    np.testing.assert_allclose(new_weights, weights - 0.5 * x.T @ g, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.5 * g.sum(axis=0), atol=1e-6)


def test_distiller_trains_only_the_student():
    keras.utils.set_random_seed(0)
    teacher, student = linear(name="teacher"), linear(name="student")
    teacher_weights = teacher.get_weights()
    distiller = Distiller(teacher, student)
    distiller.compile(optimizer="sgd")
    x, y = digit_data(32)
    distiller.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for before, after in zip(teacher_weights, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not teacher.trainable
    np.testing.assert_allclose(
        distiller.predict(x, verbose=0), student.predict(x, verbose=0), atol=1e-6
    )
    with pytest.raises(ValueError, match="DistillationLoss"):
        Distiller(teacher, student, distillation_loss="kl_divergence")
    with pytest.raises(ValueError, match="alpha"):
        Distiller(teacher, student, alpha=1.5)


def test_fixmatch_losses_equal_numpy():
    keras.utils.set_random_seed(0)
    classifier = linear()
    classifier.layers[0].kernel.assign(classifier.layers[0].kernel * 20.0)
    model = FixMatch(
        classifier,
        keras.layers.Identity(),
        keras.layers.Identity(),
        threshold=0.6,
        unlabeled_weight=3.0,
    )
    model.compile()
    x, y = digit_data(64)
    x_labeled, x_unlabeled, labels = x[:32], x[32:], y[:32]
    result = model.evaluate(
        (x_labeled, x_unlabeled), labels, batch_size=32, verbose=0, return_dict=True
    )
    probabilities = softmax(logits_of(classifier, x_unlabeled))
    mask = (probabilities.max(axis=1) >= 0.6).astype("float64")
    pseudo = probabilities.argmax(axis=1)
    supervised = cross_entropy(logits_of(classifier, x_labeled), labels)
    unsupervised = cross_entropy(logits_of(classifier, x_unlabeled), pseudo, mask)
    assert 0.0 < mask.mean() < 1.0  # the threshold matters in this check
    np.testing.assert_allclose(result["mask_rate"], mask.mean(), rtol=1e-6)
    np.testing.assert_allclose(result["supervised_loss"], supervised, rtol=1e-5)
    np.testing.assert_allclose(result["unsupervised_loss"], unsupervised, rtol=1e-5)
    np.testing.assert_allclose(
        result["loss"], supervised + 3.0 * unsupervised, rtol=1e-5
    )
    plain = model.evaluate(x_labeled, labels, verbose=0, return_dict=True)
    assert set(plain) == {"loss", "supervised_loss"}
    np.testing.assert_allclose(plain["loss"], supervised, rtol=1e-5)


def test_mean_teacher_follows_the_student_and_evaluates_with_the_teacher():
    keras.utils.set_random_seed(0)
    student = linear()
    model = MeanTeacher(
        student,
        ema_decay=0.8,
        consistency_weight=2.0,
        augmenter=keras.layers.Identity(),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = digit_data(64)
    x_labeled, x_unlabeled, labels = x[:32], x[32:], y[:32]
    teacher_before = [np.array(w) for w in model.teacher.target_weights()]
    model.fit((x_labeled, x_unlabeled), labels, batch_size=32, shuffle=False, verbose=0)
    for target, before, source in zip(
        model.teacher.target_weights(), teacher_before, student.weights, strict=True
    ):
        np.testing.assert_allclose(
            np.array(target), 0.8 * before + 0.2 * np.array(source), atol=1e-7
        )
    teacher = model.teacher.parts[0]
    result = model.evaluate(
        (x_labeled, x_unlabeled), labels, batch_size=32, verbose=0, return_dict=True
    )
    teacher_probabilities = softmax(logits_of(teacher, x))
    student_probabilities = softmax(logits_of(student, x))
    consistency = float(np.mean((teacher_probabilities - student_probabilities) ** 2))
    supervised = cross_entropy(logits_of(teacher, x_labeled), labels)
    np.testing.assert_allclose(result["consistency_loss"], consistency, rtol=1e-5)
    np.testing.assert_allclose(result["supervised_loss"], supervised, rtol=1e-5)
    np.testing.assert_allclose(
        result["loss"], supervised + 2.0 * consistency, rtol=1e-5
    )


def test_semi_supervised_dataset_covers_both_sets():
    x_labeled = np.arange(10, dtype="float32")[:, None]
    x_unlabeled = 100 + np.arange(53, dtype="float32")[:, None]
    data = SemiSupervisedDataset(
        x_labeled, np.arange(10), x_unlabeled, batch_size=4, unlabeled_ratio=3, seed=0
    )
    assert len(data) == 5  # ceil(53 / 12)
    labeled, unlabeled = [], []
    for index in range(len(data)):
        (batch_labeled, batch_unlabeled), labels = data[index]
        assert len(batch_labeled) == 4 and len(labels) == 4
        np.testing.assert_array_equal(batch_labeled[:, 0], labels)
        labeled.extend(labels)
        unlabeled.extend(batch_unlabeled[:, 0])
    assert sorted(unlabeled) == list(x_unlabeled[:, 0])  # each once per epoch
    counts = np.bincount(labeled, minlength=10)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1
    data.on_epoch_end()
    assert not np.array_equal(data[0][0][1], x_unlabeled[:12])
    with pytest.raises(IndexError):
        data[5]
    with pytest.raises(ValueError, match="x_labeled"):
        SemiSupervisedDataset(x_labeled, np.arange(9), x_unlabeled)
