"""`ActorCritic` and `DQN` trained by `fit()` on CartPole-v1: time to solve.

Trains each agent of `keras_custom.reinforcement` on gymnasium's
``CartPole-v1`` with the recipes of `keras_custom.recipes.reinforcement`
(the ones the quality tests and the demo use), one run per agent and seed:

- ``a2c``: `ActorCritic` on `RolloutDataset` (8 vectorized environments, 16
  steps each per update, GAE, normalized advantages; two 64x64 tanh MLPs;
  Adam 1e-3 with global gradient clipping). Target: a greedy mean return of
  at least 475 over 20 episodes.
- ``dqn``: double `DQN` on `ReplayBufferDataset` (one environment, two
  steps per update of 256 transitions; a 256x256 ReLU Q-network, a soft
  target update with tau 0.005; Adam 1e-3 with global gradient clipping;
  epsilon decaying linearly from 1 to 0.04 over 10,000 steps). Target: a
  greedy mean return of at least 400 over 20 episodes.

Both must reach their target within 10 minutes of training wall time
(``--max-seconds``). Training runs `fit(dataset, steps_per_epoch=...)` one
epoch at a time with the `EpisodeReturn` callback
(the recipes' `train_agent`; 50 updates per epoch for A2C, 500
for DQN). After each epoch the greedy policy is evaluated with
``evaluate_policy(model, env, 20, seed=10000)`` (for A2C, only after an
epoch whose training episodes returned at least 300 on average, or
``--eval-gate``); the run stops as soon as that reaches the target, or
when the time budget is spent. Evaluation time is not training time.
Because the run stops at the first evaluation above the target, that
evaluation is optimistic; the script therefore also evaluates the final
policy on 20 other episodes (seeds from 20000), and reports both.

Reported per agent and seed: the training wall time, the environment steps
and updates done, the training time, updates and environment steps to the
target (or "not reached"), the greedy return at the stop and on the other
episodes (mean ± std), and the wall time of the whole run. The exit code is
0 whatever the result: this is a report, not a test. ``main()`` returns the
results as a dict (what ``--json`` writes).

Usage::

    .venv/bin/python -m benchmarks.reinforcement [--agents a2c,dqn]
        [--seeds 0,1,2] [--max-seconds 600] [--eval-gate ...]
        [--json results.json]
"""

from __future__ import annotations

import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import common
from keras_custom.recipes import reinforcement as recipes

#: Per agent: the recipe, the greedy mean return to reach, and the default
#: training return above which an epoch is evaluated greedily (`None`:
#: every epoch).
AGENTS = {
    "a2c": (recipes.cartpole_actor_critic, 475.0, 300.0),
    "dqn": (recipes.cartpole_dqn, 400.0, None),
}
#: Seed of the first of the other 20 evaluation episodes.
CHECK_SEED = 20_000


def run_one(agent: str, seed: int, max_seconds: float, eval_gate: float | None) -> dict:
    """Trains one agent from one seed until its target or the time budget.

    Args:
        agent: A key of `AGENTS`.
        seed: Seed of the recipe.
        max_seconds: Budget of training wall time.
        eval_gate: Training return above which an epoch is evaluated
            greedily; `None` for the agent's default.

    Returns:
        A dict of the run's figures (see the module docstring).
    """
    build, target, default_gate = AGENTS[agent]
    keras.backend.clear_session()
    start = time.perf_counter()
    model, dataset = build(seed)
    result = recipes.train_agent(
        model,
        dataset,
        max_seconds=max_seconds,
        target_return=target,
        eval_gate=default_gate if eval_gate is None else eval_gate,
    )
    check_mean, check_std = recipes.greedy_return(model, seed=CHECK_SEED)
    wall = time.perf_counter() - start
    return {
        "agent": agent,
        "seed": seed,
        "target": target,
        "reached": result["reached"],
        "train_seconds": result["train_seconds"],
        "environment_steps": result["environment_steps"],
        "updates": result["updates"],
        "seconds_to_target": result["seconds_to_target"],
        "updates_to_target": result["updates_to_target"],
        "steps_to_target": result["steps_to_target"],
        "eval_mean": result["eval_mean"],
        "eval_std": result["eval_std"],
        "check_mean": check_mean,
        "check_std": check_std,
        "evaluations": result["evaluations"],
        "episode_return": result["history"]["episode_return"],
        "wall_seconds": wall,
    }


def _row(run: dict) -> str:
    if run["reached"]:
        to_target = (
            f"{run['seconds_to_target']:.1f} s / {run['updates_to_target']} / "
            f"{run['steps_to_target']}"
        )
    else:
        to_target = "not reached"
    return (
        f"| {run['agent']} | {run['seed']} | {run['target']:.0f} | "
        f"{'yes' if run['reached'] else 'NO'} | {run['train_seconds']:.1f} | "
        f"{run['environment_steps']} | {run['updates']} | {to_target} | "
        f"{run['eval_mean']:.1f} ± {run['eval_std']:.1f} | "
        f"{run['check_mean']:.1f} ± {run['check_std']:.1f} | "
        f"{len(run['evaluations'])} | {run['wall_seconds']:.1f} |"
    )


def print_table(runs: list[dict]) -> None:
    """Prints one Markdown row per run."""
    head = common.table_head(
        *("agent", "seed", "target", "reached", "train s", "env steps", "updates"),
        "to target (train s / updates / env steps)",
        *("greedy at stop (20 ep.)", "greedy, other 20 ep.", "evaluations"),
        "run wall s",
    )
    print("\n".join(head))
    for run in runs:
        print(_row(run))


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark; returns the configuration and every run."""
    parser = common.new_parser(__doc__)
    parser.add_argument("--agents", default="a2c,dqn")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--eval-gate", type=float, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    agents = [name.strip() for name in args.agents.split(",") if name.strip()]
    unknown = sorted(set(agents) - set(AGENTS))
    if unknown:
        parser.error(f"unknown agents {unknown}; choose from {sorted(AGENTS)}")
    seeds = [int(seed) for seed in args.seeds.split(",")]

    load_before = os.getloadavg()
    start = time.perf_counter()
    runs = []
    for agent in agents:
        for seed in seeds:
            run = run_one(agent, seed, args.max_seconds, args.eval_gate)
            runs.append(run)
            print(_row(run), flush=True)
    total = time.perf_counter() - start
    load_after = os.getloadavg()

    print()
    print(
        f"{recipes.ENV_ID}, greedy evaluation over {recipes.EVAL_EPISODES} "
        f"episodes from seed {recipes.EVAL_SEED}, training budget "
        f"{args.max_seconds:.0f} s per run"
    )
    print()
    print_table(runs)
    print()
    for agent in agents:
        mine = [run for run in runs if run["agent"] == agent]
        reached = [run for run in mine if run["reached"]]
        line = f"{agent}: {len(reached)} of {len(mine)} seeds reached the target"
        if reached:
            times = [run["seconds_to_target"] for run in reached]
            line += (
                f"; training time to target median {np.median(times):.1f} s, "
                f"max {max(times):.1f} s"
            )
        print(line)
    print(
        f"total {total:.0f} s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; {os.cpu_count()} CPUs; keras "
        f"{keras.__version__}, tensorflow {tf.__version__}, Python "
        f"{platform.python_version()}"
    )
    results = {
        "config": vars(args),
        "total_seconds": total,
        "load_average": {"before": load_before, "after": load_after},
        "versions": common.versions(),
        "runs": runs,
    }
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
