"""Saves models of every family on one backend, or loads them on the other.

Run as `python -m tests.cross_backend save|load FOLDER` with the backend in
`KERAS_BACKEND`; `tests/test_cross_backend.py` runs both in fresh processes.
`save` trains each model one epoch with its conformance case's data, saves
it as a `.keras` file and records its predictions and optimizer steps.
`load` loads each file, checks the predictions and the steps, and trains it
one more epoch.
"""

import importlib
import json
import os
import sys

import keras
import numpy as np

#: One conformance case per public model class, and a user's subclass.
CASES = (
    "test_conformance.TestSubclassForm",
    "test_conformance.TestTwoOptimizerModel",
    "test_generative_conformance.TestGAN",
    "test_generative_conformance.TestWGANGP",
    "test_generative_conformance.TestConditionalGAN",
    "test_generative_conformance.TestVAE",
    "test_generative_conformance.TestDiffusionModel",
    "test_generative_conformance.TestConditionalDiffusionModel",
    "test_self_supervised_conformance.TestSimCLR",
    "test_self_supervised_conformance.TestSimSiam",
    "test_self_supervised_conformance.TestBYOL",
    "test_self_supervised_conformance.TestBarlowTwins",
    "test_self_supervised_conformance.TestVICReg",
    "test_semi_supervised_conformance.TestDistiller",
    "test_semi_supervised_conformance.TestFixMatch",
    "test_semi_supervised_conformance.TestMeanTeacher",
    "test_robust_conformance.TestSharpnessAwareModel",
    "test_robust_conformance.TestAdversarialFGSM",
    "test_reinforcement_conformance.TestDQN",
    "test_reinforcement_conformance.TestActorCritic",
    "test_reinforcement_conformance.TestPPO",
    "test_reinforcement_conformance.TestPPOContinuous",
)


def case(name: str):
    module, cls = name.split(".")
    return getattr(importlib.import_module(f"tests.{module}"), cls)()


def steps(model) -> dict:
    optimizers = getattr(model, "optimizers", {"optimizer": model.optimizer})
    return {name: int(opt.iterations) for name, opt in optimizers.items()}


def predictions(test, model) -> list:
    outputs = model.predict(test.predict_inputs(), verbose=0)
    return [np.asarray(o) for o in keras.tree.flatten(outputs)]


def save(folder: str) -> None:
    record = {}
    for name in CASES:
        test = case(name)
        model = test._seeded_model()
        test._fit(model)
        model.save(os.path.join(folder, f"{name}.keras"))
        np.savez(os.path.join(folder, f"{name}.npz"), *predictions(test, model))
        record[name] = steps(model)
    with open(os.path.join(folder, "steps.json"), "w") as file:
        json.dump(record, file)


def load(folder: str) -> None:
    with open(os.path.join(folder, "steps.json")) as file:
        record = json.load(file)
    for name in CASES:
        test = case(name)
        model = keras.saving.load_model(os.path.join(folder, f"{name}.keras"))
        assert type(model).__name__ == type(test.build_model()).__name__, name
        saved = np.load(os.path.join(folder, f"{name}.npz"))
        for index, output in enumerate(predictions(test, model)):
            np.testing.assert_allclose(
                output,
                saved[f"arr_{index}"],
                atol=1e-4,
                rtol=1e-4,
                err_msg=f"{name}: predictions[{index}] after loading",
            )
        assert steps(model) == record[name], (name, steps(model), record[name])
        history = test._fit(model).history
        test._assert_finite(history, f"{name} fit after loading")
        trained = steps(model)
        for optimizer, count in record[name].items():
            assert trained[optimizer] > count, (name, optimizer, trained, count)
        print("loaded and trained", name, keras.backend.backend(), flush=True)


if __name__ == "__main__":
    {"save": save, "load": load}[sys.argv[1]](sys.argv[2])
