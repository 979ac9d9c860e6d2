"""Distiller, FixMatch and MeanTeacher pass the conformance harness."""

import keras
import numpy as np

from keras_custom import Distiller, FixMatch, MeanTeacher
from keras_custom.testing import ConformanceTests
from tests.models import (
    digit_data,
    functional_shape_error,
    mlp,
    supervised_bad_inputs,
    wrong_width,
)


def semi_supervised_data():
    """32 labeled and 32 unlabeled digits, as `((x_l, x_u), y_l)`."""
    x, y = digit_data(96)
    return (x[:64:2], x[64:]), y[:64:2]


def sparse_cross_entropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class TestDistiller(ConformanceTests):
    log_keys = {"loss", "student_loss", "distillation_loss", "accuracy"}

    def build_model(self):
        return Distiller(
            mlp("teacher", units=32),
            mlp("student", units=8),
            temperature=4.0,
            alpha=0.3,
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(1e-2), "metrics": ["accuracy"]}

    def frozen_variables(self, model):
        return model.teacher.weights

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return [
            *super().bad_inputs(),
            *supervised_bad_inputs(x, y, functional_shape_error("student")),
            (
                {"x": x, "y": np.eye(10, dtype="float32")[y]},
                r"target\.shape=\(16, 10\), output\.shape=\(16, 10\)",
            ),
        ]


def named_mlp(name, units):
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(units, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(hidden), name=name)


class TestDistillerWithKerasFeatureLoss(TestDistiller):
    """Keras's own `FeatureDistillation` on named layers, with a loss by name."""

    def build_model(self):
        return Distiller(
            named_mlp("teacher", units=8),
            named_mlp("student", units=8),
            alpha=0.5,
            distillation_loss=[
                keras.distillation.LogitsDistillation(temperature=2.0),
                keras.distillation.FeatureDistillation(
                    loss="mse",
                    teacher_layer_name="hidden",
                    student_layer_name="hidden",
                ),
            ],
        )

    def test_uses_kl_divergence_instance(self):
        model = self.build_model()
        logits_loss = model._distillation_losses[0]
        assert isinstance(logits_loss.loss, keras.losses.KLDivergence)


class SemiSupervisedTests(ConformanceTests):
    draws_random_numbers = True
    deterministic_evaluation = False

    def data(self):
        return semi_supervised_data()

    def predict_inputs(self):
        return self.data()[0][0][: self.batch_size]

    def bad_inputs(self):
        (x_labeled, x_unlabeled), y = semi_supervised_data()
        return [
            *super().bad_inputs(),
            ({"x": x_labeled, "y": y}, r"x_labeled, x_unlabeled"),
            ({"x": (x_labeled, x_unlabeled)}, r"no labels"),
            (
                {"x": (x_labeled, x_unlabeled, x_unlabeled), "y": y},
                r"takes batches `\(\(x_labeled, x_unlabeled\), y_labeled\)`; got "
                r"inputs with 3 parts",
            ),
            (
                {"x": (x_labeled, wrong_width(x_unlabeled)), "y": y},
                r"expects unlabeled inputs of shape \(batch, 64\)\. Got unlabeled "
                r"inputs of shape \(16, 67\)",
            ),
            (
                {"x": (wrong_width(x_labeled), x_unlabeled), "y": y},
                r"expects labeled inputs of shape \(batch, 64\)\. Got labeled "
                r"inputs of shape \(16, 67\)",
            ),
            (
                {"x": (x_labeled, x_unlabeled), "y": np.eye(10, dtype="float32")[y]},
                r"target\.shape=\(16, 10\), output\.shape=\(16, 10\)",
            ),
        ]


class TestFixMatch(SemiSupervisedTests):
    log_keys = {"loss", "supervised_loss", "unsupervised_loss", "mask_rate", "accuracy"}

    def build_model(self):
        return FixMatch(
            mlp("classifier"),
            keras.layers.GaussianNoise(0.02, seed=1),
            keras.layers.GaussianNoise(0.3, seed=2),
            threshold=keras.optimizers.schedules.PolynomialDecay(0.9, 6, 0.3),
            unlabeled_weight=2.0,
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(2e-2), "metrics": ["accuracy"]}


class TestMeanTeacher(SemiSupervisedTests):
    log_keys = {"loss", "supervised_loss", "consistency_loss"}

    def build_model(self):
        return MeanTeacher(
            mlp("student"),
            ema_decay=0.9,
            consistency_weight=keras.optimizers.schedules.PolynomialDecay(0.0, 8, 5.0),
            augmenter=keras.layers.GaussianNoise(0.1, seed=3),
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.SGD(0.1)}

    def test_teacher_predicts(self):
        model = self._seeded_model()
        self._fit(model)
        x = self.predict_inputs()
        np.testing.assert_allclose(
            model.predict(x, verbose=0), model.teacher(x), atol=1e-6
        )
        assert not np.allclose(model.teacher(x), model.student(x))
