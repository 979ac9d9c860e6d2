"""Multi-worker training: a `GAN` on the digits under `MultiWorkerMirroredStrategy`.

An example of launching a multi-worker run. On one machine:

    python -m keras_custom.demo.multi_worker --workers 2

starts two worker processes on 127.0.0.1 (each with its own `TF_CONFIG`),
which train one `GAN` together with plain `fit()` and end with the same
weights; the chief (worker 0) saves `gan_multi_worker.keras`. On a real
cluster, run on every machine, with that machine's `TF_CONFIG`:

    TF_CONFIG='{"cluster": {"worker": ["host0:port", "host1:port"]},
                "task": {"type": "worker", "index": 0}}' \\
        python -m keras_custom.demo.multi_worker --worker

The program follows the pattern of `tf.distribute`: the strategy is created
first, the model is built and compiled in its scope, and `fit()` takes the
global batch size, which the strategy splits among all replicas of all
workers.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from keras_custom.demo._common import DEFAULT_OUTPUT_DIR

#: Global batch size: the sum of the batches of every worker.
GLOBAL_BATCH_SIZE = 64


def weights_digest(model) -> str:
    """A short hash of the model's weights, to compare workers."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


def run_worker(output_dir: str | os.PathLike, epochs: int, seed: int) -> dict:
    """Trains the `GAN` as one worker of the cluster in `TF_CONFIG`.

    Returns:
        `{"index", "d_loss", "g_loss", "digest"}`: the worker's index, the
        last epoch's losses and the hash of its final weights.
    """
    import tensorflow as tf

    # First, before any other TensorFlow operation.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    import keras

    from keras_custom.recipes import generative

    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    keras.utils.set_random_seed(seed)  # the same initial weights everywhere
    (x_train, _), _ = generative.load_digits()
    with strategy.scope():
        # Synchronized batch normalization: with a plain one, each replica
        # keeps moving statistics of its own part of the batch.
        model = generative.build_gan(seed, synchronized=True)
        model.compile()
    history = model.fit(
        x_train,
        batch_size=GLOBAL_BATCH_SIZE,
        epochs=epochs,
        verbose=2 if index == 0 else 0,
    )
    # Every worker saves (the chief where it is kept, the others to a
    # scratch folder), as `tf.distribute` recommends.
    if index == 0:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        model.save(Path(output_dir) / "gan_multi_worker.keras")
    else:
        with tempfile.TemporaryDirectory() as scratch:
            model.save(Path(scratch) / "gan.keras")
    return {
        "index": index,
        "d_loss": history.history["d_loss"][-1],
        "g_loss": history.history["g_loss"][-1],
        "digest": weights_digest(model),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="local workers")
    parser.add_argument("--worker", action="store_true", help="be one worker")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=str(DEFAULT_OUTPUT_DIR))
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    if args.worker:
        print(
            "RESULT " + json.dumps(run_worker(args.output_dir, args.epochs, args.seed))
        )
        return 0

    from keras_custom.testing.local_cluster import launch_local_workers

    results = launch_local_workers(
        [
            "-m",
            "keras_custom.demo.multi_worker",
            "--worker",
            f"--epochs={args.epochs}",
            f"--seed={args.seed}",
            f"--output-dir={args.output_dir}",
        ],
        num_workers=args.workers,
        timeout=args.timeout,
    )
    reports = []
    for result in results:
        lines = [
            line for line in result.stdout.splitlines() if line.startswith("RESULT ")
        ]
        if result.returncode != 0 or not lines:
            print(f"worker {result.index} failed:\n{result.stderr[-3000:]}")
            return 1
        reports.append(json.loads(lines[-1][len("RESULT ") :]))
    for report in reports:
        print(
            f"worker {report['index']}: d_loss {report['d_loss']:.4f}, "
            f"g_loss {report['g_loss']:.4f}, weights {report['digest']}"
        )
    same = len({report["digest"] for report in reports}) == 1
    print("identical weights on every worker" if same else "WEIGHTS DIFFER")
    print(f"saved {Path(args.output_dir) / 'gan_multi_worker.keras'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
