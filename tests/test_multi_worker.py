"""`fit()`, `evaluate()` and `predict()` under `MultiWorkerMirroredStrategy`:
two worker processes on 127.0.0.1 end with identical weights, equal to one
process training on the same global batches.

The suite runs one model of each mechanism that distribution touches (named
optimizers, noise of the global batch, schedules, gathered losses and
synchronized batch normalization, an EMA target network, augmentation of the
global batch, gradients summed before the update, boolean data). Set
`KERAS_CUSTOM_MULTI_WORKER_ALL=1` to run every model of the library.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from keras_custom.testing import assert_weights_close
from keras_custom.testing.local_cluster import launch_local_workers
from keras_custom.testing.multi_worker import load_test_class, train_as_harness

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    "tests.test_conformance:TestTwoOptimizerModel",
    "tests.test_generative_conformance:TestGAN",
    "tests.test_generative_conformance:TestVAEWithWarmUp",
    "tests.test_self_supervised_conformance:TestSimCLR",
    "tests.test_self_supervised_conformance:TestBYOL",
    "tests.test_semi_supervised_conformance:TestFixMatch",
    "tests.test_robust_conformance:TestSharpnessAwareModel",
    "tests.test_reinforcement_conformance:TestDQN",
]
OTHER_CASES = [
    "tests.test_generative_conformance:TestWGANGP",
    "tests.test_generative_conformance:TestConditionalGAN",
    "tests.test_generative_conformance:TestDiffusionModel",
    "tests.test_self_supervised_conformance:TestSimSiam",
    "tests.test_self_supervised_conformance:TestBarlowTwins",
    "tests.test_self_supervised_conformance:TestVICReg",
    "tests.test_semi_supervised_conformance:TestDistiller",
    "tests.test_semi_supervised_conformance:TestMeanTeacher",
    "tests.test_robust_conformance:TestAdversarialPGD",
    "tests.test_reinforcement_conformance:TestActorCritic",
    "tests.test_reinforcement_conformance:TestPPO",
]
if os.environ.get("KERAS_CUSTOM_MULTI_WORKER_ALL") == "1":
    CASES += OTHER_CASES


@pytest.fixture(scope="module")
def worker_outputs(tmp_path_factory):
    output = tmp_path_factory.mktemp("multi_worker")
    results = launch_local_workers(
        ["-m", "keras_custom.testing.multi_worker", str(output), *CASES],
        num_workers=2,
        timeout=1500,
        cwd=str(ROOT),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
    )
    for result in results:
        assert result.returncode == 0, (
            f"worker {result.index} failed:\n{result.stderr[-4000:]}"
        )
    return output


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.split(":")[1])
def test_workers_equal_one_process(case, worker_outputs):
    test_class = load_test_class(case)
    name = test_class.__name__
    first, second = (np.load(worker_outputs / f"{name}.{i}.npz") for i in (0, 1))
    assert first.files == second.files
    for key in first.files:
        np.testing.assert_array_equal(
            first[key], second[key], err_msg=f"{key} differs between the workers"
        )
    reference = train_as_harness(test_class)
    assert set(first.files) == set(reference)
    weights = sorted(k for k in reference if k.startswith("weight_"))
    assert_weights_close(
        [first[k] for k in weights],
        [reference[k] for k in weights],
        test_class.atol,
        "weights on two workers vs one process",
    )
    for key in sorted(set(reference) - set(weights)):
        np.testing.assert_allclose(
            first[key], reference[key], rtol=1e-4, atol=1e-5, err_msg=key
        )


@pytest.mark.slow
def test_example_script_trains_identical_workers(tmp_path):
    from keras_custom.demo import multi_worker

    status = multi_worker.main(
        ["--workers", "2", "--epochs", "1", f"--output-dir={tmp_path}"]
    )
    assert status == 0
    assert (tmp_path / "gan_multi_worker.keras").exists()
