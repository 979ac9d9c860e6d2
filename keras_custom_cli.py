"""The `keras-custom` command line (also `python -m keras_custom`).

Usage:

```
keras-custom [--help] [--version]
keras-custom demo [--help] [--output-dir DIR] [--epochs N] [--seed S]
                  [--quiet] [--only NAME[,NAME...]]
```

`--version` prints `keras-custom VERSION` (the installed package's). `--only`
takes demo names separated by commas and may be repeated (`--only gan,vae
--only simsiam`); the demos run in that order. They show the Keras progress
bar on a terminal, one line per epoch when the output is not a terminal (a
file, a pipe, a CI log), and nothing with `--quiet`.

This module stands beside the `keras_custom` package, not in it: importing
the package imports TensorFlow (and registers every class with
`keras.saving`), so the `keras-custom` command parses its arguments here,
with the standard library alone, and imports `keras_custom.demo` only to run
a demo. `--help`, `--version` and usage errors answer at once; `python -m
keras_custom` runs the same `main` after importing the package. The demo command
then imports TensorFlow without its start-up log lines: it sets
`TF_CPP_MIN_LOG_LEVEL=3` unless the variable is set, and applies that level
to the lines TensorFlow prints while it loads as well.
"""

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import metadata
from typing import TextIO

#: The demos of `keras_custom.demo.DEMOS`, in the order they run (a test
#: checks that the two agree).
DEMO_NAMES = (
    "classifier",
    "gan",
    "vae",
    "diffusion",
    "simsiam",
    "fixmatch",
    "actor_critic",
)
#: The folder the demos write to unless told otherwise (as
#: `keras_custom.demo.DEFAULT_OUTPUT_DIR`).
DEFAULT_OUTPUT_DIR = "keras_custom_demo"


def _version() -> str:
    try:
        return metadata.version("keras-custom")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _demo_names(text: str) -> list[str]:
    """The demo names of a comma-separated `--only` value, each checked."""
    names = [name.strip() for name in text.split(",")]
    available = ", ".join(DEMO_NAMES)
    if "" in names:
        raise argparse.ArgumentTypeError(
            f"expected demo names separated by commas, got {text!r}; "
            f"available demos: {available}"
        )
    unknown = [name for name in names if name not in DEMO_NAMES]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise argparse.ArgumentTypeError(
            f"unknown demo {listed}; available demos: {available}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser of the `keras-custom` command.

    Building and using it imports neither TensorFlow nor Keras.
    """
    parser = argparse.ArgumentParser(
        prog="keras-custom",
        description=(
            "keras_custom: keras.Model subclasses that drive custom training "
            "through fit()."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_parser = commands.add_parser(
        "demo",
        help="train the demo models (bundled digits, CartPole) and save figures",
        description=(
            "Train the demo models on the bundled 8x8 digits and, for "
            "actor_critic, on gymnasium's CartPole-v1. Each demo prints its "
            "results and writes NAME.keras (the trained model) and NAME.png "
            "(a figure) to the output folder. Needs matplotlib and "
            'gymnasium: pip install "keras-custom[demo]".'
        ),
    )
    demo_parser.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        help="folder for the files written (default: ./%(default)s)",
    )
    demo_parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="training epochs of every demo run (default: each demo's own)",
    )
    demo_parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default: %(default)s)"
    )
    demo_parser.add_argument(
        "--quiet",
        action="store_true",
        help=(
            "do not show training progress (by default the Keras progress "
            "bar on a terminal, one line per epoch otherwise)"
        ),
    )
    demo_parser.add_argument(
        "--only",
        metavar="NAME[,NAME...]",
        type=_demo_names,
        action="extend",
        help=(
            "run only these demos, in this order; names separated by commas, "
            f"the option may be repeated; of: {', '.join(DEMO_NAMES)} "
            "(default: all)"
        ),
    )
    return parser


def fit_verbosity(quiet: bool, stream: TextIO | None = None) -> int:
    """The `verbose` of `fit()` for the demos.

    Args:
        quiet: Whether `--quiet` was given.
        stream: Where the demos print; defaults to `sys.stdout`.

    Returns:
        0 when `quiet`, else 1 (the progress bar) when `stream` is a
        terminal, and 2 (one line per epoch, no control characters)
        otherwise.
    """
    if quiet:
        return 0
    stream = sys.stdout if stream is None else stream
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        interactive = False
    return 1 if interactive else 2


# A line of absl's C++ log: severity letter, MMDD, time, thread, file:line].
_LOG_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITIES = "IWEF"


def _is_hidden(line: str, min_level: int) -> bool:
    """Whether `TF_CPP_MIN_LOG_LEVEL=min_level` hides this line of stderr."""
    if line.startswith(_ABSL_PREAMBLE):
        return min_level >= 1
    match = _LOG_LINE.match(line)
    return match is not None and _SEVERITIES.index(match.group(1)) < min_level


@contextlib.contextmanager
def _stderr_filtered(min_level: int) -> Iterator[None]:
    """Holds back the lines `_is_hidden` hides from stderr, C code's included.

    The C++ libraries write to file descriptor 2 directly, so it is
    redirected to a temporary file, and the lines kept are written back to
    stderr at the end.
    """
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (captured)
        stderr_fd = None
    if stderr_fd is None or min_level <= 0:
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), stderr_fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, stderr_fd)
            os.close(saved_fd)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            sys.stderr.write(
                "".join(
                    line
                    for line in text.splitlines(keepends=True)
                    if not _is_hidden(line, min_level)
                )
            )
            sys.stderr.flush()


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow without its start-up log lines.

    Sets `TF_CPP_MIN_LOG_LEVEL` to 3 unless it is set. TensorFlow honours it
    once loaded, but its C++ libraries log while they load (oneDNN, CUDA
    drivers), before absl logging is initialized; those lines are filtered
    by the same level here. From level 2 on, the warnings of TensorFlow's
    Python logger (`tf.function` retracing) are hidden too.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    try:
        min_level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        min_level = 0
    with _stderr_filtered(min_level):
        import tensorflow as tf
    if min_level >= 2:
        tf.get_logger().setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `keras-custom` command.

    Args:
        argv: Command-line arguments without the program name. Defaults to
            `sys.argv[1:]`.

    Returns:
        The exit status: 0 on success, 1 when a demo cannot run, 2 for a
        usage error (no command).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "demo":
        import_tensorflow_quietly()
        from keras_custom import demo

        try:
            demo.run(
                # Each demo once, in the order first given.
                names=None if args.only is None else list(dict.fromkeys(args.only)),
                output_dir=args.output_dir,
                epochs=args.epochs,
                seed=args.seed,
                verbose=fit_verbosity(args.quiet),
            )
        except demo.MissingDependencyError as error:
            print(f"keras-custom: error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
