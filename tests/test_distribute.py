"""Replicas behave as one device on the global batch: two replicas of a
MirroredStrategy, and two worker processes of a MultiWorkerMirroredStrategy, end with
the training state and logs of one replica on the same global batches, for every
weighting method (both gradient modes) and every architecture, with partial labels
split unevenly between the replicas (so that per-replica statistics would differ
from global ones). The runs are in float64, where the states agree to about 1e-15;
the tests allow 1e-9 (see `distribute_utils.py` for why not float32). Under the
mixed_float16 policy (float16 arithmetic, a loss scale), two replicas' changes of the
variables match one replica's to 2% of their size."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import distribute_utils

pytestmark = pytest.mark.slow

_TESTS = os.path.dirname(os.path.abspath(__file__))
_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([_TESTS, os.environ.get("PYTHONPATH", "")])}

_MIRRORED = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras_mtl
    from distribute_utils import CASES, differences, run

    if sys.argv[1] == "weighting":
        runs = [("hard_sharing", case) for case in CASES]
    else:
        runs = [(a, "dwa") for a in keras_mtl.architectures.available()]
        runs += [(a, "pcgrad/representation") for a in ("split", "mtan")]
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    failures = []
    for architecture, case in runs:
        state, logs = differences(*run(tf.distribute.get_strategy(), architecture, case),
                                  *run(mirrored, architecture, case))
        print(f"{architecture:14s} {case:34s} state {state:.1e} logs {logs:.1e}", flush=True)
        if not (state < 1e-9 and logs < 1e-9):
            failures.append((architecture, case, state, logs))
    assert not failures, failures
    print("OK")
""")


def _mirrored(which):
    result = subprocess.run([sys.executable, "-c", _MIRRORED, which], capture_output=True,
                            text=True, env=_ENV, timeout=900)
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), (
        result.stdout[-3000:] + result.stderr[-3000:])


def test_every_weighting_method_two_replicas_match_one():
    _mirrored("weighting")


def test_every_architecture_two_replicas_match_one():
    _mirrored("architectures")


_MIXED = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from distribute_utils import run_mixed

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    failures = []
    for case in sys.argv[1:]:
        before, one = run_mixed(tf.distribute.get_strategy(), "hard_sharing", case)
        same, two = run_mixed(mirrored, "hard_sharing", case)
        # float16 arithmetic: the changes agree to about 1e-3 of their size; a combined
        # gradient twice too large (replicas summed, not averaged) misses by about 4.
        worst = 0.0
        for b, s, a1, a2 in zip(before, same, one, two):
            np.testing.assert_array_equal(b, s)
            change = np.abs(a1 - b).max()
            worst = max(worst, np.abs(a1 - a2).max() / (change + 1e-6))
        moved = max(np.abs(a - b).max() for a, b in zip(one, before))
        print(f"{case:34s} largest change {moved:.1e}, difference / change {worst:.1e}",
              flush=True)
        if not (worst < 0.02 and moved > 1e-3):
            failures.append((case, moved, worst))
    assert not failures, failures
    print("OK")
""")


def test_mixed_float16_two_replicas_match_one():
    # Under a loss scale the methods combine per-variable blocks summed over replicas,
    # unscaled; every gradient reaches the optimizer scaled and summed.
    result = subprocess.run(
        [sys.executable, "-c", _MIXED, "equal", "gradnorm", "mgda/shared_parameters",
         "nash_mtl/shared_parameters", "pcgrad/representation", "graddrop/representation"],
        capture_output=True, text=True, env=_ENV, timeout=900)
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), (
        result.stdout[-3000:] + result.stderr[-3000:])


_MULTI_WORKER_RUNS = [("hard_sharing", "dtp"), ("hard_sharing", "gradnorm"),
                      ("hard_sharing", "mgda/shared_parameters"),
                      ("hard_sharing", "pcgrad/representation"), ("mtan", "dwa")]

_WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    from distribute_utils import run
    for i, (architecture, case) in enumerate(json.loads(sys.argv[2])):
        state, logs = run(strategy, architecture, case)
        np.savez(f"{sys.argv[1]}_{i}.npz", *state)
        with open(f"{sys.argv[1]}_{i}.json", "w") as f:
            json.dump({k: [float(v) for v in vs] for k, vs in logs.items()}, f)
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_match_one_process_on_the_same_global_batches(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path / f"worker{index}"),
             json.dumps(_MULTI_WORKER_RUNS)],
            env={**_ENV, "TF_CONFIG": json.dumps(tf_config)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in processes:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    for i, (architecture, case) in enumerate(_MULTI_WORKER_RUNS):
        states, logs = [], []
        for index in range(2):
            saved = np.load(tmp_path / f"worker{index}_{i}.npz")
            states.append([saved[k] for k in saved.files])
            logs.append(json.loads((tmp_path / f"worker{index}_{i}.json").read_text()))
        for a, b in zip(*states):
            np.testing.assert_array_equal(a, b)
        reference = distribute_utils.run(tf.distribute.get_strategy(), architecture, case)
        state, log = distribute_utils.differences(*reference, states[0], logs[0])
        assert state < 1e-9 and log < 1e-9, (architecture, case, state, log)
