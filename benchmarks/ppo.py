"""`PPO` trained by `fit()` on CartPole-v1, Acrobot-v1 and Pendulum-v1.

Trains `keras_custom.PPO` with the recipes of
`keras_custom.recipes.reinforcement` (the ones the quality test uses), one
run per task and seed, and reports the environment steps and the training
seconds to each task's target:

- ``cartpole``: `cartpole_ppo` (Stable-Baselines3's RL Zoo settings: 8
  environments, rollouts of 32 steps, 20 passes of one minibatch of 256,
  learning rate and clip range decaying linearly to 0 over 100,000
  steps). Target: a greedy mean return of at least 475 within 100,000
  environment steps.
- ``acrobot``: `acrobot_ppo` (16 environments, rollouts of 128 steps, 4
  passes of 8 minibatches). Target: a greedy mean return of at least -100
  within 10 minutes of training (random actions: about -494).
- ``pendulum``: `pendulum_ppo`, a Gaussian policy with a
  state-independent log-std (8 environments, rollouts of 256 steps, 10
  passes of 32 minibatches of 64, learning rate and clip range decaying
  linearly to 0 over 122,880 steps, where its runs also stop). Target: a
  greedy (mean-action) return of at least -600 within 15 minutes of
  training (random actions: about -1,118).

Training runs `fit(dataset, steps_per_epoch=...)` one epoch at a time
(`train_agent`; an epoch is a few whole rollouts). After each epoch the
greedy policy is evaluated over 20 episodes from seed 10,000
(`evaluate_policy`; for CartPole only after an epoch whose training
episodes returned at least 200 on average); the run stops as soon as that
reaches the target, or when the budget (environment steps for CartPole,
training seconds for the others; ``--max-seconds`` overrides the latter)
is spent. With ``--full-budget`` every run trains to its budget instead,
still recording when the target was first reached, which shows whether
the policy stays above it. Evaluation time is not training time. The
evaluation that stops a run is optimistic (the first one above the
target), so the final policy is also evaluated on 20 other episodes (seeds
from 20,000); both are reported.

Reported per task and seed: whether the target was reached, the
environment steps and training seconds to it, the environment steps and
training seconds in all, the greedy return at the stop and on the other
episodes (mean ± std), the number of evaluations and the run's wall time.
The exit code is 0 whatever the result: this is a report, not a test.
``main()`` returns the results as a dict (what ``--json`` writes).

Usage::

    .venv/bin/python -m benchmarks.ppo [--tasks cartpole,acrobot,pendulum]
        [--seeds 0,1,2] [--max-seconds S] [--full-budget] [--json results.json]
"""

from __future__ import annotations

import os
import platform
import time

import keras
import numpy as np

from benchmarks import common
from keras_custom.recipes import reinforcement as recipes

#: Per task: the recipe, the environment, the greedy mean return to reach,
#: the budget (`"steps"` or `"seconds"`, and its size), the rollouts per
#: epoch, the training return above which an epoch is evaluated, and an
#: environment-step limit besides a time budget (the length of a recipe's
#: schedules).
TASKS = {
    "cartpole": (
        recipes.cartpole_ppo,
        recipes.ENV_ID,
        475.0,
        ("steps", recipes.PPO_BUDGET_STEPS),
        5,
        200.0,
        None,
    ),
    "acrobot": (
        recipes.acrobot_ppo,
        recipes.ACROBOT_ID,
        -100.0,
        ("seconds", 600.0),
        2,
        None,
        None,
    ),
    "pendulum": (
        recipes.pendulum_ppo,
        recipes.PENDULUM_ID,
        -600.0,
        ("seconds", 900.0),
        2,
        None,
        recipes.PENDULUM_BUDGET_STEPS,
    ),
}
#: Seed of the first of the other 20 evaluation episodes.
CHECK_SEED = 20_000


def run_one(
    task: str,
    seed: int,
    max_seconds: float | None = None,
    full_budget: bool = False,
) -> dict:
    """Trains PPO on one task from one seed until its target or budget.

    Args:
        task: A key of `TASKS`.
        seed: Seed of the recipe.
        max_seconds: Training-time budget in place of the task's own
            (for CartPole, an extra limit besides its step budget).
        full_budget: Whether to train to the budget rather than stop at the
            first evaluation that reaches the target.

    Returns:
        A dict of the run's figures (see the module docstring).
    """
    build, env_id, target, (kind, budget), rollouts_per_epoch, gate, steps = TASKS[task]
    keras.backend.clear_session()
    start = time.perf_counter()
    model, dataset = build(seed)
    updates_per_rollout = dataset.update_epochs * dataset.minibatches
    limits = {}
    if kind == "steps":
        limits["max_updates"] = recipes.ppo_updates(dataset, int(budget))
        limits["max_seconds"] = max_seconds
    else:
        limits["max_seconds"] = budget if max_seconds is None else max_seconds
        limits["max_environment_steps"] = steps
    result = recipes.train_agent(
        model,
        dataset,
        steps_per_epoch=rollouts_per_epoch * updates_per_rollout,
        target_return=target,
        eval_gate=gate,
        env_id=env_id,
        stop_at_target=not full_budget,
        **limits,
    )
    check_mean, check_std = recipes.greedy_return(model, seed=CHECK_SEED, env_id=env_id)
    return {
        "task": task,
        "env_id": env_id,
        "seed": seed,
        "target": target,
        "full_budget": full_budget,
        "budget": f"{budget:,.0f} {kind}"
        if kind == "steps"
        else f"{limits['max_seconds']:.0f} s"
        + ("" if steps is None else f" or {steps:,} steps"),
        "reached": result["reached"],
        "train_seconds": result["train_seconds"],
        "environment_steps": result["environment_steps"],
        "updates": result["updates"],
        "seconds_to_target": result["seconds_to_target"],
        "steps_to_target": result["steps_to_target"],
        "eval_mean": result["eval_mean"],
        "eval_std": result["eval_std"],
        "check_mean": check_mean,
        "check_std": check_std,
        "early_stops": dataset.early_stops,
        "evaluations": result["evaluations"],
        "episode_return": result["history"]["episode_return"],
        "wall_seconds": time.perf_counter() - start,
    }


def _row(run: dict) -> str:
    if run["reached"]:
        to_target = f"{run['steps_to_target']:,} / {run['seconds_to_target']:.1f} s"
    else:
        to_target = "not reached"
    return (
        f"| {run['task']} | {run['seed']} | {run['target']:g} | {run['budget']} | "
        f"{'yes' if run['reached'] else 'NO'} | {to_target} | "
        f"{run['environment_steps']:,} | {run['train_seconds']:.1f} | "
        f"{run['eval_mean']:.1f} ± {run['eval_std']:.1f} | "
        f"{run['check_mean']:.1f} ± {run['check_std']:.1f} | "
        f"{len(run['evaluations'])} | {run['wall_seconds']:.1f} |"
    )


def print_table(runs: list[dict]) -> None:
    """Prints one Markdown row per run."""
    head = common.table_head(
        *("task", "seed", "target", "budget", "reached"),
        "to target (env steps / train s)",
        *("env steps", "train s", "greedy at the end (20 ep.)"),
        *("greedy, other 20 ep.", "evaluations", "run wall s"),
    )
    print("\n".join(head))
    for run in runs:
        print(_row(run))


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark; returns the configuration and every run."""
    parser = common.new_parser(__doc__)
    parser.add_argument("--tasks", default="cartpole,acrobot,pendulum")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--full-budget", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {sorted(TASKS)}")
    seeds = [int(seed) for seed in args.seeds.split(",")]

    load_before = os.getloadavg()
    start = time.perf_counter()
    runs = []
    for task in tasks:
        for seed in seeds:
            run = run_one(task, seed, args.max_seconds, args.full_budget)
            runs.append(run)
            print(_row(run), flush=True)
    total = time.perf_counter() - start
    load_after = os.getloadavg()

    print()
    print(
        f"greedy evaluation over {recipes.EVAL_EPISODES} episodes from seed "
        f"{recipes.EVAL_SEED}; the other episodes from seed {CHECK_SEED}"
    )
    print()
    print_table(runs)
    print()
    for task in tasks:
        mine = [run for run in runs if run["task"] == task]
        reached = [run for run in mine if run["reached"]]
        line = f"{task}: {len(reached)} of {len(mine)} seeds reached the target"
        if reached:
            steps = [run["steps_to_target"] for run in reached]
            seconds = [run["seconds_to_target"] for run in reached]
            line += (
                f"; environment steps to target median {np.median(steps):,.0f}, "
                f"max {max(steps):,}; training time median "
                f"{np.median(seconds):.1f} s, max {max(seconds):.1f} s"
            )
        print(line)
    versions = common.versions()
    print(
        f"total {total:.0f} s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; {os.cpu_count()} CPUs; keras "
        f"{keras.__version__}, backend {keras.backend.backend()}, Python "
        f"{platform.python_version()}"
    )
    results = {
        "config": vars(args),
        "total_seconds": total,
        "load_average": {"before": load_before, "after": load_after},
        "versions": versions,
        "runs": runs,
    }
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
