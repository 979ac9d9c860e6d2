"""Benchmarks of keras_custom: time per step, memory and time to solve.

Each benchmark is a module run from the repository root with
``python -m benchmarks.<name>`` (``overhead``, ``generative``,
``self_supervised``, ``fit_vs_loop``, ``load``, ``reinforcement``), and
``python -m benchmarks.run_all`` runs them all and writes one report. What
they share (data, timing, ratios, tables, arguments, JSON) is in
`benchmarks.common`; ``README.md`` here describes the methods and results.

Importing the package quiets TensorFlow's C++ logging
(``TF_CPP_MIN_LOG_LEVEL=3`` unless already set): it runs before any
benchmark module imports TensorFlow.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
