"""The `keras-custom` command line: parsing without TensorFlow, output in logs.

The end-to-end runs of every demo are in `tests/test_demo.py`.
"""

import io
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

import keras_custom_cli as cli
from keras_custom_cli import DEMO_NAMES

# What TensorFlow prints while it starts (absl's C++ log lines and their
# preamble, oneDNN, CPU features, CUDA).
TF_STARTUP = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN custom operations|"
    r"cpu_feature_guard|Unable to register cu|cuda",
    re.MULTILINE,
)


def _environment() -> dict[str, str]:
    """This environment without TF_CPP_MIN_LOG_LEVEL: the command sets it."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        [],
        ["no-such-command"],
        ["demo", "--help"],
        ["demo", "--only", "no-such-demo"],
        ["demo", "--only", "gan,no-such-demo"],
        ["demo", "--epochs", "0"],
        ["demo", "--epochs", "many"],
    ],
    ids=lambda argv: " ".join(argv) or "no-arguments",
)
def test_parsing_does_not_import_tensorflow_or_keras(argv):
    code = textwrap.dedent(
        f"""
        import sys
        from keras_custom_cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        print("IMPORTED", "tensorflow" in sys.modules, "keras" in sys.modules)
        """
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "IMPORTED False False"


def test_the_command_line_knows_the_demos_of_the_package():
    from keras_custom import demo

    assert DEMO_NAMES == tuple(demo.DEMOS)
    assert cli.DEFAULT_OUTPUT_DIR == demo.DEFAULT_OUTPUT_DIR


def test_import_keras_custom_registers_every_class():
    # `import keras_custom` then `load_model`, whatever the order of imports.
    code = textwrap.dedent(
        """
        import keras_custom
        import keras
        names = ["GAN", "VAE", "SimSiam", "FixMatch", "ActorCritic",
                 "AdversarialModel", "CustomModel", "CosineIncrease"]
        get = keras.saving.get_registered_object
        print("MISSING", [n for n in names if get(f"keras_custom>{n}") is None])
        """
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "MISSING []"


def test_version_is_the_package_metadata():
    import keras_custom

    version = metadata.version("keras-custom")
    assert keras_custom.__version__ == version
    result = subprocess.run(
        [sys.executable, "-m", "keras_custom_cli", "--version"],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f"keras-custom {version}\n"


def test_only_takes_comma_separated_names():
    parser = cli.build_parser()
    assert parser.parse_args(["demo", "--only", "gan,vae"]).only == ["gan", "vae"]
    assert parser.parse_args(["demo", "--only", "gan, vae"]).only == ["gan", "vae"]
    assert parser.parse_args(["demo", "--only", "vae"]).only == ["vae"]
    assert parser.parse_args(["demo"]).only is None


def test_only_may_be_repeated():
    args = cli.build_parser().parse_args(
        ["demo", "--only", "gan", "--only", "vae,simsiam"]
    )
    assert args.only == ["gan", "vae", "simsiam"]


@pytest.mark.parametrize("value", ["gan,nope", "nope", "gan,nope,also_not"])
def test_only_unknown_name_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.build_parser().parse_args(["demo", "--only", value])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "usage: keras-custom demo" in error
    assert "unknown demo 'nope'" in error
    if "also_not" in value:
        assert "'also_not'" in error
    available = error.split("available demos:")[1]
    for name in DEMO_NAMES:
        assert name in available


@pytest.mark.parametrize("value", ["gan,", ",", ""])
def test_only_empty_name_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.build_parser().parse_args(["demo", "--only", value])
    assert raised.value.code == 2
    assert "expected demo names" in capsys.readouterr().err


def test_help_lists_the_demos_and_the_options(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["demo", "--help"])
    assert raised.value.code == 0
    output = capsys.readouterr().out
    for text in ("--only NAME[,NAME...]", "--quiet", "--epochs", *DEMO_NAMES):
        assert text in output


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_fit_verbosity():
    assert cli.fit_verbosity(quiet=False, stream=_Terminal()) == 1
    assert cli.fit_verbosity(quiet=False, stream=io.StringIO()) == 2
    assert cli.fit_verbosity(quiet=True, stream=_Terminal()) == 0
    assert cli.fit_verbosity(quiet=True, stream=io.StringIO()) == 0


def test_startup_lines_are_hidden_as_the_log_level_asks():
    info = "I0000 00:00:1796068326.336337   12083 port.cc:153] oneDNN custom ..."
    error = "E0517 12:34:56.789012    1234 cuda_platform.cc:52] failed call ..."
    preamble = "WARNING: All log messages before absl::InitializeLog() is called"
    assert [cli._is_hidden(info, level) for level in range(4)] == [
        False,
        True,
        True,
        True,
    ]
    assert [cli._is_hidden(error, level) for level in range(4)] == [
        False,
        False,
        False,
        True,
    ]
    assert cli._is_hidden(preamble, 1) and not cli._is_hidden(preamble, 0)
    assert not cli._is_hidden("Traceback (most recent call last):", 3)


def test_piped_demo_prints_one_line_per_epoch(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_custom_cli",  # what the `keras-custom` script runs
            "demo",
            "--only",
            "classifier",
            "--epochs",
            "2",
            "--output-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(),
        timeout=600,
    )
    output = result.stdout
    assert result.returncode == 0, output[-3000:]
    assert "\r" not in output and "\x1b" not in output, output[-3000:]
    assert TF_STARTUP.search(output) is None, output[-3000:]
    lines = output.splitlines()
    assert lines[0] == "=== demo: classifier ==="
    assert [line for line in lines if line.startswith("Epoch ")] == [
        "Epoch 1/2",
        "Epoch 2/2",
    ]
    # Keras's verbose=2: one summary line per epoch, after its "Epoch" line.
    summaries = [line for line in lines if re.match(r"\d+/\d+ - .*val_loss", line)]
    assert len(summaries) == 2, output
    assert lines[lines.index("Epoch 2/2") + 1] == summaries[1]
    assert (tmp_path / "classifier.keras").is_file()
    assert (tmp_path / "classifier.png").is_file()
