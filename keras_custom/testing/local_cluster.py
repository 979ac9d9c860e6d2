"""Start a multi-worker TensorFlow cluster as processes on this machine."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class WorkerResult:
    """What one worker process did: its exit code and its output."""

    index: int
    returncode: int
    stdout: str
    stderr: str


def free_ports(count: int) -> list[int]:
    """`count` TCP ports of 127.0.0.1 that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """The `TF_CONFIG` of worker `index` of a cluster on 127.0.0.1 `ports`."""
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def launch_local_workers(
    argv: Sequence[str],
    num_workers: int = 2,
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> list[WorkerResult]:
    """Runs `python *argv` as the workers of one cluster; waits for them all.

    Each worker gets the `TF_CONFIG` of its index in a cluster of free ports
    on 127.0.0.1, so `tf.distribute.MultiWorkerMirroredStrategy()` created
    first thing in the program joins the others. Every wait is bounded: when
    `timeout` seconds have passed, every worker still running is killed and
    `TimeoutError` raised with the tail of their output.

    Args:
        argv: Arguments of the Python interpreter (`["-m", "module", ...]` or
            `["script.py", ...]`).
        num_workers: Number of worker processes.
        timeout: Seconds all workers together may take.
        env: Environment of the workers (default: this process's).
        cwd: Working directory of the workers.

    Returns:
        One `WorkerResult` per worker, in index order.

    Example:

    ```python
    import sys
    from keras_custom.testing.local_cluster import launch_local_workers

    results = launch_local_workers(
        ["-c", "import os, json; print(json.loads(os.environ['TF_CONFIG'])"
               "['task']['index'])"], num_workers=2, timeout=60)
    assert [r.stdout.strip() for r in results] == ["0", "1"]
    ```
    """
    ports = free_ports(num_workers)
    base = dict(os.environ if env is None else env)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as logs:
        processes, files = [], []
        for index in range(num_workers):
            out = open(os.path.join(logs, f"{index}.out"), "w+")  # noqa: SIM115
            err = open(os.path.join(logs, f"{index}.err"), "w+")  # noqa: SIM115
            files.append((out, err))
            worker_env = {**base, "TF_CONFIG": tf_config(ports, index)}
            processes.append(
                subprocess.Popen(
                    [sys.executable, *argv],
                    stdout=out,
                    stderr=err,
                    env=worker_env,
                    cwd=cwd,
                )
            )
        timed_out = False
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
        if timed_out:
            for process in processes:
                process.kill()
            for process in processes:
                process.wait(timeout=30)
        results = []
        for index, (process, (out, err)) in enumerate(
            zip(processes, files, strict=True)
        ):
            out.seek(0)
            err.seek(0)
            results.append(
                WorkerResult(index, process.returncode, out.read(), err.read())
            )
            out.close()
            err.close()
    if timed_out:
        tails = "\n".join(
            f"--- worker {r.index} (exit {r.returncode}) ---\n{r.stderr[-2000:]}"
            for r in results
        )
        raise TimeoutError(
            f"The {num_workers} workers did not finish within {timeout:.0f} s.\n"
            + tails
        )
    return results
