"""`python -m keras_custom`: the `keras-custom` command (`keras_custom_cli`)."""

import sys

from keras_custom_cli import main

if __name__ == "__main__":
    sys.exit(main())
