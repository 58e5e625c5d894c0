"""Train-step overhead of keras_mtl vs plain Keras multi-output `compile` + `fit`.

Same model (hard sharing), same data pipeline, same batch, same process. Plain Keras
uses `compile(loss={...}, loss_weights={...})` with one optimizer; keras_mtl uses
its train step with equal, fixed, DWA or uncertainty weighting, with its default
optimizers (one for the shared and task variables, a copy for the weighting's own
variables), all on Keras' own train function and callback list (the default); once
more with equal weighting and a separate task optimizer; once with equal weighting
and `on_nonfinite="ignore"` (no per-step check for non-finite losses and gradients,
as in plain Keras); and once with equal
weighting and `compile(fast_dispatch=True)` (TensorFlow only: one compiled call per
step, which saves Keras' per-step dispatch of an outer compiled function and an
`Optional` and `tf.function`'s argument matching, through private internals). Each
model trains one epoch per round, in rounds interleaved with the others; the table
gives the median steps/s and the
median of the per-round ratios keras_mtl / plain Keras (higher is better; 1.0 means
no overhead; the target is >= 0.95, i.e. at most 1.05x plain Keras' step time),
with and without `jit_compile`.

Models: "mlp", a 256-128 MLP trunk on 64 tabular features with two 5-class
heads and one regression head; "scenes", the hard-sharing SegNet of
`applications/scenes.py` (filters 16-32-64, 48x64 images, segmentation, depth and
normals heads of a 3x3 and a 1x1 convolution) on Scenes images.

    python -m benchmarks.overhead [--quick] [--models mlp,scenes] [--jit both]
                                  [--steps-per-execution N]

`--quick` uses less data and fewer rounds and skips the SegNet under XLA.
`--steps-per-execution N` compiles every contender, plain Keras included, with
`steps_per_execution=N`: Keras' public knob for steps too short for one call each.

On the JAX backend (`KERAS_BACKEND=jax python -m benchmarks.overhead --jit on`) both
contenders run Keras' jit-compiled JAX train function, with keras_mtl's JAX trainer; the
`fast_dispatch` row is TensorFlow's only.
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_mtl  # noqa: E402
from benchmarks import interleaved_rounds, keras_epoch_runner, markdown_table, summarize  # noqa: E402

WEIGHTINGS = ("equal", "fixed", "dwa", "uncertainty")
TARGET_RATIO = 0.95


def mlp_setting(examples, batch_size, features=64, units=(256, 128), seed=0):
    """`(tasks_factory, backbone, input_shape, dataset)` of the tabular MLP."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, features)).astype("float32")
    y = {"t0": rng.integers(0, 5, examples), "t1": rng.integers(0, 5, examples),
         "t2": rng.normal(size=(examples, 1)).astype("float32")}

    def tasks():
        ce = lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return [keras_mtl.Task("t0", head=5, loss=ce()), keras_mtl.Task("t1", head=5, loss=ce()),
                keras_mtl.Task("t2", head=1, loss="mse")]

    backbone = functools.partial(keras_mtl.backbones.mlp, units=units)
    return tasks, backbone, (features,), _dataset(x, y, batch_size)


def scenes_setting(examples, batch_size, height=48, width=64, filters=(16, 32, 64), seed=0):
    """`(tasks_factory, backbone, input_shape, dataset)` of the Scenes SegNet."""
    from keras_mtl.backbones.segnet import segnet
    from keras_mtl.datasets.scenes import DENSE_TASKS, NUM_CLASSES, scenes_arrays

    # Timing does not depend on which images: render a few and repeat them.
    rendered = min(examples, 64)
    images, labels = scenes_arrays(rendered, height, width, seed=seed)
    repeats = -(-examples // rendered)
    x = np.concatenate([images] * repeats)[:examples]
    y = {t: np.concatenate([labels[t]] * repeats)[:examples] for t in DENSE_TASKS}

    def head(name, channels):
        return [keras.layers.Conv2D(filters[0], 3, padding="same", activation="relu",
                                    name=f"{name}_head"),
                keras.layers.Conv2D(channels, 1, name=name)]

    def tasks():
        losses = keras_mtl.losses
        return [keras_mtl.Task("segmentation", head=head("segmentation", NUM_CLASSES),
                               loss=losses.PixelCrossEntropy()),
                keras_mtl.Task("depth", head=head("depth", 1), loss=losses.DepthL1()),
                keras_mtl.Task("normals", head=head("normals", 3), loss=losses.NormalCosine())]

    backbone = functools.partial(segnet, filters=filters, convs_per_block=1)
    return tasks, backbone, (height, width, 3), _dataset(x, y, batch_size)


SETTINGS = {"mlp": mlp_setting, "scenes": scenes_setting}


def _dataset(x, y, batch_size):
    # Whole batches only: the same static shapes for every contender.
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=True)
    return data.cache().prefetch(2)


SEPARATE_TASK_OPTIMIZER = "equal, separate task optimizer"
# The same train step as one compiled call per step (the opt-in `fast_dispatch`),
# instead of Keras' own train function, which wraps the compiled step in a second one
# and returns its logs in an `Optional`.
FAST_DISPATCH = "equal, fast_dispatch=True"
# Without the per-step check for non-finite losses and gradients of the default
# on_nonfinite="raise" (one reduction per gradient), as plain Keras trains.
UNCHECKED = "equal, on_nonfinite='ignore'"


def _weighting_options(name, task_names):
    weights = dict(zip(task_names, (1.0, 0.5, 2.0)))
    if name == "fixed":
        return {"loss_weights": weights}
    if name == SEPARATE_TASK_OPTIMIZER:
        return {"weighting": "equal", "task_optimizer": "adam"}
    if name == FAST_DISPATCH:
        return {"weighting": "equal", "fast_dispatch": True}
    if name == UNCHECKED:
        return {"weighting": "equal", "on_nonfinite": "ignore"}
    return {"weighting": keras_mtl.weighting.get(name)}


def run(quick=False, models=("mlp", "scenes"), jit=(False, True), weightings=WEIGHTINGS,
        examples=None, batch_size=None, rounds=None, extra_rounds=None, log=print,
        steps_per_execution=1):
    """Times plain Keras and keras_mtl on each model, with and without XLA.

    Returns a list of rows `(model, jit_compile, run, steps/s, ratio vs plain,
    ratio spread, CPU-time ratio vs plain, rounds)`; the ratios of the plain row are 1.
    """
    rounds = rounds or (3 if quick else 5)
    extra_rounds = (2 if quick else 4) if extra_rounds is None else extra_rounds
    rows = []
    for setting in models:
        default_examples, default_batch = {"mlp": (4096 if quick else 8192, 32),
                                           "scenes": (128 if quick else 256, 16)}[setting]
        tasks, backbone, shape, dataset = SETTINGS[setting](
            examples or default_examples, batch_size or default_batch)
        task_names = [t.name for t in tasks()]
        for jit_compile in jit:
            if quick and setting == "scenes" and jit_compile:
                continue  # compiling five SegNets with XLA takes a minute
            runners = {}
            keras.utils.set_random_seed(0)
            base = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
            plain = keras.Model(base.inputs, base.outputs)
            plain.compile(optimizer="adam", loss={t.name: t.loss for t in tasks()},
                          loss_weights=dict(zip(task_names, (1.0, 0.5, 2.0))),
                          jit_compile=jit_compile, steps_per_execution=steps_per_execution)
            runners["plain keras"] = keras_epoch_runner(plain, dataset)
            fast = (FAST_DISPATCH,) if keras.backend.backend() == "tensorflow" else ()
            for name in tuple(weightings) + (SEPARATE_TASK_OPTIMIZER, UNCHECKED) + fast:
                keras.utils.set_random_seed(0)
                model = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
                model.compile(optimizer="adam", jit_compile=jit_compile,
                              steps_per_execution=steps_per_execution,
                              **_weighting_options(name, task_names))
                runners[f"keras_mtl {name}"] = keras_epoch_runner(model, dataset)
            if log:
                log(f"overhead: {setting}, jit_compile={jit_compile}: {len(runners)} models built")
            samples = interleaved_rounds(runners, "plain keras", rounds, extra_rounds=extra_rounds, log=None)
            for label, summary in summarize(samples).items():
                rows.append((setting, jit_compile, label) + summary)
    return rows


def report(rows):
    header = ["model", "jit_compile", "run", "steps/s", "ratio vs plain", "IQR/median",
              "CPU-time ratio", "rounds", "target >= 0.95"]
    table = [(m, j, label, sps, ratio, spread, cpu, n,
              "-" if label == "plain keras" else ("met" if ratio >= TARGET_RATIO else "MISSED"))
             for m, j, label, sps, ratio, spread, cpu, n in rows]
    return markdown_table(header, table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data, fewer rounds")
    parser.add_argument("--models", default="mlp,scenes", help="comma-separated: mlp, scenes")
    parser.add_argument("--jit", choices=["off", "on", "both"], default="both")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 3 quick, 5 full)")
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="steps per call of every contender's train function")
    args = parser.parse_args(argv)
    jit = {"off": (False,), "on": (True,), "both": (False, True)}[args.jit]
    rows = run(quick=args.quick, models=tuple(args.models.split(",")), jit=jit, rounds=args.rounds,
               steps_per_execution=args.steps_per_execution)
    print(f"\n## Overhead vs plain Keras ({keras.backend.backend()} backend, "
          f"steps_per_execution={args.steps_per_execution})\n")
    print(report(rows))
    return rows


if __name__ == "__main__":
    main()
