"""Two replicas of a MirroredStrategy give the weights, optimizer and weighting states
and logs of one replica on the same global batch, for every weighting method (both
gradient modes) and every architecture, with partial labels split unevenly between
the replicas (so that per-replica statistics would differ from global ones)."""

import os
import subprocess
import sys
import textwrap


_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, keras_mtl
    from keras_mtl import weighting as w

    def tasks():
        return [keras_mtl.Task("a", head=3, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                keras_mtl.Task("b", head=1, loss="mse"),
                keras_mtl.Task("c", head=2, loss="mse")]

    def mlp(shape):
        return keras_mtl.backbones.mlp(shape, units=(16, 8))

    def build(architecture):
        if architecture == "mtan":
            return keras_mtl.build("mtan", [keras_mtl.Task("a", head=3, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                                            keras_mtl.Task("b", head=1, loss="mse")],
                                   input_shape=(8, 8, 1), filters=(4, 4))
        options = {"split": {"split_at": 1}, "mmoe": {"num_experts": 2},
                   "cgc": {"num_task_experts": 1}, "ple": {"num_task_experts": 1}}.get(architecture, {})
        return keras_mtl.build(architecture, tasks(), backbone=mlp, input_shape=(8,), **options)

    def data(architecture):
        rng = np.random.default_rng(1)
        n = 48
        if architecture == "mtan":
            x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
            y = {"a": rng.integers(0, 3, (n, 8, 8)), "b": rng.normal(size=(n, 8, 8, 1)).astype("float32")}
        else:
            x = rng.normal(size=(n, 8)).astype("float32")
            y = {"a": rng.integers(0, 3, n), "b": rng.normal(size=(n, 1)).astype("float32"),
                 "c": rng.normal(size=(n, 2)).astype("float32")}
        # Task b is labelled in 5 of every 16 examples, all in the first replica's half
        # of each global batch; the last batch has no label for it at all.
        mask = ((np.arange(n) % 16) < 5) & (np.arange(n) < 32)
        # Per-example masks, shaped to broadcast against per-pixel losses.
        shape = (n, 1, 1) if architecture == "mtan" else (n,)
        weights = {name: np.ones(shape, "float32") for name in y}
        weights["b"] = mask.astype("float32").reshape(shape)
        return tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(16)

    def run(strategy, architecture, make):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = build(architecture)
            model.compile(optimizer=keras.optimizers.Adam(0.01), task_optimizer=keras.optimizers.SGD(0.1),
                          weighting=make())
        logs = model.fit(data(architecture), epochs=3, verbose=0).history
        state = [v.numpy() for v in model.variables + model.optimizer.variables + model.weighting.variables]
        return state, logs

    cases = {
        "equal": lambda: "equal",
        "fixed": lambda: w.Fixed([0.3, 2.0, 1.0]),
        "dwa": lambda: w.DWA(),
        "uncertainty": lambda: w.Uncertainty(),
        "gradnorm": lambda: w.GradNorm(),
        "dtp": lambda: w.DTP({"a": "accuracy"}),
        "rlw": lambda: w.RLW(seed=3),
        "gls": lambda: w.GLS(),
        "famo": lambda: w.FAMO(),
    }
    for name, cls in [("mgda", w.MGDA), ("pcgrad", lambda **k: w.PCGrad(seed=3, **k)),
                      ("cagrad", w.CAGrad), ("imtl", w.IMTL), ("nash_mtl", w.NashMTL),
                      ("aligned_mtl", w.AlignedMTL), ("gradvac", lambda **k: w.GradVac(seed=3, **k)),
                      ("graddrop", lambda **k: w.GradDrop(seed=3, **k))]:
        for mode in ("shared_parameters", "representation"):
            cases[f"{name}/{mode}"] = lambda cls=cls, mode=mode: cls(gradient_mode=mode)

    which = sys.argv[1]
    if which == "weighting":
        runs = [("hard_sharing", name, make) for name, make in cases.items()]
    else:
        runs = [(a, "dwa", cases["dwa"]) for a in keras_mtl.architectures.available()]
        runs += [(a, "pcgrad/representation", cases["pcgrad/representation"]) for a in ("split", "mtan")]
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    failures = []
    for architecture, name, make in runs:
        two, logs2 = run(mirrored, architecture, make)
        one, logs1 = run(tf.distribute.get_strategy(), architecture, make)
        assert len(one) == len(two)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
        log_diff = max(float(np.max(np.abs(np.subtract(logs1[k], logs2[k])) / (1 + np.abs(logs1[k]))))
                       for k in logs1)
        print(f"{architecture:14s} {name:34s} state {diff:.1e} logs {log_diff:.1e}", flush=True)
        if not (diff < 1e-5 and log_diff < 1e-5):
            failures.append((architecture, name, diff, log_diff))
    assert not failures, failures
    print("OK")
""")


def _run(which):
    result = subprocess.run([sys.executable, "-c", _SCRIPT, which], capture_output=True,
                            text=True, env=_ENV, timeout=900)
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), (
        result.stdout[-3000:] + result.stderr[-3000:])


def test_every_weighting_method_two_replicas_match_one():
    _run("weighting")


def test_every_architecture_two_replicas_match_one():
    _run("architectures")
