"""The `keras-custom` command line (also `python -m keras_custom`).

Usage:

```
keras-custom demo [--output-dir DIR] [--epochs N] [--seed S] [--quiet]
                  [--only NAME]
```
"""

import argparse
import sys
from collections.abc import Sequence

from keras_custom import demo


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser of the `keras-custom` command."""
    parser = argparse.ArgumentParser(
        prog="keras-custom",
        description=(
            "keras_custom: keras.Model subclasses that drive custom training "
            "through fit()."
        ),
    )
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
        default=demo.DEFAULT_OUTPUT_DIR,
        help="folder for the files written (default: ./%(default)s)",
    )
    demo_parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=(
            "training epochs of every demo run (default: each demo's own; "
            f"classifier: {demo.CLASSIFIER_EPOCHS})"
        ),
    )
    demo_parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default: %(default)s)"
    )
    demo_parser.add_argument(
        "--quiet", action="store_true", help="do not show the Keras progress bar"
    )
    demo_parser.add_argument(
        "--only",
        metavar="NAME",
        choices=sorted(demo.DEMOS),
        help="run only this demo, one of: %(choices)s (default: all)",
    )
    return parser


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
        try:
            demo.run(
                names=None if args.only is None else [args.only],
                output_dir=args.output_dir,
                epochs=args.epochs,
                seed=args.seed,
                verbose=0 if args.quiet else 1,
            )
        except demo.MissingDependencyError as error:
            print(f"keras-custom: error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
