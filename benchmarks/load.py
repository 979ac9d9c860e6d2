"""Long runs: resident memory over 10,000+ steps and the number of traces.

Trains, in one process, one after the other:

- ``keras_model``: a plain ``keras.Model`` MLP classifier (64 -> 128 relu
  -> 10), the baseline;
- ``custom_model``: the same network as a ``keras_custom.CustomModel``;
- ``gan``: a ``keras_custom.GAN`` (generator 32 -> 128 relu -> 64 sigmoid,
  discriminator 64 -> 128 relu -> 1), two optimizers and noise drawn in
  every step;

each with ``fit()`` for ``--steps`` steps (``--epochs`` epochs of
``steps / epochs`` steps over a repeated ``tf.data.Dataset`` of the bundled
digits, batch 64), then ``evaluate()`` once per epoch as a callback would
(``validation_data``). A callback reads the process's resident set size
(``VmRSS`` of ``/proc/self/status``) every ``--sample-every`` steps.

Reported per model: the resident memory after warm-up (the first epoch)
and at the end, its growth after warm-up in MiB and per 1,000 steps (the
slope of a least-squares line through the samples after warm-up), the peak,
and the number of times the train and test steps were traced (the Python
body of ``train_step`` / ``test_step`` runs once per trace: it is counted
by a subclass), after the first epoch and at the end. A step whose first
call creates variables (compiled metrics are built then) is traced twice by
``tf.function``, once to create them. A run that retraces per step or leaks
tensors shows a growing slope and a trace count that grows with the steps; a healthy one
traces once per input signature and stays flat after warm-up.

Usage::

    python -m benchmarks.load [--steps 10000] [--epochs 10] [--json out.json]

The exit code is 0 whatever the result: this is a report, not a test.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import common
from keras_custom import GAN, CustomModel
from keras_custom.recipes import generative as networks

BATCH_SIZE = 64


def resident_mib() -> float:
    """The resident set size of this process, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


class MemorySampler(keras.callbacks.Callback):
    """Records `(step, resident MiB)` every `every` training steps."""

    def __init__(self, every: int):
        super().__init__()
        self.every, self.step, self.samples = every, 0, []
        self.traces_after_first_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.traces_after_first_epoch = type(self.model).train_traces

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self.samples.append((self.step, resident_mib()))


def counting(cls):
    """A subclass of `cls` that counts how often its steps are traced."""

    class Counting(cls):
        train_traces = 0
        test_traces = 0

        def train_step(self, data):
            type(self).train_traces += 1
            return super().train_step(data)

        def test_step(self, data):
            type(self).test_traces += 1
            return super().test_step(data)

    Counting.__name__ = f"Counting{cls.__name__}"
    return Counting


def classifier(cls):
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(128, activation="relu")(inputs)
    model = cls(inputs, keras.layers.Dense(10)(hidden))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def gan():
    model = counting(GAN)(
        networks.build_generator(units=128),
        networks.build_discriminator(units=128),
        latent_dim=networks.GAN_LATENT_DIM,
        seed=0,
    )
    model.compile()
    return model


def run(name: str, model, data, validation, steps: int, epochs: int, every: int):
    sampler = MemorySampler(every)
    start = time.perf_counter()
    model.fit(
        data,
        steps_per_epoch=steps // epochs,
        epochs=epochs,
        validation_data=validation,
        verbose=0,
        callbacks=[sampler],
    )
    seconds = time.perf_counter() - start
    samples = np.array(sampler.samples)
    warm = samples[samples[:, 0] > steps // epochs]
    slope = np.polyfit(warm[:, 0] / 1000.0, warm[:, 1], 1)[0] if len(warm) > 2 else 0.0
    return {
        "model": name,
        "steps": int(samples[-1, 0]),
        "seconds": round(seconds, 1),
        "rss_after_warmup_mib": round(float(warm[0, 1]), 1),
        "rss_end_mib": round(float(samples[-1, 1]), 1),
        "growth_after_warmup_mib": round(float(samples[-1, 1] - warm[0, 1]), 1),
        "slope_mib_per_1k_steps": round(float(slope), 3),
        "rss_peak_mib": round(float(samples[:, 1].max()), 1),
        "train_traces_after_epoch_1": sampler.traces_after_first_epoch,
        "train_traces": type(model).train_traces,
        "test_traces": type(model).test_traces,
        "samples": samples.tolist(),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = common.new_parser(__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sample-every", type=int, default=250)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = networks.load_digits()
    labeled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(2048, seed=0)
    labeled = labeled.batch(BATCH_SIZE, drop_remainder=True).repeat()
    images = tf.data.Dataset.from_tensor_slices(x).shuffle(2048, seed=0)
    images = images.batch(BATCH_SIZE, drop_remainder=True).repeat()
    labeled_test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(64)
    images_test = tf.data.Dataset.from_tensor_slices(x_test).batch(64)
    runs = [
        (
            "keras_model",
            lambda: classifier(counting(keras.Model)),
            labeled,
            labeled_test,
        ),
        (
            "custom_model",
            lambda: classifier(counting(CustomModel)),
            labeled,
            labeled_test,
        ),
        ("gan", gan, images, images_test),
    ]
    results = []
    for name, build, data, validation in runs:
        keras.backend.clear_session()
        results.append(
            run(
                name,
                build(),
                data,
                validation,
                args.steps,
                args.epochs,
                args.sample_every,
            )
        )
    columns = [
        "model",
        "steps",
        "seconds",
        "rss_after_warmup_mib",
        "rss_end_mib",
        "growth_after_warmup_mib",
        "slope_mib_per_1k_steps",
        "rss_peak_mib",
        "train_traces_after_epoch_1",
        "train_traces",
        "test_traces",
    ]
    print("\n".join(common.table_head(*columns)))
    for result in results:
        print("| " + " | ".join(str(result[c]) for c in columns) + " |")
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
