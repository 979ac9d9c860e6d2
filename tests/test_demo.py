"""End-to-end tests of the `keras-custom demo` command."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_custom
from keras_custom.datasets import digits
from keras_custom.recipes import (
    classifiers,
    data,
    self_supervised,
    self_supervised_scores,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEMO_NAMES = [
    "classifier",
    "gan",
    "vae",
    "diffusion",
    "simsiam",
    "fixmatch",
    "actor_critic",
]
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def _run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_custom", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def _run_demo(output_dir) -> subprocess.CompletedProcess:
    try:
        return _run_cli("demo", "--output-dir", str(output_dir), "--quiet")
    except subprocess.TimeoutExpired as error:
        return subprocess.CompletedProcess(error.cmd, -1, "", f"timed out: {error}")


def _run_demo_once_per_session(shared: Path) -> subprocess.CompletedProcess:
    """Runs the demo in the first xdist worker to get here; the others wait.

    `shared` is a folder all workers of the session see; creating it is
    atomic, so exactly one worker runs the demo and writes its result there.
    """
    result_path = shared / "result.json"
    try:
        shared.mkdir()
    except FileExistsError:
        deadline = time.monotonic() + 900
        while not result_path.is_file():
            if time.monotonic() > deadline:
                pytest.fail(f"Waited too long for the demo run in {shared}.")
            time.sleep(1.0)
        return subprocess.CompletedProcess(**json.loads(result_path.read_text()))
    result = _run_demo(shared / "output")
    record = {
        "args": result.args,
        "returncode": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
    }
    partial = shared / "result.json.partial"
    partial.write_text(json.dumps(record))
    partial.replace(result_path)
    return result


def _recorded_demo_run():
    """The demo run of the README's install command, if CI recorded it.

    `.ci/run` runs `keras-custom demo` as the README's first command and
    keeps what it printed (`KERAS_CUSTOM_DEMO_LOG`) and wrote
    (`KERAS_CUSTOM_DEMO_OUTPUT`); the tests below check that run rather
    than the demo a second time. `None` elsewhere.
    """
    log = os.environ.get("KERAS_CUSTOM_DEMO_LOG")
    if not log:
        return None
    output_dir = Path(os.environ.get("KERAS_CUSTOM_DEMO_OUTPUT", "keras_custom_demo"))
    stdout = Path(log).read_text()
    return subprocess.CompletedProcess(
        ["keras-custom", "demo"], 0, stdout, ""
    ), output_dir


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Runs the demo once; the tests below check its output.

    Under pytest-xdist every worker would run a module fixture of its own, so
    the workers share one run through the session's temporary folder.
    """
    recorded = _recorded_demo_run()
    if recorded is not None:
        return recorded
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        output_dir = tmp_path_factory.mktemp("demo")
        return _run_demo(output_dir), output_dir
    shared = tmp_path_factory.getbasetemp().parent / "shared_demo_run"
    return _run_demo_once_per_session(shared), shared / "output"


def _printed(stdout: str, label: str) -> float:
    """The number printed after `label: ` at the start of a line."""
    match = re.search(rf"^{re.escape(label)}: {NUMBER}", stdout, re.MULTILINE)
    assert match, f"no {label!r} printed in:\n{stdout}"
    return float(match.group(1))


def _printed_accuracy(stdout: str) -> float:
    return _printed(stdout, "test accuracy")


@pytest.mark.slow
def test_demo_exits_cleanly_and_reaches_accuracy(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert _printed_accuracy(result.stdout) >= 0.95
    assert str(output_dir.resolve()) in result.stdout
    for name in DEMO_NAMES:
        assert f"=== demo: {name} ===" in result.stdout
        assert str(output_dir / f"{name}.keras") in result.stdout
        assert str(output_dir / f"{name}.png") in result.stdout
    if _recorded_demo_run() is None:
        # --quiet: no Keras progress bar (the README's command is not quiet).
        assert "Epoch 1/" not in result.stdout


@pytest.mark.slow
def test_saved_model_reproduces_printed_accuracy(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(output_dir / "classifier.keras")
    assert isinstance(model, keras_custom.CustomModel)

    _, (x_test, y_test) = digits.load_data()
    x = (x_test.astype("float32") / 16.0).reshape(len(x_test), 64)
    logits = np.asarray(model.predict(x, verbose=0))
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == y_test))

    assert accuracy >= 0.95
    # The printed value has 4 decimals.
    assert accuracy == pytest.approx(_printed_accuracy(result.stdout), abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", DEMO_NAMES)
def test_demo_writes_a_png(demo_run, name):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    path = output_dir / f"{name}.png"
    assert path.is_file()
    assert path.stat().st_size > len(PNG_MAGIC)
    assert path.read_bytes()[: len(PNG_MAGIC)] == PNG_MAGIC


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, model_class", [("gan", keras_custom.GAN), ("vae", keras_custom.VAE)]
)
def test_saved_generative_model_loads_and_generates(demo_run, name, model_class):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(output_dir / f"{name}.keras")
    assert type(model) is model_class

    samples = np.asarray(model.generate(16, seed=0))
    assert samples.shape == (16, 64)
    assert np.all((samples >= 0.0) & (samples <= 1.0))
    # The latents come from the seed: the same seed, the same digits.
    np.testing.assert_allclose(model.generate(16, seed=0), samples, atol=1e-6)
    assert not np.allclose(model.generate(16, seed=1), samples)


@pytest.mark.slow
def test_gan_demo_prints_its_judge_scores(demo_run):
    result, _ = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    assert _printed(stdout, "judge accuracy on the test digits") >= 0.95
    assert _printed(stdout, "gan mean max class probability") >= 0.8
    assert _printed(stdout, "gan class entropy") >= 0.9
    assert "(10 of 10 classes)" in stdout
    match = re.search(
        rf"^gan frechet distance: {NUMBER} \(uniform noise: {NUMBER}",
        stdout,
        re.MULTILINE,
    )
    assert match, stdout
    distance, noise_distance = float(match.group(1)), float(match.group(2))
    assert distance <= 0.25 * noise_distance


@pytest.mark.slow
def test_vae_demo_prints_its_scores(demo_run):
    result, _ = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    match = re.search(
        rf"^vae test reconstruction error: {NUMBER} \(training mean image: {NUMBER}",
        stdout,
        re.MULTILINE,
    )
    assert match, stdout
    error, mean_image_error = float(match.group(1)), float(match.group(2))
    assert error <= 0.5 * mean_image_error
    assert _printed(stdout, "vae mean max class probability") >= 0.7
    # Seeds 0, 1 (normalized, 1 for a uniform spread over the 10 classes):
    # 0.995, 0.994.
    assert _printed(stdout, "vae class entropy") >= 0.9
    assert re.search(r"^vae frechet distance: ", stdout, re.MULTILINE), stdout


@pytest.mark.slow
def test_diffusion_demo_prints_its_scores(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    # The thresholds of tests/test_diffusion_quality.py (seeds 0, 1, 2).
    assert _printed(stdout, "diffusion mean max class probability") >= 0.87
    assert _printed(stdout, "conditional diffusion label agreement") >= 0.95
    assert re.search(
        rf"^diffusion sampling of 1000 digits with 50 DDIM steps: {NUMBER} s",
        stdout,
        re.MULTILINE,
    ), stdout
    model = keras.models.load_model(output_dir / "conditional_diffusion.keras")
    assert type(model) is keras_custom.DiffusionModel
    sevens = model.generate(4, steps=5, labels=7, seed=0)
    assert sevens.shape == (4, 64)
    np.testing.assert_array_equal(model.generate(4, steps=5, labels=7, seed=0), sevens)


@pytest.mark.slow
def test_simsiam_demo_prints_its_scores(demo_run):
    result, _ = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    scores = {}
    for label in ("k-NN accuracy", "few-shot linear accuracy"):
        match = re.search(
            rf"^simsiam {label}: {NUMBER} \(random init: {NUMBER}\)",
            stdout,
            re.MULTILINE,
        )
        assert match, stdout
        scores[label] = float(match.group(1)), float(match.group(2))
    knn, knn_baseline = scores["k-NN accuracy"]
    few_shot, few_shot_baseline = scores["few-shot linear accuracy"]
    # 50 epochs at seed 0 give about 0.98 and 0.94; the random-init encoder
    # about 0.88 and 0.71.
    assert knn >= 0.93
    assert knn > knn_baseline
    assert few_shot >= 0.85
    assert few_shot >= few_shot_baseline + 0.1
    match = re.search(
        rf"^simsiam embedding std: {NUMBER} \(collapse threshold: {NUMBER}\)",
        stdout,
        re.MULTILINE,
    )
    assert match, stdout
    assert float(match.group(1)) >= float(match.group(2))
    # The loss is a negative cosine similarity: -1 when the views agree.
    match = re.search(r"^simsiam final loss: (-?[0-9.]+)", stdout, re.MULTILINE)
    assert match, stdout
    assert -1.0 <= float(match.group(1)) <= -0.5


@pytest.mark.slow
def test_saved_self_supervised_model_loads_and_embeds(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(output_dir / "simsiam.keras")
    assert type(model) is keras_custom.SimSiam

    (x_train, y_train), (x_test, y_test) = data.load_digits()
    test_features = np.asarray(model.predict(x_test, verbose=0))
    assert test_features.shape == (len(x_test), self_supervised.FEATURE_DIM)
    assert np.all(np.isfinite(test_features))
    # The loaded encoder gives the printed k-NN accuracy (4 decimals; allow
    # one test digit for float differences at a tie).
    train_features = np.asarray(model.predict(x_train, verbose=0))
    accuracy = self_supervised_scores.knn_accuracy(
        train_features, y_train, test_features, y_test
    )
    printed = _printed(result.stdout, "simsiam k-NN accuracy")
    assert accuracy == pytest.approx(printed, abs=1 / len(x_test) + 1e-4)


@pytest.mark.slow
def test_fixmatch_demo_prints_its_scores(demo_run):
    result, _ = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    fixmatch_accuracy = _printed(stdout, "fixmatch test accuracy")
    baseline_accuracy = _printed(stdout, "fixmatch baseline test accuracy")
    full_accuracy = _printed(stdout, "fixmatch full supervision test accuracy")
    # Seeds 0, 1, 2: FixMatch 0.989, 0.972, 0.969; the 50-label baseline
    # 0.878, 0.889, 0.900; all labels 0.986, 0.997, 0.975.
    assert fixmatch_accuracy >= 0.95
    assert fixmatch_accuracy >= baseline_accuracy + 0.05
    assert full_accuracy >= 0.97
    # The share of the gap closed: 1.03, 0.77, 0.93 for seeds 0, 1, 2.
    gap = _printed(stdout, "fixmatch gap closed")
    expected = (fixmatch_accuracy - baseline_accuracy) / (
        full_accuracy - baseline_accuracy
    )
    assert gap == pytest.approx(expected, abs=5e-3)
    assert gap >= 0.6
    assert 0.5 <= _printed(stdout, "fixmatch final mask rate") <= 1.0


@pytest.mark.slow
def test_saved_fixmatch_loads_and_reproduces_printed_accuracy(demo_run):
    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(output_dir / "fixmatch.keras")
    assert type(model) is keras_custom.FixMatch

    _, (x_test, y_test) = data.load_digits()
    accuracy = classifiers.accuracy(model, x_test, y_test)
    assert accuracy >= 0.93
    # The printed value has 4 decimals.
    printed = _printed(result.stdout, "fixmatch test accuracy")
    assert accuracy == pytest.approx(printed, abs=1e-4)


@pytest.mark.slow
def test_actor_critic_demo_prints_its_scores(demo_run):
    result, _ = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(
        rf"^actor_critic greedy return: {NUMBER} ± {NUMBER} over 20 episodes "
        rf"\(random policy: {NUMBER}",
        result.stdout,
        re.MULTILINE,
    )
    assert match, result.stdout
    greedy, random_return = float(match.group(1)), float(match.group(3))
    # The demo keeps the best greedy policy of the run (`PolicyEvaluation`)
    # and stops once it balances all 20 selection episodes. Its score on the
    # 20 other evaluation episodes was 500.0 for seeds 0 to 4 and 487.25 for
    # seed 5 (the kept policy of epoch 3, 4, 12 or 16; epoch 1 for seed 5).
    assert greedy >= 475.0
    assert random_return <= 40.0
    match = re.search(
        rf"^actor_critic kept policy: epoch {NUMBER} of {NUMBER} \(selection "
        rf"return {NUMBER} over 20 other episodes\)",
        result.stdout,
        re.MULTILINE,
    )
    assert match, result.stdout
    best_epoch, epochs, selection = (float(group) for group in match.groups())
    assert 1 <= best_epoch <= epochs <= 30
    assert selection >= 475.0


@pytest.mark.slow
def test_saved_actor_critic_loads_and_reproduces_greedy_return(demo_run):
    pytest.importorskip("gymnasium")
    from keras_custom.recipes import reinforcement

    result, output_dir = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(output_dir / "actor_critic.keras")
    assert type(model) is keras_custom.ActorCritic
    # The greedy policy and the evaluation episodes are deterministic.
    mean, _ = reinforcement.greedy_return(model)
    printed = _printed(result.stdout, "actor_critic greedy return")
    assert mean == pytest.approx(printed, abs=0.05)


def test_demo_help_lists_every_demo():
    result = _run_cli("demo", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in DEMO_NAMES:
        assert name in result.stdout


def test_unknown_subcommand_fails_with_usage():
    result = _run_cli("no-such-command")
    assert result.returncode != 0
    assert "usage: keras-custom" in result.stderr
    assert "invalid choice" in result.stderr


def test_no_subcommand_prints_usage():
    result = _run_cli()
    assert result.returncode != 0
    assert "usage: keras-custom" in result.stderr
    assert "demo" in result.stderr


def test_unknown_demo_name_fails_with_usage():
    result = _run_cli("demo", "--only", "no-such-demo")
    assert result.returncode != 0
    assert "usage: keras-custom demo" in result.stderr
