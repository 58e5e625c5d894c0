"""Train-step overhead of keras_mtl vs plain Keras multi-output `compile` + `fit`.

Same model (hard sharing), same data, same batch, same process. Plain Keras uses
`compile(loss={...}, loss_weights={...})` with one optimizer; keras_mtl uses its
train step with separate shared/task optimizers. Reports steps/s (median over
epochs after a warm-up epoch) and the ratio keras_mtl / plain (higher is better;
1.0 means no overhead).

    python benchmarks/overhead.py [--quick]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_mtl  # noqa: E402


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _setting(name, quick):
    rng = np.random.default_rng(0)
    n = 512 if quick else 2048
    if name == "conv":
        x = rng.uniform(size=(n, 32, 32, 3)).astype("float32")
        backbone, shape = "conv", (32, 32, 3)
        head = lambda units: [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(units)]
    else:
        x = rng.normal(size=(n, 64)).astype("float32")
        backbone, shape = "mlp", (64,)
        head = lambda units: [keras.layers.Dense(units)]
    y = {"t0": rng.integers(0, 5, n), "t1": rng.integers(0, 5, n),
         "t2": rng.normal(size=(n, 1)).astype("float32")}
    tasks = lambda: [
        keras_mtl.Task("t0", head=head(5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        keras_mtl.Task("t1", head=head(5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        keras_mtl.Task("t2", head=head(1), loss="mse"),
    ]
    return x, y, backbone, shape, tasks


def _steps_per_second(model, x, y, batch, epochs):
    timer = _EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=epochs + 1, verbose=0, callbacks=[timer])
    steps = int(np.ceil(len(x) / batch))
    return steps / float(np.median(timer.seconds[1:]))


def run(quick=False, batch=32):
    epochs = 3 if quick else 5
    weights = {"t0": 1.0, "t1": 0.5, "t2": 2.0}
    rows = []
    for setting in ("mlp", "conv"):
        x, y, backbone, shape, tasks = _setting(setting, quick)
        results = {}
        keras.utils.set_random_seed(0)
        model = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
        plain = keras.Model(model.inputs, model.outputs)
        plain.compile(optimizer="adam", loss={t.name: t.loss for t in tasks()}, loss_weights=weights)
        results["plain keras"] = _steps_per_second(plain, x, y, batch, epochs)
        for label, kwargs in (("keras_mtl equal", {"weighting": "equal"}),
                              ("keras_mtl fixed", {"loss_weights": weights})):
            keras.utils.set_random_seed(0)
            model = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
            model.compile(optimizer="adam", task_optimizer="adam", **kwargs)
            results[label] = _steps_per_second(model, x, y, batch, epochs)
        for label, sps in results.items():
            rows.append((setting, label, sps, sps / results["plain keras"]))
    print(f"{'model':6} {'run':18} {'steps/s':>9} {'ratio vs plain':>15}")
    for setting, label, sps, ratio in rows:
        print(f"{setting:6} {label:18} {sps:9.1f} {ratio:15.3f}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer epochs")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    run(quick=args.quick, batch=args.batch)
