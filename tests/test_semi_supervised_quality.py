"""Distillation and semi-supervised learning pay off on the digits.

Each model is trained by its recipe in `keras_custom.recipes.distillation` or
`keras_custom.recipes.semi_supervised` (the ones the demos and notebooks use),
with fixed seeds, and scored by its accuracy on the 360 test digits:

- Distiller: a small student distilled from a teacher with at least 0.97
  test accuracy does at least as well as the same student trained alone
  (same data, optimizer and epochs), averaged over 3 seeds.
- FixMatch and MeanTeacher, with 5 labels per class (50 labeled training
  digits) and the other training digits unlabeled, are scored by the share
  of the gap they close between the same network trained on the 50 labels
  alone (with the weak augmentation) and trained on all 1,437 labels
  (`semi_supervised.gap_closed`), averaged over seeds 0, 1 and 2, each seed
  against its own baseline and full supervision: FixMatch at least 75 %,
  MeanTeacher at least 50 %.
"""

import numpy as np
import pytest

from keras_custom import Distiller, FixMatch, MeanTeacher
from keras_custom.recipes import classifiers, data, distillation, semi_supervised

SEED = 0
DISTILLATION_SEEDS = (0, 1, 2)
SEMI_SUPERVISED_SEEDS = (0, 1, 2)

TEACHER_MIN_ACCURACY = 0.97
#: Shares of the gap from the 50-label baseline to full supervision, averaged
#: over `SEMI_SUPERVISED_SEEDS`. Measured: FixMatch 0.91 (1.03, 0.77, 0.93
#: for seeds 0, 1, 2), MeanTeacher 0.91 (0.92, 0.74, 1.07); the issue sets 0.75
#: and 0.50, the goal beyond them 0.85.
FIXMATCH_MIN_GAP_CLOSED = 0.75
MEAN_TEACHER_MIN_GAP_CLOSED = 0.50
#: Accuracies are multiples of 1/360: compare them up to rounding.
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def test_digits():
    """`(x_test, y_test)`: the 360 test digits, `(360, 8, 8, 1)` in [0, 1]."""
    _, (x_test, y_test) = data.load_digits()
    return x_test, y_test


@pytest.fixture(scope="module")
def references(test_digits):
    """Seed -> test accuracies of the 50-label baseline and full supervision."""
    return {
        seed: (
            classifiers.accuracy(
                semi_supervised.train_supervised_baseline(seed), *test_digits
            ),
            classifiers.accuracy(
                semi_supervised.train_fully_supervised(seed), *test_digits
            ),
        )
        for seed in SEMI_SUPERVISED_SEEDS
    }


def _gaps_closed(accuracies: dict, references: dict) -> tuple[float, dict]:
    """The mean share of the gap closed, and a report per seed."""
    gaps = {
        seed: semi_supervised.gap_closed(accuracy, *references[seed])
        for seed, accuracy in accuracies.items()
    }
    report = {
        seed: {
            "accuracy": round(accuracies[seed], 4),
            "baseline": round(references[seed][0], 4),
            "full_supervision": round(references[seed][1], 4),
            "gap_closed": round(gaps[seed], 3),
        }
        for seed in accuracies
    }
    return float(np.mean(list(gaps.values()))), report


# ----------------------------------------------------------------------
# The split (fast)
# ----------------------------------------------------------------------


def test_label_split_has_five_labels_per_class():
    x_labeled, y_labeled, x_unlabeled = data.label_split()
    (x_train, _), _ = data.load_digits()
    assert x_labeled.shape == (50, 8, 8, 1)
    assert np.array_equal(np.bincount(y_labeled, minlength=10), np.full(10, 5))
    assert len(x_labeled) + len(x_unlabeled) == len(x_train)
    # The labeled digits are not among the unlabeled ones.
    flat_unlabeled = {image.tobytes() for image in x_unlabeled}
    assert not any(image.tobytes() in flat_unlabeled for image in x_labeled)
    # The split is fixed.
    again = data.label_split()
    assert np.array_equal(again[0], x_labeled)
    assert np.array_equal(again[1], y_labeled)


# ----------------------------------------------------------------------
# Trained models (slow)
# ----------------------------------------------------------------------


@pytest.mark.slow
def test_distilled_student_does_at_least_as_well_as_student_alone(test_digits):
    teacher = distillation.train_teacher(SEED)
    teacher_accuracy = classifiers.accuracy(teacher, *test_digits)
    assert teacher_accuracy >= TEACHER_MIN_ACCURACY, f"teacher {teacher_accuracy}"
    distilled, alone = [], []
    for seed in DISTILLATION_SEEDS:
        distiller = distillation.train_distiller(seed, teacher=teacher)
        assert isinstance(distiller, Distiller)
        distilled.append(classifiers.accuracy(distiller.student, *test_digits))
        alone.append(
            classifiers.accuracy(distillation.train_student_alone(seed), *test_digits)
        )
    report = {
        "teacher": round(teacher_accuracy, 4),
        "distilled": np.round(distilled, 4).tolist(),
        "alone": np.round(alone, 4).tolist(),
    }
    assert np.mean(distilled) >= np.mean(alone) - TOLERANCE, report


def test_gap_closed_is_the_share_between_baseline_and_full_supervision():
    assert semi_supervised.gap_closed(0.9, 0.8, 1.0) == pytest.approx(0.5)
    assert semi_supervised.gap_closed(1.0, 0.8, 1.0) == pytest.approx(1.0)
    assert semi_supervised.gap_closed(0.7, 0.8, 1.0) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="Full supervision must beat"):
        semi_supervised.gap_closed(0.9, 0.9, 0.9)


@pytest.mark.slow
def test_full_supervision_is_above_the_baseline(references):
    for seed, (baseline, full_supervision) in references.items():
        assert full_supervision >= TEACHER_MIN_ACCURACY, seed
        assert full_supervision >= baseline + 0.05, seed


@pytest.mark.slow
def test_fixmatch_closes_most_of_the_gap_to_full_supervision(test_digits, references):
    accuracies = {}
    for seed in SEMI_SUPERVISED_SEEDS:
        # Validated on the test digits as in the demo and notebook 04, so
        # their run of seed 0 is this one (`keras_custom.recipes.cache`).
        model = semi_supervised.train_fixmatch(seed, validation_data=test_digits)
        assert isinstance(model, FixMatch)
        accuracies[seed] = classifiers.accuracy(model.model, *test_digits)
    mean_gap, report = _gaps_closed(accuracies, references)
    assert mean_gap >= FIXMATCH_MIN_GAP_CLOSED - TOLERANCE, report


@pytest.mark.slow
def test_mean_teacher_closes_half_the_gap_to_full_supervision(test_digits, references):
    accuracies = {}
    for seed in SEMI_SUPERVISED_SEEDS:
        model = semi_supervised.train_mean_teacher(seed)
        assert isinstance(model, MeanTeacher)
        # A MeanTeacher predicts with its teacher.
        accuracies[seed] = classifiers.accuracy(model, *test_digits)
    mean_gap, report = _gaps_closed(accuracies, references)
    assert mean_gap >= MEAN_TEACHER_MIN_GAP_CLOSED - TOLERANCE, report
