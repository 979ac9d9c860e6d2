"""`CustomModel` passes Keras's own `Model` tests: it is a drop-in `keras.Model`.

The library claims that `keras_custom.CustomModel` can stand wherever a
`keras.Model` stands. Keras ships the tests of its `Model` inside its wheel,
so this module checks the claim against them instead of against tests of our
own, which could only test what we thought of.

Method, for each Keras test file in `KERAS_TEST_FILES`:

1. Copy the file, byte for byte, into one temporary folder ("keras"), and a
   rewritten copy of it into another ("custom"). The rewrite finds, with
   `ast`, every name the file gives to Keras's `Model` class: imports such as
   `from keras.src.models.model import Model`, which become
   `from keras_custom import CustomModel as Model`, and attribute uses such
   as `keras.Model` or `models.Model`, which become
   `keras_custom.CustomModel`. Nothing else changes (strings and comments
   that mention `Model` are left alone, so error-message checks still
   match). The rewritten copy is parsed again and must name Keras's `Model`
   nowhere, and the rewrite must have changed something: a Keras that
   imports `Model` in a new way fails this test instead of silently testing
   `keras.Model` against itself.
2. Run the rewritten copy with pytest in a subprocess on one process (under
   `pytest -n 2` it occupies one xdist worker), with `KERAS_BACKEND` set to
   `tensorflow`, from its own folder with an empty `pytest.ini` and
   `--rootdir` there, so that the project's configuration and `conftest.py`
   play no part. Per-test outcomes come from `--junitxml`.
3. Run the unmodified copy for just the tests that failed with
   `CustomModel`, selected by node id. The result is the same as running the
   whole file twice, in half the time. Both copies sit in identically laid
   out folders, so the only difference between the two runs is the rewrite.
4. Fail, listing them, on the tests that pass for `keras.Model` and fail for
   `CustomModel`, except the deliberate differences in
   `EXPECTED_DIFFERENCES`. Those are printed with their reasons, and an entry
   that no longer is such a difference fails the test too, so the list stays
   true. Tests that fail for both (for example those needing `torch` or
   `grain`, which are not installed) are printed, not judged.

Some tests in these files never name `Model` (most of `trainer_test.py` mixes
the backend `Trainer` into a layer, and most of `functional_test.py` builds a
`Functional` directly); they run identically in both copies and so check
nothing about `CustomModel`, which costs time but not truth.
"""

import ast
import os
import site
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import keras
import pytest

import keras_custom

# Keras's test files, relative to the `keras/src` folder of the installed
# wheel, by the name that their copies get.
KERAS_TEST_FILES = {
    "model_test.py": "models/model_test.py",
    "functional_test.py": "models/functional_test.py",
    "trainer_test.py": "trainers/trainer_test.py",
}

# Tests that pass for `keras.Model` and fail for `CustomModel` on purpose,
# by node id in the copied file, with the reason.
EXPECTED_DIFFERENCES = {
    "functional_test.py::FunctionalTest::test_basic_flow_multi_input": (
        "The test builds a plain `keras.src.models.Functional` and asserts "
        "`isinstance(model, Model)`; the rewrite makes `Model` name "
        "`CustomModel`, and a plain `Functional` is a `keras.Model` but not a "
        "`CustomModel`, so the rewrite, not the library, makes it fail."
    ),
}

# Modules whose attribute or imported name `Model` is `keras.Model`.
_MODEL_MODULES = frozenset(
    {"keras", "keras.models", "keras.src.models", "keras.src.models.model"}
)
_CUSTOM_MODEL = "keras_custom.CustomModel"
_TIMEOUT_SECONDS = 1800


# ----------------------------------------------------------------------
# The rewrite
# ----------------------------------------------------------------------


def _module_names(tree: ast.Module) -> dict[str, str]:
    """Maps each name the file binds to a `keras` module to that module."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "keras":
                    continue
                if alias.asname:
                    names[alias.asname] = alias.name
                else:  # `import keras.src.models` binds `keras`.
                    names["keras"] = "keras"
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if module.split(".")[0] != "keras":
                continue
            for alias in node.names:
                names[alias.asname or alias.name] = f"{module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for an attribute chain rooted at a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _model_uses(tree: ast.Module) -> list[ast.ImportFrom | ast.Attribute]:
    """Every import of `Model` from Keras and every `<keras module>.Model`."""
    modules = _module_names(tree)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module in _MODEL_MODULES and any(
                alias.name == "Model" for alias in node.names
            ):
                uses.append(node)
        elif isinstance(node, ast.Attribute) and node.attr == "Model":
            chain = _dotted(node.value)
            if chain is None:
                continue
            root, _, rest = chain.partition(".")
            if root in modules:
                module = modules[root] + (f".{rest}" if rest else "")
                if module in _MODEL_MODULES:
                    uses.append(node)
    return uses


def _rewritten_import(node: ast.ImportFrom, indent: str) -> str:
    """`node` without `Model`, followed by `Model`'s import from us."""
    kept = [alias for alias in node.names if alias.name != "Model"]
    lines = [
        f"from keras_custom import CustomModel as {alias.asname or 'Model'}"
        for alias in node.names
        if alias.name == "Model"
    ]
    if kept:
        names = ", ".join(
            alias.name + (f" as {alias.asname}" if alias.asname else "")
            for alias in kept
        )
        lines.insert(0, f"from {node.module} import {names}")
    return f"\n{indent}".join(lines)


def to_custom_model(source: str) -> tuple[str, int]:
    """Returns `source` with Keras's `Model` replaced by `CustomModel`.

    Returns the new source and the number of replacements.
    """
    tree = ast.parse(source)
    uses = _model_uses(tree)
    # `ast` offsets count UTF-8 bytes from each line's start.
    data = source.encode()
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column

    edits = []
    for node in uses:
        begin = offset(node.lineno, node.col_offset)
        end = offset(node.end_lineno, node.end_col_offset)
        if isinstance(node, ast.Attribute):
            replacement = _CUSTOM_MODEL
        else:
            line_start = starts[node.lineno - 1]
            indent = data[line_start:begin].decode()
            replacement = _rewritten_import(node, indent)
        edits.append((begin, end, replacement.encode()))
    if any(isinstance(node, ast.Attribute) for node in uses):
        # `import keras_custom` before the first statement that is not the
        # docstring or a `__future__` import.
        body = tree.body
        index = 0
        while index < len(body) and (
            (
                isinstance(body[index], ast.Expr)
                and isinstance(body[index].value, ast.Constant)
                and index == 0
            )
            or (
                isinstance(body[index], ast.ImportFrom)
                and body[index].module == "__future__"
            )
        ):
            index += 1
        at = starts[body[index].lineno - 1] if index < len(body) else len(data)
        edits.append((at, at, b"import keras_custom\n"))
    for begin, end, replacement in sorted(edits, reverse=True):
        data = data[:begin] + replacement + data[end:]
    return data.decode(), len(uses)


def _tests_reaching_model(source: str) -> list[str]:
    """Names of the test functions of `source` that reach Keras's `Model`.

    A test reaches it when its code (decorators included) contains a use
    that the rewrite replaces, names an imported `Model`, or names a
    module-level class or function, or calls a method of its own class
    (`self.helper`), that reaches it. Every other test runs the same code
    in both copies and so says nothing about `CustomModel`; leaving them
    out makes the check no weaker, and `trainer_test.py` (whose tests mostly
    mix Keras's backend `Trainer` into a layer) several times faster.
    """
    tree = ast.parse(source)
    uses = _model_uses(tree)
    model_names = {
        alias.asname or alias.name
        for node in uses
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name == "Model"
    }
    use_ids = {id(node) for node in uses}

    def reaches(node, names, methods=frozenset()) -> bool:
        for child in ast.walk(node):
            if id(child) in use_ids:
                return True
            if isinstance(child, ast.Name) and child.id in names:
                return True
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.value, ast.Name)
                and child.value.id == "self"
                and child.attr in methods
            ):
                return True
        return False

    definitions = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.Assign)
    ]

    def defined_names(node) -> list[str]:
        if isinstance(node, ast.Assign):
            return [t.id for t in node.targets if isinstance(t, ast.Name)]
        return [node.name]

    reaching = set(model_names)
    changed = True
    while changed:  # names that reach `Model` through other names
        changed = False
        for node in definitions:
            names = defined_names(node)
            if not set(names) <= reaching and reaches(node, reaching):
                reaching.update(names)
                changed = True

    selected = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            if reaches(node, reaching):
                selected.append(node.name)
        elif isinstance(node, ast.ClassDef):
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
            helpers = set()
            changed = True
            while changed:
                changed = False
                for method in methods:
                    if method.name not in helpers and reaches(
                        method, reaching, helpers
                    ):
                        helpers.add(method.name)
                        changed = True
            class_level = any(
                reaches(b, reaching) for b in node.bases + node.decorator_list
            )
            selected.extend(
                method.name
                for method in methods
                if method.name.startswith("test")
                and (class_level or method.name in helpers)
            )
    return selected


# ----------------------------------------------------------------------
# Running a copy
# ----------------------------------------------------------------------


def _keras_test_file(name: str) -> Path:
    path = Path(keras.__file__).parent / "src" / KERAS_TEST_FILES[name]
    if not path.is_file():
        pytest.fail(
            f"Keras {keras.__version__} ships no {path}: the test files this "
            "module runs have moved; update KERAS_TEST_FILES."
        )
    return path


def _environment() -> dict[str, str]:
    """This process's environment, for a pytest that is not its child."""
    env = {
        key: value
        for key, value in os.environ.items()
        # PYTEST_ADDOPTS, PYTEST_XDIST_WORKER, PYTEST_CURRENT_TEST, ...
        if not key.startswith("PYTEST_")
    }
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The `keras_custom` this process imported, also from a source tree that
    # is not installed (site-packages itself is not put first).
    root = Path(keras_custom.__file__).resolve().parent.parent
    site_dirs = {
        Path(folder).resolve()
        for folder in [*site.getsitepackages(), site.getusersitepackages()]
    }
    paths = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    if root not in site_dirs and str(root) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([str(root), *paths])
    return env


def _summary(message: str) -> str:
    """The first line of `message`, and its last when that says more."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} ... {lines[-1]}"
    return lines[0] if lines else message


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Node id -> (outcome, first line of the failure) from a JUnit file."""
    results = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        # `classname` is the node id's path (without `.py`) and classes,
        # joined by dots.
        module, *classes = case.get("classname").split(".")
        node_id = "::".join([f"{module}.py", *classes, case.get("name")])
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = _summary(child.get("message") or child.tag)
                break
            if child.tag == "skipped":
                outcome = "skipped"
        if results.get(node_id, ("passed",))[0] != "failed":
            results[node_id] = (outcome, message)
    return results


def _run_pytest(
    folder: Path,
    source: str,
    name: str,
    node_ids: list[str] | None = None,
    keywords: list[str] | None = None,
) -> tuple[dict[str, tuple[str, str]], float]:
    """Runs `source`, saved as `folder/name`, with pytest in a subprocess.

    Runs the tests `node_ids`, or those whose names contain one of
    `keywords`, or all of them. Returns the outcome of each test and the
    wall time.
    """
    folder.mkdir()
    (folder / name).write_text(source)
    (folder / "pytest.ini").write_text("[pytest]\n")
    junit = folder / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(folder / "pytest.ini"),
        "--rootdir",
        str(folder),
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-q",
        f"--junitxml={junit}",
        *(["-k", " or ".join(keywords)] if keywords else []),
        *(node_ids if node_ids is not None else [name]),
    ]
    start = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
    )
    seconds = time.perf_counter() - start
    # 0: all passed, 1: some failed; anything else is a broken run.
    if completed.returncode not in (0, 1) or not junit.is_file():
        pytest.fail(
            f"pytest on {folder / name} exited {completed.returncode}:\n"
            f"{completed.stdout[-6000:]}\n{completed.stderr[-3000:]}"
        )
    return _outcomes(junit), seconds


# ----------------------------------------------------------------------
# The tests
# ----------------------------------------------------------------------


def test_rewrite_covers_every_form_of_model():
    source = (
        '"""Doc."""\n'
        "import keras\n"
        "from keras.src import models\n"
        "from keras.src.models import Functional, Model, Sequential\n"
        "from keras.src.models.model import Model as M\n"
        "\n"
        "class A(keras.Model):\n"
        "    def f(self):\n"
        "        from keras.models import Model\n"
        '        return models.Model(1), keras.src.models.Model, "keras.Model"\n'
        "\n"
        "model = object()\n"
        "other = model.Model  # not a module\n"
    )
    new, count = to_custom_model(source)
    assert count == 6
    assert new == (
        '"""Doc."""\n'
        "import keras_custom\n"
        "import keras\n"
        "from keras.src import models\n"
        "from keras.src.models import Functional, Sequential\n"
        "from keras_custom import CustomModel as Model\n"
        "from keras_custom import CustomModel as M\n"
        "\n"
        "class A(keras_custom.CustomModel):\n"
        "    def f(self):\n"
        "        from keras_custom import CustomModel as Model\n"
        "        return keras_custom.CustomModel(1), keras_custom.CustomModel, "
        '"keras.Model"\n'
        "\n"
        "model = object()\n"
        "other = model.Model  # not a module\n"
    )
    assert not _model_uses(ast.parse(new))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KERAS_TEST_FILES))
def test_keras_suite_passes_with_custom_model(name, tmp_path):
    if name == "trainer_test.py":
        pytest.importorskip(
            "jax", reason="Keras's trainer_test.py imports jax, which is absent"
        )
    original = _keras_test_file(name).read_text()
    rewritten, count = to_custom_model(original)
    assert count > 0 and rewritten != original, (
        f"{name} of Keras {keras.__version__} names no `Model` that the "
        "rewrite recognizes: it would test keras.Model against itself."
    )
    left = _model_uses(ast.parse(rewritten))
    assert not left, (
        f"The rewrite of {name} left Keras's Model on lines "
        f"{[node.lineno for node in left]}."
    )

    selected = _tests_reaching_model(original)
    assert selected, f"No test of {name} reaches Keras's `Model`."
    # By keyword: parametrized unittest methods are collected under longer
    # names (`test_x_1`), which a keyword matches and a node id does not.
    custom, custom_seconds = _run_pytest(
        tmp_path / "custom", rewritten, name, keywords=selected
    )
    assert custom, f"The rewritten {name} collected no tests."
    failed = sorted(
        node for node, (outcome, _) in custom.items() if outcome == "failed"
    )
    if failed:
        reference, keras_seconds = _run_pytest(
            tmp_path / "keras", original, name, failed
        )
        unrun = sorted(set(failed) - set(reference))
        assert not unrun, f"keras.Model's run of {name} did not run {unrun}."
    else:
        reference, keras_seconds = {}, 0.0

    differences = {node for node in failed if reference[node][0] == "passed"}
    expected = {key for key in EXPECTED_DIFFERENCES if key.startswith(f"{name}::")}
    counts = {
        outcome: sum(1 for result, _ in custom.values() if result == outcome)
        for outcome in ("passed", "failed", "skipped")
    }
    print(
        f"\n{name} (Keras {keras.__version__}, {count} uses of Model replaced, "
        f"{len(selected)} test functions reach it): "
        f"CustomModel {counts}, {custom_seconds:.0f} s; keras.Model rerun of "
        f"{len(failed)} failures, {keras_seconds:.0f} s."
    )
    for node in sorted(expected & differences):
        print(f"  expected difference {node}: {EXPECTED_DIFFERENCES[node]}")
    for node in failed:
        if node not in differences:
            print(f"  fails for keras.Model too: {node}: {reference[node][1]}")

    unexpected = sorted(differences - expected)
    stale = sorted(expected - differences)
    problems = []
    if unexpected:
        problems.append(
            "Pass for keras.Model and fail for CustomModel:\n"
            + "\n".join(f"  {node}: {custom[node][1]}" for node in unexpected)
        )
    if stale:
        problems.append(
            "In EXPECTED_DIFFERENCES but not (or no longer) passing for "
            "keras.Model and failing for CustomModel:\n"
            + "\n".join(
                f"  {node}: CustomModel {custom.get(node, ('not run',))[0]}, "
                f"keras.Model {reference.get(node, ('not run',))[0]}"
                for node in stale
            )
        )
    assert not problems, "\n".join(problems)
