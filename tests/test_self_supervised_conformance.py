"""SimCLR, SimSiam, BYOL, Barlow Twins and VICReg pass the conformance harness."""

import keras
import numpy as np

from keras_custom import BYOL, BarlowTwins, SimCLR, SimSiam, VICReg
from keras_custom.layers import PredictionHead, ProjectionHead
from keras_custom.schedules import CosineIncrease
from keras_custom.self_supervised import small_image_augmenter
from keras_custom.testing import ConformanceTests
from tests.models import digit_data

FEATURES, PROJECTION = 16, 8


def digit_images(count: int = 64):
    x, y = digit_data(count)
    return x.reshape(count, 8, 8, 1), y


def encoder():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(FEATURES, activation="relu"),
        ],
        name="encoder",
    )


def built(layer, input_dim):
    layer.build((None, input_dim))
    return layer


def projector(**kwargs):
    return built(ProjectionHead(PROJECTION, hidden_units=16, **kwargs), FEATURES)


def predictor():
    return built(PredictionHead(PROJECTION, hidden_units=8), PROJECTION)


def augmenter():
    return small_image_augmenter(seed=11)


def image_bad_inputs(x, y=None):
    """Images of the wrong shape, and a pair of image arrays."""
    return [
        (
            {"x": x.reshape(-1, 64), "y": y},
            r"expects inputs of shape \(batch, 8, 8, 1\)\. Got inputs of shape "
            r"\(16, 64\)",
        ),
        (
            {"x": (x, x), "y": y},
            r"takes its inputs as one tensor of shape \(batch, 8, 8, 1\)\. Got a "
            r"tuple of 2 parts",
        ),
    ]


class SelfSupervisedTests(ConformanceTests):
    log_keys = {"loss", "probe_loss", "probe_accuracy"}
    draws_random_numbers = True
    deterministic_evaluation = False

    def compile_kwargs(self):
        # SGD, so that one device and MirroredStrategy can be compared to
        # 1e-5: Adam divides by the gradient's size, so it turns float noise
        # (batch statistics summed in another order) in gradients close to
        # zero into updates of its full step size.
        return {
            "optimizer": keras.optimizers.SGD(0.05),
            "probe_optimizer": keras.optimizers.SGD(0.1),
        }

    def data(self):
        return digit_images()

    def bad_inputs(self):
        x, y = digit_images()
        return [
            *super().bad_inputs(),
            *image_bad_inputs(x, y),
            (
                {"x": x, "y": np.eye(10)[y]},
                r"takes integer class ids of shape \(batch,\) or \(batch, 1\) "
                r"as labels of the online probe\. Got labels of the online probe "
                r"of shape \(16, 10\)",
            ),
            (
                {"x": x, "y": y.astype("float32")},
                r"takes integer class ids as labels of the online probe\. Got "
                r"labels of the online probe of dtype float32",
            ),
        ]


class TestSimCLR(SelfSupervisedTests):
    def build_model(self):
        return SimCLR(encoder(), projector(), augmenter(), 0.5, num_classes=10)


class TestSimCLRWithoutLabels(SelfSupervisedTests):
    """No labels, no probe: the model logs its loss alone."""

    log_keys = {"loss"}

    def build_model(self):
        return SimCLR(encoder(), projector(), augmenter(), temperature=0.2)

    def data(self):
        return (digit_images()[0],)

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.SGD(0.05)}

    def bad_inputs(self):
        x, y = digit_images()
        return [
            *ConformanceTests.bad_inputs(self),
            *image_bad_inputs(x),
            ({"x": x, "y": y}, r"no online probe.*num_classes"),
        ]


class TestSimSiam(SelfSupervisedTests):
    def build_model(self):
        return SimSiam(
            encoder(),
            projector(output_batch_norm=True),
            predictor(),
            augmenter(),
            num_classes=10,
        )


class TestBYOL(SelfSupervisedTests):
    def build_model(self):
        return BYOL(
            encoder(),
            projector(),
            predictor(),
            augmenter(),
            ema_decay=CosineIncrease(0.9, 1.0, steps=8),
            num_classes=10,
        )


class TestBarlowTwins(SelfSupervisedTests):
    def build_model(self):
        return BarlowTwins(
            encoder(), projector(), augmenter(), redundancy_weight=0.1, num_classes=10
        )


class TestVICReg(SelfSupervisedTests):
    log_keys = SelfSupervisedTests.log_keys | {
        "invariance_loss",
        "variance_loss",
        "covariance_loss",
    }

    def build_model(self):
        return VICReg(
            encoder(),
            projector(),
            augmenter(),
            invariance_weight=10.0,
            variance_weight=20.0,
            covariance_weight=2.0,
            num_classes=10,
        )
