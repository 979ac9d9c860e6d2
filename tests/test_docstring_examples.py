"""Every public class and function has an example in its docstring, and it runs.

The public API is enumerated, not listed by hand: every class and function in
`keras_custom.__all__` and in the `__all__` of the subpackages below. A module
a subpackage exports (`keras_custom.core.replica_random`,
`keras_custom.datasets.digits`) stands for its own public classes and
functions. Constants (`__version__`) and the subpackages themselves are not
objects to document with an example.
"""

import doctest
import importlib
import inspect
import re
import types

import pytest

import keras_custom
from keras_custom.datasets import digits
from keras_custom.testing import ConformanceTests

FENCED = re.compile(r"```python\n(.*?)```", re.DOTALL)

SUBPACKAGES = (
    "core",
    "losses",
    "layers",
    "metrics",
    "schedules",
    "optimizers",
    "callbacks",
    "reinforcement",
    "semi_supervised",
    "self_supervised",
    "generative",
    "robust",
    "testing",
    "datasets",
)


def _is_documentable(value) -> bool:
    """A class or a function (plain, or wrapped as by `functools.cache`)."""
    return (
        inspect.isclass(value)
        or inspect.isroutine(value)
        or (callable(value) and hasattr(value, "__wrapped__"))
    )


def _module_members(module: types.ModuleType) -> list:
    """The public classes and functions defined in `module` itself."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in vars(module) if not name.startswith("_")]
    return [
        value
        for value in (getattr(module, name) for name in names)
        if _is_documentable(value) and value.__module__ == module.__name__
    ]


def public_objects() -> list:
    """The public classes and functions of keras_custom, each once."""
    modules = [keras_custom] + [
        importlib.import_module(f"keras_custom.{name}") for name in SUBPACKAGES
    ]
    found = {}
    for module in modules:
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                # The top level re-exports subpackages, enumerated themselves.
                members = [] if module is keras_custom else _module_members(value)
            elif _is_documentable(value):
                members = [value]
            else:
                members = []  # a constant
            for member in members:
                found.setdefault(id(member), member)
    return list(found.values())


def _object_id(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def fenced_examples(obj) -> list[str]:
    return [
        "\n".join(
            line[4:] if line.startswith("    ") else line for line in block.splitlines()
        )
        for block in FENCED.findall(obj.__doc__ or "")
    ]


def doctest_examples(obj) -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(obj, _object_id(obj), module=False, globs={})
    return [test for test in tests if test.examples]


PUBLIC_OBJECTS = public_objects()


def test_public_api_is_enumerated():
    ids = {_object_id(obj) for obj in PUBLIC_OBJECTS}
    assert len(ids) == len(PUBLIC_OBJECTS)
    expected = {
        keras_custom.CustomModel,
        keras_custom.GAN,
        keras_custom.core.as_loss,
        keras_custom.core.replica_random.normal,
        keras_custom.reinforcement.ExperienceDataset,
        keras_custom.testing.mirrored_strategy,
        digits.load_data,
    }
    assert {_object_id(obj) for obj in expected} <= ids


@pytest.mark.parametrize("obj", PUBLIC_OBJECTS, ids=_object_id)
def test_fenced_examples_run(obj):
    examples = fenced_examples(obj)
    doctests = doctest_examples(obj)
    assert examples or doctests, f"{_object_id(obj)} has no example"
    namespace = {}
    for example in examples:
        exec(compile(example, f"<{obj.__qualname__} example>", "exec"), namespace)
    runner = doctest.DocTestRunner()
    for test in doctests:
        runner.run(test)
    assert runner.failures == 0, f"a doctest of {_object_id(obj)} failed"
    if obj is ConformanceTests:
        namespace["TestMyClassifier"]().test_fit_logs()


def test_doctest_examples_run():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(digits, "digits"):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
