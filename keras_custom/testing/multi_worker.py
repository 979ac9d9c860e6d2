"""Conformance under `MultiWorkerMirroredStrategy`, one worker process each.

`python -m keras_custom.testing.multi_worker OUTPUT_DIR module:TestClass ...`
is the program of one worker: it joins the cluster of its `TF_CONFIG`,
trains the model of each `ConformanceTests` subclass as the harness does
(`fit`, then `evaluate` and `predict`), and writes what it got to
`OUTPUT_DIR/<TestClass>.<worker index>.npz`. `train_as_harness` is the same
training on one process, the reference.
"""

import importlib
import json
import os
import sys

import numpy as np


def load_test_class(path: str):
    """The class named by `"package.module:ClassName"`."""
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def train_as_harness(test_class, strategy=None) -> dict:
    """Trains `test_class`'s model one epoch as the harness does.

    Returns its weights (`weight_0`, ...), the epoch's logs (`log_<name>`),
    `evaluate()`'s results (`evaluate_<name>`) and `predict()`'s outputs
    (`predictions`), as NumPy arrays.
    """
    import contextlib

    import keras

    case = test_class()
    weights = case._initial_weights()
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = case._seeded_model(weights)
    history = case._fit(model)
    x = case._fit_args()["x"]
    y = case._fit_args()["y"]
    evaluation = model.evaluate(
        x, y, batch_size=case.batch_size, verbose=0, return_dict=True
    )
    predictions = model.predict(
        case.predict_inputs(), batch_size=case.batch_size, verbose=0
    )
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays.update({f"log_{k}": np.asarray(v[-1]) for k, v in history.history.items()})
    arrays.update({f"evaluate_{k}": np.asarray(v) for k, v in evaluation.items()})
    arrays["predictions"] = np.concatenate(
        [np.reshape(p, (len(p), -1)) for p in keras.tree.flatten(predictions)], axis=1
    )
    return arrays


def main(argv: list[str]) -> None:
    import tensorflow as tf

    output_dir, paths = argv[0], argv[1:]
    # Created first, before any other TensorFlow operation.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    for path in paths:
        test_class = load_test_class(path)
        arrays = train_as_harness(test_class, strategy)
        name = f"{test_class.__name__}.{index}.npz"
        np.savez(os.path.join(output_dir, name), **arrays)
        print(f"worker {index}: {path} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
