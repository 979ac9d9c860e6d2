"""The actor-critic demo: a `keras_custom.ActorCritic` balancing CartPole."""

from pathlib import Path
from typing import Any

import numpy as np

from keras_custom.demo import _common
from keras_custom.recipes import reinforcement
from keras_custom.reinforcement import EpisodeReturn

#: Most epochs of the demo, of `reinforcement.A2C_STEPS_PER_EPOCH` updates
#: each.
#: Training stops at the first epoch whose greedy policy balances every
#: selection episode to the time limit; over seeds 0 to 5 that took 3 to 16
#: epochs, so 30 leaves about twice the slowest seed's need.
ACTOR_CRITIC_DEMO_EPOCHS = 30


def _save_figure(
    plt,
    history: dict[str, list[float]],
    greedy: tuple[float, float],
    random_return: float,
    path: Path,
) -> None:
    """Draws the return per epoch and the losses, and saves them."""
    mean, std = greedy
    fig, (return_ax, loss_ax) = plt.subplots(
        1, 2, figsize=(13, 4.8), layout="constrained"
    )
    fig.suptitle(
        f"keras-custom demo: ActorCritic (A2C) on {reinforcement.ENV_ID} "
        f"(greedy return {mean:.1f} ± {std:.1f} over "
        f"{reinforcement.EVAL_EPISODES} episodes)",
        fontsize=12,
    )
    epochs = np.arange(1, len(history["episode_return"]) + 1)
    return_ax.plot(
        epochs, history["episode_return"], marker="o", label="training episode_return"
    )
    if "greedy_return" in history:
        return_ax.plot(
            epochs,
            history["greedy_return"],
            "s",
            color="tab:green",
            label="greedy policy, selection episodes",
        )
    return_ax.axhline(mean, color="tab:green", label="kept policy, evaluation (mean)")
    return_ax.axhspan(mean - std, mean + std, color="tab:green", alpha=0.15)
    return_ax.axhline(
        random_return, color="gray", ls=":", label="uniformly random policy"
    )
    return_ax.axhline(reinforcement.MAX_RETURN, color="black", ls="--", lw=0.8)
    return_ax.set(
        title="Mean return of the episodes of each epoch",
        xlabel="epoch",
        ylabel="return",
        ylim=(0, reinforcement.MAX_RETURN * 1.05),
    )
    return_ax.legend(loc="lower right")
    for key in ("policy_loss", "value_loss", "entropy"):
        loss_ax.plot(epochs, history[key], label=key)
    loss_ax.set(title="Losses per epoch", xlabel="epoch", yscale="symlog")
    loss_ax.legend()
    for ax in (return_ax, loss_ax):
        ax.grid(alpha=0.3)
    _common.save_figure(plt, fig, path)


@_common.demo
def run(
    output_dir: Path, epochs: int | None, seed: int, verbose: int
) -> dict[str, Any]:
    """Trains an `ActorCritic` on CartPole-v1 and evaluates its greedy policy.

    The recipe is `keras_custom.recipes.reinforcement.cartpole_actor_critic`:
    A2C with two small tanh MLPs (policy and value) on 8 vectorized
    `CartPole-v1` environments, 16 steps of each per update, generalized
    advantage estimation. It trains with a plain `fit(rollouts,
    steps_per_epoch=50)`, the `EpisodeReturn` callback, which logs the mean
    return of the training episodes of each epoch, and `PolicyEvaluation`
    (`reinforcement.best_policy_callback`), which evaluates the greedy
    policy (the most probable action) on 20 selection episodes after each
    epoch, keeps the best weights and stops once every selection
    episode reaches the time limit: A2C can collapse after it has solved
    the task, at an epoch that depends on the machine's floating-point
    path. The kept policy is then evaluated over 20 other episodes
    (`evaluate_policy`) and printed next to the uniformly random policy's
    return; 500 is the most an episode can return. It writes
    `actor_critic.keras` (the trained `ActorCritic`, whose `greedy_actions`
    is the kept policy) and
    `actor_critic.png` (the training return per epoch with the greedy and
    random returns, and the losses) to `output_dir`.

    Args:
        output_dir: Folder to write the model and the figure to; created if
            missing.
        epochs: Most epochs of 50 updates; `None` means
            `ACTOR_CRITIC_DEMO_EPOCHS`.
        seed: Seed of the initialization, the environments and the sampling.
        verbose: Verbosity of `fit()`: 1 for a progress bar, 0 for none.

    Returns:
        Dict with `"greedy_return"` and `"greedy_return_std"` (the greedy
        policy's mean and standard deviation over 20 episodes),
        `"random_return"`, `"best_epoch"` (1-based epoch of the kept
        policy), `"environment_steps"`, `"history"` (the `fit()` history
        dict), `"model_path"` and `"figure_path"` (`pathlib.Path`s).
    """
    plt = _common.import_pyplot()
    _common.import_gymnasium()
    if epochs is None:
        epochs = ACTOR_CRITIC_DEMO_EPOCHS
    output_dir.mkdir(parents=True, exist_ok=True)

    model, rollouts = reinforcement.cartpole_actor_critic(seed=seed)
    best_policy = reinforcement.best_policy_callback()
    history = model.fit(
        rollouts,
        steps_per_epoch=reinforcement.A2C_STEPS_PER_EPOCH,
        epochs=epochs,
        callbacks=[EpisodeReturn(rollouts), best_policy],
        verbose=verbose,
    ).history
    best_epoch = best_policy.best_epoch + 1
    greedy = reinforcement.greedy_return(model)
    random_return, _ = reinforcement.random_policy_return()
    print(
        f"actor_critic greedy return: {greedy[0]:.1f} ± {greedy[1]:.1f} over "
        f"{reinforcement.EVAL_EPISODES} episodes (random policy: "
        f"{random_return:.1f}; at most {reinforcement.MAX_RETURN:.0f})"
    )
    print(
        f"actor_critic kept policy: epoch {best_epoch} of "
        f"{len(history['loss'])} (selection return {best_policy.best_return:.1f} "
        f"over {reinforcement.SELECTION_EPISODES} other episodes)"
    )
    print(
        f"actor_critic final training episode return: "
        f"{history['episode_return'][-1]:.1f} "
        f"({rollouts.environment_steps} environment steps)"
    )

    model_path = _common.save_model(model, output_dir, "actor_critic")
    figure_path = output_dir / "actor_critic.png"
    _save_figure(plt, history, greedy, random_return, figure_path)
    return {
        "greedy_return": greedy[0],
        "greedy_return_std": greedy[1],
        "random_return": random_return,
        "best_epoch": best_epoch,
        "environment_steps": rollouts.environment_steps,
        "history": history,
        "model_path": model_path,
        "figure_path": figure_path,
    }
