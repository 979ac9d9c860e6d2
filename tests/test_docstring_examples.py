"""The examples in public docstrings run."""

import doctest
import re

import pytest

import keras_custom
from keras_custom import reinforcement
from keras_custom.core import replica_random
from keras_custom.datasets import digits
from keras_custom.self_supervised import small_image_augmenter
from keras_custom.semi_supervised import SemiSupervisedDataset
from keras_custom.testing import ConformanceTests, launch_local_workers, split_cpu

FENCED = re.compile(r"```python\n(.*?)```", re.DOTALL)


def fenced_examples(obj) -> list[str]:
    return [
        "\n".join(
            line[4:] if line.startswith("    ") else line for line in block.splitlines()
        )
        for block in FENCED.findall(obj.__doc__)
    ]


@pytest.mark.parametrize(
    "obj",
    [
        keras_custom.CustomModel,
        ConformanceTests,
        split_cpu,
        keras_custom.GAN,
        keras_custom.WGANGP,
        keras_custom.ConditionalGAN,
        keras_custom.VAE,
        keras_custom.metrics.FrechetDistance,
        replica_random.normal,
        keras_custom.SimCLR,
        keras_custom.SimSiam,
        keras_custom.BYOL,
        keras_custom.BarlowTwins,
        keras_custom.losses.NTXent,
        keras_custom.losses.NegativeCosineSimilarity,
        keras_custom.losses.BarlowTwinsLoss,
        keras_custom.layers.ProjectionHead,
        keras_custom.layers.PredictionHead,
        keras_custom.layers.TargetNetwork,
        keras_custom.schedules.CosineIncrease,
        small_image_augmenter,
        keras_custom.Distiller,
        keras_custom.FixMatch,
        keras_custom.MeanTeacher,
        keras_custom.SharpnessAwareModel,
        keras_custom.AdversarialModel,
        SemiSupervisedDataset,
        keras_custom.DQN,
        keras_custom.ActorCritic,
        reinforcement.ReplayBufferDataset,
        reinforcement.RolloutDataset,
        reinforcement.EpisodeReturn,
        reinforcement.evaluate_policy,
        reinforcement.generalized_advantage_estimation,
        keras_custom.callbacks.TerminateOnNaN,
        launch_local_workers,
    ],
    ids=lambda o: o.__name__,
)
def test_fenced_examples_run(obj):
    examples = fenced_examples(obj)
    assert examples, f"{obj.__name__} has no example"
    namespace = {}
    for example in examples:
        exec(compile(example, f"<{obj.__name__} example>", "exec"), namespace)
    if obj is ConformanceTests:
        namespace["TestMyClassifier"]().test_fit_logs()


def test_doctest_examples_run():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(digits, "digits"):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
