"""One directory of trained recipes for the whole test session.

The quality tests, the notebooks and the demo train some models with the same
recipe calls. `keras_custom.recipes.cache` keeps each one trained once per
session: the controller sets `KERAS_CUSTOM_RECIPE_CACHE` to a fresh directory
before the xdist workers start, and they and the notebooks' kernels inherit
it. A directory already set (CI sets one for its demo run too) is kept.
"""

import os
import shutil
import tempfile

import pytest

from keras_custom.recipes.cache import ENVIRONMENT_VARIABLE

_DIRECTORY = pytest.StashKey[str]()


def pytest_configure(config):
    if os.environ.get(ENVIRONMENT_VARIABLE) or hasattr(config, "workerinput"):
        return
    directory = tempfile.mkdtemp(prefix="keras-custom-recipes-")
    os.environ[ENVIRONMENT_VARIABLE] = directory
    config.stash[_DIRECTORY] = directory


def pytest_unconfigure(config):
    directory = config.stash.get(_DIRECTORY, None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(ENVIRONMENT_VARIABLE, None)
