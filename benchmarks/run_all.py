"""Runs every benchmark and writes one Markdown report.

Each benchmark runs in its own subprocess, ``python -m benchmarks.<name>``
from the repository root (by default one per model of a fit-against-loop
benchmark), so that its peak resident memory can be read
from the kernel: ``os.wait4`` returns the child's ``ru_maxrss``, its peak
resident set size (what ``VmHWM`` shows while it runs). The baseline of the
memory column is a subprocess that trains only the plain ``keras.Model``
MLP of ``overhead.py`` (its ``keras`` form) with ``fit()``.

The benchmarks, with settings chosen so that the whole run takes about 28
minutes on 2 quiet cores (about 18 of them ``backends.py``) and more under
load (``--quick``: about 6 to 10 minutes):

- ``overhead.py``: ``CustomModel`` against ``keras.Model``;
- ``generative.py``: ``GAN``, ``VAE`` against hand-written loops;
- ``self_supervised.py``: ``SimCLR``, ``SimSiam``, ``BYOL``, ``BarlowTwins``
  against hand-written loops;
- ``fit_vs_loop.py``: ``WGANGP``, ``ConditionalGAN``, ``Distiller``,
  ``FixMatch``, ``MeanTeacher``, ``SharpnessAwareModel``,
  ``AdversarialModel``, ``DQN``, ``ActorCritic`` against hand-written loops;
- ``load.py``: resident memory and traces over many steps;
- ``backends.py``: every model's ``fit()`` on JAX against ``fit()`` on
  TensorFlow (its children run on each backend, alternately), and JAX
  ``fit()`` against hand-written JAX loops; it fills the report's
  ``JAX / TF fit`` column and adds its own rows.

``reinforcement.py`` (time to solve CartPole) is a quality report of 8 to
15 minutes and is not run unless ``--reinforcement`` is given (then with
seed 0 only; its headline goes into the notes column). ``--reinforcement``
also runs ``ppo.py`` on CartPole (seeds 0 to 2, about a minute; Acrobot
and Pendulum, with budgets of 10 and 15 minutes per seed, only when run
by hand).

All fit-against-loop benchmarks give ``fit()`` the loop's own
``tf.data.Dataset`` (``--fit-input dataset``), the like-for-like comparison.
Every ratio is the median over rounds of a per-round ratio of two forms
timed alternately in one process (see each script). The report is printed
and written to ``benchmarks/RESULTS.md`` (``--output``).

Usage::

    .venv/bin/python -m benchmarks.run_all [--quick] [--reinforcement]
        [--output benchmarks/RESULTS.md] [--json all.json] [--logs DIR]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks import common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

OVERHEAD_LABELS = {
    "a_compile": "CustomModel, compile(adam, loss, metrics)",
    "b_tutorial": "CustomModel subclass, own train_step",
    "c_constructor": "CustomModel(optimizer=, loss=), compile()",
}

# Settings per mode: (full, quick).
SETTINGS = {
    "overhead": (
        ["--rounds", "7", "--epochs", "8"],
        ["--rounds", "3", "--epochs", "2", "--samples", "2048"],
    ),
    "generative": (
        ["--rounds", "7", "--epochs", "8", "--no-reference", "--fit-input", "dataset"],
        [
            *("--rounds", "3", "--epochs", "2", "--samples", "2048"),
            *("--no-reference", "--fit-input", "dataset"),
        ],
    ),
    "self_supervised": (
        ["--rounds", "7", "--epochs", "4", "--no-reference"],
        ["--rounds", "3", "--epochs", "1", "--samples", "1024", "--no-reference"],
    ),
    "fit_vs_loop": (
        ["--rounds", "7", "--epochs", "6", "--samples", "4096"],
        ["--rounds", "3", "--epochs", "2", "--samples", "1024"],
    ),
    "load": (
        ["--steps", "5000", "--epochs", "5", "--sample-every", "100"],
        ["--steps", "600", "--epochs", "2", "--sample-every", "50"],
    ),
    "baseline": (
        ["--rounds", "3", "--epochs", "4"],
        ["--rounds", "2", "--epochs", "2"],
    ),
    "backends": (
        ["--rounds", "3", "--inner-rounds", "3", "--epochs", "10"],
        ["--rounds", "1", "--inner-rounds", "2", "--epochs", "3"],
    ),
    "reinforcement": (["--seeds", "0"], ["--seeds", "0", "--max-seconds", "120"]),
    "ppo": (
        ["--tasks", "cartpole", "--seeds", "0,1,2"],
        ["--tasks", "cartpole", "--seeds", "0"],
    ),
}


# ----------------------------------------------------------------------
# The baseline child: overhead.py's plain keras.Model, alone
# ----------------------------------------------------------------------


def baseline_child(argv: list[str]) -> None:
    """Trains only overhead.py's `keras` form; writes its timings as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    from benchmarks import overhead

    x, y = overhead.load_data(4096, 64)
    weights = overhead.initial_weights()
    form = overhead.FORMS[0]
    runs = [
        overhead.run_once(form, r, weights, x, y, args.epochs, 64)
        for r in range(args.rounds)
    ]
    result = {
        "form": form.name,
        "description": form.description,
        "steps_per_second": [run.steps_per_second for run in runs],
        "environment": common.versions(),
    }
    common.write_json(args.json, result)


# ----------------------------------------------------------------------
# Running the children
# ----------------------------------------------------------------------


@dataclass
class Job:
    """One subprocess: a benchmark script, or part of one."""

    name: str
    script: str
    args: list[str]
    models: tuple[str, ...] = ()
    json_path: str = ""
    log_path: str = ""
    seconds: float = 0.0
    peak_rss_mib: float | None = None
    exit_code: int | None = None
    result: Any = None
    error: str | None = None
    extra: dict = field(default_factory=dict)


def run_job(job: Job, logs: str) -> None:
    """Runs `job` to its end; records its time, peak RSS and JSON result."""
    job.json_path = os.path.join(logs, f"{job.name}.json")
    job.log_path = os.path.join(logs, f"{job.name}.log")
    command = [sys.executable, "-m", "benchmarks." + job.script.removesuffix(".py")]
    if job.script == "run_all.py":
        command.append("--baseline-child")
    command += [*job.args, "--json", job.json_path]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    print(f"[run_all] {job.name}: python {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    with open(job.log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    job.seconds = time.perf_counter() - start
    job.exit_code = process.returncode
    job.peak_rss_mib = usage.ru_maxrss / 1024.0  # KiB on Linux
    try:
        with open(job.json_path, encoding="utf-8") as file:
            job.result = json.load(file)
    except (OSError, ValueError) as error:
        job.error = f"no JSON result ({error}); exit code {job.exit_code}"
        with open(job.log_path, encoding="utf-8", errors="replace") as file:
            tail = file.read()[-2000:]
        print(f"[run_all] {job.name} FAILED: {job.error}\n{tail}", flush=True)
    print(
        f"[run_all] {job.name}: {job.seconds:.0f}s, peak RSS "
        f"{job.peak_rss_mib:.0f} MiB, exit {job.exit_code}",
        flush=True,
    )


def plan(args: argparse.Namespace) -> list[Job]:
    """The subprocesses to run, the baseline first."""
    mode = 1 if args.quick else 0
    split = args.split == "model"
    jobs = [Job("baseline", "run_all.py", SETTINGS["baseline"][mode])]
    jobs.append(Job("overhead", "overhead.py", SETTINGS["overhead"][mode]))
    for name, script, models in (
        ("generative", "generative.py", common.GENERATIVE_MODELS),
        ("self_supervised", "self_supervised.py", common.SELF_SUPERVISED_MODELS),
        ("fit_vs_loop", "fit_vs_loop.py", common.FIT_VS_LOOP_MODELS),
    ):
        groups = [(model,) for model in models] if split else [models]
        for group in groups:
            jobs.append(
                Job(
                    f"{name}-{'+'.join(group)}" if split else name,
                    script,
                    [*SETTINGS[name][mode], "--models", ",".join(group)],
                    models=group,
                )
            )
    jobs.append(Job("load", "load.py", SETTINGS["load"][mode]))
    jobs.append(Job("backends", "backends.py", SETTINGS["backends"][mode]))
    if args.reinforcement:
        jobs.append(
            Job("reinforcement", "reinforcement.py", SETTINGS["reinforcement"][mode])
        )
        jobs.append(Job("ppo", "ppo.py", SETTINGS["ppo"][mode]))
    return jobs


class LoadSampler:
    """Samples the 1-minute load average every few seconds in a thread."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return platform.processor() or "unknown"
    names = re.findall(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    family = re.search(r"^cpu family\s*:\s*(\d+)$", text, re.MULTILINE)
    model = re.search(r"^model\s*:\s*(\d+)$", text, re.MULTILINE)
    name = names[0].strip() if names else "unknown"
    if family and model:
        name += f" (family {family.group(1)}, model {model.group(1)})"
    return name


def memory_total() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def versions(jobs: list[Job]) -> dict[str, str]:
    found = _versions(jobs)
    found["jax"] = "-"
    for job in jobs:
        if job.script == "backends.py" and isinstance(job.result, dict):
            found["jax"] = str(job.result["environment"].get("jax", {}).get("jax"))
    return found


def _versions(jobs: list[Job]) -> dict[str, str]:
    for job in jobs:
        if isinstance(job.result, dict) and "environment" in job.result:
            env = job.result["environment"]
            return {
                key: str(env.get(key, "?"))
                for key in ("python", "keras", "tensorflow", "keras_custom")
            }
    found = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "keras_custom"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "?"
    return found


def _f(value, spec: str = ".2f") -> str:
    return "-" if value is None else f"{value:{spec}}"


def _ratio_cell(values: dict | None) -> str:
    if values is None:
        return "-"
    return f"{values['median']:.2f} ({values['min']:.2f}-{values['max']:.2f})"


def rows_of(job: Job, baseline_rss: float | None) -> list[dict]:
    """The report rows of one job."""
    rss = job.peak_rss_mib
    rss_ratio = None if not baseline_rss or rss is None else rss / baseline_rss
    memory = {"rss": rss, "rss_ratio": rss_ratio}
    script = job.script
    if job.result is None:
        return [
            {
                **memory,
                "benchmark": script,
                "model": ", ".join(common.LIBRARY_CLASSES.get(m, m) for m in job.models)
                or "-",
                "baseline": "-",
                "notes": f"FAILED: {job.error}",
            }
        ]
    if job.name == "baseline":
        rate = sorted(job.result["steps_per_second"])[
            len(job.result["steps_per_second"]) // 2
        ]
        return [
            {
                **memory,
                "benchmark": "overhead.py `keras` form alone",
                "model": "keras.Model MLP (memory baseline)",
                "baseline": "-",
                "notes": f"{rate:.0f} steps/s",
            }
        ]
    if script == "overhead.py":
        rows = []
        for row in job.result["summary"]:
            if row["baseline"] is None:
                continue
            rows.append(
                {
                    **memory,
                    "benchmark": script,
                    "model": OVERHEAD_LABELS.get(row["form"], row["form"]),
                    "baseline": f"keras.Model (`{row['baseline']}`)",
                    "ratio": {
                        "median": row["ratio_median"],
                        "min": row["ratio_min"],
                        "max": row["ratio_max"],
                    },
                    "cpu_ratio": row["cpu_ratio_median"],
                    "notes": f"{row['steps_per_second_median']:.0f} steps/s",
                }
            )
        return rows
    if script in ("generative.py", "self_supervised.py", "fit_vs_loop.py"):
        summary = job.result["summary"]
        speedups = {row["model"]: row["speedup"] for row in summary["comparisons"]}
        by_model: dict[str, dict] = {}
        for row in summary["forms"]:
            by_model.setdefault(row["model"], {})[row["form"]] = row
        rows = []
        for model, forms in by_model.items():
            fit, loop = forms["fit"], forms["loop"]
            spe = next(v for k, v in forms.items() if k.startswith("fit_spe"))
            rows.append(
                {
                    **memory,
                    "benchmark": script,
                    "model": common.LIBRARY_CLASSES.get(model, model),
                    "baseline": "hand-written loop",
                    "ratio": {
                        "median": fit["ratio_median"],
                        "min": fit["ratio_min"],
                        "max": fit["ratio_max"],
                    },
                    "cpu_ratio": fit["cpu_ratio_median"],
                    "speedup": speedups[model]["median"],
                    "speedup_cpu": speedups[model]["cpu_median"],
                    "notes": (
                        f"loop {loop['ms_per_step_median']:.2f} ms/step "
                        f"({loop['cpu_ms_per_step_median']:.2f} CPU), fit "
                        f"{fit['ms_per_step_median']:.2f} "
                        f"({fit['cpu_ms_per_step_median']:.2f} CPU); "
                        f"spe16/loop CPU {spe['cpu_ratio_median']:.2f}"
                    ),
                }
            )
        return rows
    if script == "load.py":
        labels = {
            "keras_model": "keras.Model MLP",
            "custom_model": "CustomModel MLP",
            "gan": "GAN",
        }
        rows = []
        for row in job.result:
            rows.append(
                {
                    **memory,
                    "benchmark": script,
                    "model": labels.get(row["model"], row["model"]),
                    "baseline": "-",
                    "notes": (
                        f"{row['steps']} steps in {row['seconds']} s; RSS "
                        f"{row['rss_after_warmup_mib']} -> {row['rss_end_mib']} "
                        f"MiB after warm-up ({row['slope_mib_per_1k_steps']:+.2f} "
                        f"MiB/1k steps); traces {row['train_traces_after_epoch_1']}"
                        f"/{row['train_traces']}"
                    ),
                }
            )
        return rows
    if script == "backends.py":
        rows = []
        for row in job.result["summary"]:
            notes = (
                f"TF {row['tensorflow_ms_per_step']:.2f} ms/step, JAX "
                f"{row['jax_ms_per_step']:.2f} "
                f"({1 / row['jax_over_tensorflow']['median']:.1f}x faster)"
            )
            if "fit_over_jax_loop" in row:
                loop = row["fit_over_jax_loop"]
                notes += (
                    f"; hand-written JAX loop {row['jax_loop_ms_per_step']:.2f} "
                    f"ms/step, JAX fit / loop {loop['median']:.2f} "
                    f"({loop['min']:.2f}-{loop['max']:.2f}), steady "
                    f"{row['steady_fit_over_jax_loop']:.2f}"
                )
            rows.append(
                {
                    **memory,
                    "benchmark": script,
                    "model": row["label"],
                    "baseline": "fit() on TensorFlow",
                    "ratio": row["jax_over_tensorflow"],
                    "notes": notes,
                }
            )
        return rows
    if script == "reinforcement.py":
        rows = []
        for run in job.result["runs"]:
            if run["reached"]:
                headline = (
                    f"seed {run['seed']}: greedy {run['eval_mean']:.0f} >= "
                    f"{run['target']:g} after {run['seconds_to_target']:.1f} s "
                    f"training, {run['updates_to_target']} updates"
                )
            else:
                headline = (
                    f"seed {run['seed']}: target {run['target']:g} NOT reached in "
                    f"{run['train_seconds']:.0f} s (greedy {run['eval_mean']})"
                )
            rows.append(
                {
                    **memory,
                    "benchmark": script,
                    "model": {"a2c": "ActorCritic", "dqn": "DQN"}.get(
                        run["agent"], run["agent"]
                    ),
                    "baseline": "-",
                    "notes": "CartPole-v1 " + headline,
                }
            )
        return rows
    if script == "ppo.py":
        rows = []
        for run in job.result["runs"]:
            if run["reached"]:
                headline = (
                    f"seed {run['seed']}: greedy {run['eval_mean']:.0f} >= "
                    f"{run['target']:g} after {run['steps_to_target']:,} "
                    f"environment steps, {run['seconds_to_target']:.1f} s training"
                )
            else:
                headline = (
                    f"seed {run['seed']}: target {run['target']:g} NOT reached in "
                    f"{run['budget']} (greedy {run['eval_mean']:.0f})"
                )
            rows.append(
                {
                    **memory,
                    "benchmark": script,
                    "model": "PPO",
                    "baseline": "-",
                    "notes": f"{run['env_id']} {headline}",
                }
            )
        return rows
    return []


def format_report(
    jobs: list[Job], args: argparse.Namespace, meta: dict[str, Any]
) -> tuple[str, list[dict]]:
    """The Markdown report and its rows."""
    baseline_rss = jobs[0].peak_rss_mib if jobs and jobs[0].result else None
    rows = [row for job in jobs for row in rows_of(job, baseline_rss)]
    jax_ratios = {
        row["label"]: row["jax_over_tensorflow"]["median"]
        for job in jobs
        if job.script == "backends.py" and job.result
        for row in job.result["summary"]
    }
    env = meta["versions"]
    load = meta["load"]
    mode = "quick (`--quick`)" if args.quick else "full (default settings)"
    lines = [
        "# Benchmark results",
        "",
        f"- **Date**: {meta['date']}",
        f"- **Command**: `{meta['command']}` ({mode}; one subprocess per "
        f"{'model' if args.split == 'model' else 'benchmark'})",
        f"- **Machine**: {meta['cpu']}, {meta['cpus']} CPUs "
        f"(`os.cpu_count()`), {meta['memory']} RAM, {platform.system()} "
        f"{platform.machine()}",
        f"- **Load average** (1 min): {load['before'][0]:.2f} before, "
        f"{load['after'][0]:.2f} after; sampled every 5 s during the run: "
        f"median {load['median']:.2f}, min {load['min']:.2f}, max {load['max']:.2f}",
        f"- **Versions**: Python {env['python']}, keras {env['keras']}, "
        f"tensorflow {env['tensorflow']}, jax {env['jax']}, "
        f"keras_custom {env['keras_custom']}",
        f"- **Wall time**: {meta['seconds']:.0f} s",
        "",
        "Time ratios are `fit / baseline`, the median over rounds of the "
        "per-round ratio of time per step of two forms timed alternately in "
        "one process (range in brackets); below 1 means `fit()` is faster. "
        "The CPU ratio is the same median from process CPU time, less "
        "disturbed by other processes. The spe=16 speed-up is the time per "
        "step of `fit()` with `steps_per_execution=1` over that with 16 "
        "(wall / CPU). `JAX / TF fit` is the model's time per step of `fit()` "
        "on JAX over that on TensorFlow (`backends.py`: NumPy input where the "
        "batches allow, the median "
        "over rounds of alternating subprocesses, one per backend; below 1/3 "
        "means at least 3 times faster on JAX). Peak RSS is the peak resident "
        "memory of the benchmark's "
        "subprocess (`ru_maxrss`), which holds every form of the row's "
        "benchmark (loop and fits), against the subprocess that trains only "
        "overhead.py's plain `keras.Model`.",
        "",
        *common.table_head(
            *("benchmark", "model", "baseline", "time ratio (median, range)"),
            *("CPU ratio", "spe=16 speed-up (wall / CPU)", "JAX / TF fit"),
            *("peak RSS MiB",),
            *("RSS / baseline", "notes"),
        ),
    ]
    for row in rows:
        speedup = (
            "-"
            if row.get("speedup") is None
            else f"{row['speedup']:.2f} / {row['speedup_cpu']:.2f}"
        )
        lines.append(
            f"| {row['benchmark']} | {row['model']} | {row['baseline']} "
            f"| {_ratio_cell(row.get('ratio'))} | {_f(row.get('cpu_ratio'))} "
            f"| {speedup} | {_f(jax_ratios.get(row['model']), '.3f')} "
            f"| {_f(row['rss'], '.0f')} | {_f(row['rss_ratio'])} "
            f"| {row['notes']} |"
        )
    lines += ["", *common.table_head("subprocess", "wall s", "peak RSS MiB", "exit")]
    for job in jobs:
        lines.append(
            f"| {job.name} | {job.seconds:.0f} | {_f(job.peak_rss_mib, '.0f')} "
            f"| {job.exit_code} |"
        )
    if not args.reinforcement:
        lines += [
            "",
            "`reinforcement.py` (time to solve CartPole) and `ppo.py` (PPO on "
            "CartPole, Acrobot, Pendulum) are separate quality reports and were "
            "not run; see their sections of `benchmarks/README.md` "
            "(`--reinforcement` adds their CartPole headlines here).",
        ]
    return "\n".join(lines) + "\n", rows


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.new_parser(__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few minutes: fewer rounds and epochs, one "
        "subprocess per benchmark",
    )
    parser.add_argument(
        "--split",
        choices=("model", "benchmark"),
        default=None,
        help="one subprocess per model (peak RSS per model) or per benchmark "
        "script; default: model, or benchmark with --quick",
    )
    parser.add_argument(
        "--reinforcement",
        action="store_true",
        help="also run reinforcement.py (CartPole, seed 0) and ppo.py (CartPole, "
        "seeds 0 to 2); minutes",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(HERE, "RESULTS.md"),
        help="where to write the Markdown report ('' for nowhere)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every result")
    parser.add_argument(
        "--logs", metavar="DIR", help="keep the children's logs and JSON here"
    )
    args = parser.parse_args(argv)
    if args.split is None:
        args.split = "benchmark" if args.quick else "model"
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--baseline-child"]:
        baseline_child(argv[1:])
        return 0
    args = parse_args(argv)
    logs = args.logs or tempfile.mkdtemp(prefix="run_all-")
    os.makedirs(logs, exist_ok=True)
    jobs = plan(args)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with LoadSampler() as sampler:
        for job in jobs:
            run_job(job, logs)
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    samples = sorted(sampler.samples) or [load_before[0]]
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": "python -m benchmarks.run_all " + " ".join(argv),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory": memory_total(),
        "versions": versions(jobs),
        "seconds": seconds,
        "load": {
            "before": list(load_before),
            "after": list(load_after),
            "median": samples[len(samples) // 2],
            "min": samples[0],
            "max": samples[-1],
        },
    }
    report, rows = format_report(jobs, args, meta)
    print()
    print(report)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(report)
        print(f"Wrote {args.output}")
    common.write_json(
        args.json,
        {
            "meta": meta,
            "rows": rows,
            "jobs": [
                {
                    "name": job.name,
                    "script": job.script,
                    "args": job.args,
                    "seconds": job.seconds,
                    "peak_rss_mib": job.peak_rss_mib,
                    "exit_code": job.exit_code,
                    "error": job.error,
                    "result": job.result,
                }
                for job in jobs
            ],
        },
    )
    print(f"Logs and per-benchmark JSON in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
