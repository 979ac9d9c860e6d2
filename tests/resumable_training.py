"""A training run that can be killed and resumed: the program of the
kill-and-resume tests.

`python -m tests.resumable_training CASE BACKUP_DIR OUTPUT.npz
[KILL_EPOCH KILL_BATCH] [--save-freq N] [--data KIND] [--callback WHICH]
[--steps-per-execution K]`
trains for `EPOCHS` epochs with a `BackupAndRestore` callback and op
determinism on. `CASE` is a `ConformanceTests` subclass (`module:TestClass`),
whose model trains on its data, or `dqn`: a `DQN` on two CartPole
environments through a `ReplayBufferDataset` saved with the checkpoint.

- `--save-freq`: `epoch` (default) or a number of batches.
- `--data`: `arrays` (default; NumPy arrays, `shuffle=False`), `shuffled`
  (NumPy arrays, `shuffle=True`), `dataset` (a `tf.data` pipeline that
  reshuffles every epoch with a fixed seed) or `repeated` (the same,
  repeated, with `steps_per_epoch` cutting epochs across its passes).
- `--callback`: `keras` (default; `keras.callbacks.BackupAndRestore`) or
  `keras_custom` (`keras_custom.callbacks.BackupAndRestore`).
- `--steps-per-execution`: compiled into the model (default 1).

Given `KILL_EPOCH KILL_BATCH`, the process sends itself SIGKILL after that
batch. Otherwise it writes to `OUTPUT.npz` every variable of the model (the
target network and random generator states among them), every optimizer's
variables, the epochs this run trained (`epochs_run`), the `(epoch, batch)`
of every batch this process trained (`trained`: those after which the
optimizers' step counters moved), the logs of its epochs (`log_<name>`) and,
for `dqn`, the replay dataset's state (`data_*`).
"""

import argparse
import os
import signal
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_custom.testing.multi_worker import load_test_class

EPOCHS = 4
#: Steps per epoch of the `repeated` data and of `dqn`.
STEPS_PER_EPOCH = 3
SHUFFLE_SEED = 5


class KillAt(keras.callbacks.Callback):
    """Kills its own process with SIGKILL after batch `batch` of `epoch`."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.kill_epoch, self.kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)


class EpochsRun(keras.callbacks.Callback):
    """Records the epochs this process trained, and the batches it trained
    (a batch that moved the optimizers' step counters; a resumed run reads
    past the batches it skips without a step)."""

    def __init__(self):
        super().__init__()
        self.epochs, self.trained, self.epoch, self.iterations = [], [], 0, None
        self.logs = {}

    def _iterations(self) -> int:
        return sum(
            int(optimizer.iterations.numpy())
            for optimizer in self.model.optimizers.values()
        )

    def on_train_begin(self, logs=None):
        self.iterations = self._iterations()

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        iterations = self._iterations()
        if iterations != self.iterations:
            self.trained.append((self.epoch, batch))
        self.iterations = iterations

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.logs.setdefault(name, []).append(float(value))


def backup_callback(which: str, backup_dir: str, save_freq):
    if which == "keras":
        return keras.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq)
    from keras_custom.callbacks import BackupAndRestore

    return BackupAndRestore(backup_dir, save_freq=save_freq)


def conformance_run(case_path: str, data: str, steps_per_execution: int):
    """The model of a conformance case and the `fit()` arguments of `data`."""
    case = load_test_class(case_path)()
    model = case._seeded_model(steps_per_execution=steps_per_execution)
    fit_args = case._fit_args()
    x, y = fit_args["x"], fit_args["y"]
    if data in ("arrays", "shuffled"):
        arguments = {
            "x": x,
            "y": y,
            "batch_size": case.batch_size,
            "shuffle": data == "shuffled",
        }
        return model, arguments
    elements = x if y is None else (x, y)
    count = len(keras.tree.flatten(x)[0])
    dataset = tf.data.Dataset.from_tensor_slices(elements).shuffle(
        count, seed=SHUFFLE_SEED
    )
    dataset = dataset.batch(case.batch_size)
    if data == "repeated":
        return model, {"x": dataset.repeat(), "steps_per_epoch": STEPS_PER_EPOCH}
    return model, {"x": dataset}


def dqn_run():
    """A DQN, and the `fit()` arguments of its replay dataset."""
    import gymnasium as gym

    from keras_custom import DQN
    from keras_custom.reinforcement import ReplayBufferDataset
    from tests.test_reinforcement_conformance import network

    keras.utils.set_random_seed(1234)
    model = DQN(network("q_network", 2), gamma=0.9, target_update_period=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    replay = ReplayBufferDataset(
        [gym.make("CartPole-v1") for _ in range(2)],
        model,
        batch_size=16,
        capacity=40,  # wraps around during the run
        learning_starts=24,
        steps_per_batch=2,
        epsilon=keras.optimizers.schedules.PolynomialDecay(1.0, 60, 0.1),
        seed=0,
        save_state=True,
    )
    arguments = {"x": replay, "steps_per_epoch": STEPS_PER_EPOCH}
    return model, arguments, replay


def replay_arrays(replay) -> dict:
    """The replay dataset's state as arrays, to compare between runs."""
    state = replay.get_state()
    arrays = {
        "data_environment_steps": np.asarray(state["environment_steps"]),
        "data_episode_returns": np.asarray(state["episode_returns"]),
        "data_observations": state["observations"],
        "data_rng": np.asarray(str(state["rng"])),
        "data_size": np.asarray(state["size"]),
        "data_position": np.asarray(state["position"]),
    }
    for key, value in state["buffer"].items():
        arrays[f"data_buffer_{key}"] = value
    for index, env in enumerate(replay.envs):
        arrays[f"data_env_{index}"] = np.asarray(env.unwrapped.state)
    return arrays


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("backup_dir")
    parser.add_argument("output")
    parser.add_argument("kill", nargs="*", type=int)
    parser.add_argument("--save-freq", default="epoch")
    parser.add_argument(
        "--data",
        default="arrays",
        choices=("arrays", "shuffled", "dataset", "repeated"),
    )
    parser.add_argument(
        "--callback", default="keras", choices=("keras", "keras_custom")
    )
    parser.add_argument("--steps-per-execution", default=1, type=int)
    args = parser.parse_args(argv)
    save_freq = args.save_freq if args.save_freq == "epoch" else int(args.save_freq)

    tf.config.experimental.enable_op_determinism()
    replay = None
    if args.case == "dqn":
        model, fit_args, replay = dqn_run()
    else:
        model, fit_args = conformance_run(
            args.case, args.data, args.steps_per_execution
        )
    epochs_run = EpochsRun()
    callbacks = [
        backup_callback(args.callback, args.backup_dir, save_freq),
        epochs_run,
    ]
    if args.kill:
        callbacks.append(KillAt(*args.kill))
    keras.utils.set_random_seed(99)
    model.fit(**fit_args, epochs=EPOCHS, verbose=0, callbacks=callbacks)
    arrays = {f"variable_{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    for name, optimizer in model.optimizers.items():
        for i, variable in enumerate(optimizer.variables):
            arrays[f"{name}_{i}"] = np.asarray(variable)
    if replay is not None:
        arrays.update(replay_arrays(replay))
    arrays["epochs_run"] = np.asarray(epochs_run.epochs)
    arrays["trained"] = np.asarray(epochs_run.trained).reshape(-1, 2)
    for name, values in epochs_run.logs.items():
        arrays[f"log_{name}"] = np.asarray(values)
    np.savez(args.output, **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
