"""SharpnessAwareModel and AdversarialModel pass the conformance harness."""

import keras

from keras_custom import AdversarialModel, SharpnessAwareModel
from keras_custom.testing import ConformanceTests
from tests.models import (
    digit_data,
    functional_shape_error,
    mlp,
    supervised_bad_inputs,
)


def sparse_cross_entropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class TestSharpnessAwareModel(ConformanceTests):
    log_keys = {"loss", "accuracy"}

    def build_model(self):
        return SharpnessAwareModel(mlp("classifier"), rho=0.1)

    def compile_kwargs(self):
        return {
            "optimizer": keras.optimizers.SGD(0.1, momentum=0.9),
            "loss": sparse_cross_entropy(),
            "metrics": ["accuracy"],
        }

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        return super().bad_inputs() + supervised_bad_inputs(
            x, y, functional_shape_error("classifier")
        )


class TestAdversarialFGSM(ConformanceTests):
    log_keys = {
        "loss",
        "clean_loss",
        "adversarial_loss",
        "clean_accuracy",
        "adversarial_accuracy",
    }

    def build_model(self):
        return AdversarialModel(
            mlp("classifier"),
            epsilon=0.1,
            attack="fgsm",
            loss=sparse_cross_entropy(),
        )

    def compile_kwargs(self):
        return {"optimizer": keras.optimizers.Adam(1e-2)}

    def data(self):
        return digit_data()

    def bad_inputs(self):
        x, y = self.data()
        shape_error = (
            r"AdversarialModel '\w+' expects inputs of shape \(batch, 64\)\. Got "
            r"inputs of shape \(16, 67\)"
        )
        return [
            *super().bad_inputs(),
            *supervised_bad_inputs(x, y, shape_error),
            (
                {"x": (x, x), "y": y},
                r"takes its inputs as one tensor of shape \(batch, 64\)\. Got a "
                r"tuple of 2 parts",
            ),
        ]


class TestAdversarialPGD(TestAdversarialFGSM):
    draws_random_numbers = True
    deterministic_evaluation = False

    def build_model(self):
        return AdversarialModel(
            mlp("classifier"),
            epsilon=0.1,
            attack="pgd",
            steps=3,
            adversarial_weight=1.0,
            loss=sparse_cross_entropy(),
            seed=4,
        )
