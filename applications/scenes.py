"""Dense multi-task learning on Scenes: semantic segmentation, depth and surface normals.

Trains a hard-sharing SegNet (one shared encoder-decoder, one small head per task, as in
MTAN's NYUv2 experiments) and the single-task baselines (one SegNet per task) on
procedurally rendered Scenes images, prints every metric next to a positional prior,
and delta_m of the multi-task model against the baselines, and exports the multi-task
model as a SavedModel.

    python applications/scenes.py                    # defaults: under 10 minutes on 2 CPU cores
    python applications/scenes.py --plot scenes.png  # also draws predictions
    python applications/scenes.py --height 96 --width 128 --train 4000 --epochs 30
"""

import argparse
import functools
import os
import time

import keras
import numpy as np
import tensorflow as tf

import keras_mtl
from keras_mtl import losses, metrics
from keras_mtl.backbones.segnet import segnet
from keras_mtl.datasets.scenes import CLASS_NAMES, DENSE_TASKS, NUM_CLASSES, scenes_arrays
from keras_mtl.evaluation import delta_m, train_single_task_baselines

HIGHER_IS_BETTER = {
    "segmentation_miou": True,
    "segmentation_pixel_accuracy": True,
    "depth_abs_error": False,
    "depth_rel_error": False,
    "normals_angle_mean": False,
    "normals_angle_median": False,
    "normals_within_11.25": True,
    "normals_within_22.5": True,
    "normals_within_30": True,
}
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--height", type=int, default=48, help="image height (multiple of 2^blocks)")
    p.add_argument("--width", type=int, default=64, help="image width (multiple of 2^blocks)")
    p.add_argument("--train", type=int, default=1000, help="training images")
    p.add_argument("--val", type=int, default=250, help="validation images")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--filters", default="16,32,64", help="SegNet channels per block")
    p.add_argument("--convs-per-block", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baselines", action="store_true", help="skip the single-task baselines")
    p.add_argument("--export", default=os.path.join(REPOSITORY, "saved_models", "scenes"),
                   help="SavedModel folder ('' to skip)")
    p.add_argument("--plot", help="write a figure of predictions to this file (e.g. out.png)")
    p.add_argument("--verbose", type=int, default=1, help="Keras verbosity: 1 progress bar, 2 a line per epoch")
    args = p.parse_args(argv)
    args.filters = tuple(int(f) for f in args.filters.split(","))
    return args


def make_metrics():
    """Fresh metric objects by task."""
    return {
        "segmentation": [metrics.MeanIoU(NUM_CLASSES), metrics.PixelAccuracy(NUM_CLASSES)],
        "depth": [metrics.DepthAbsError(), metrics.DepthRelError()],
        "normals": [metrics.NormalAngleMean(), metrics.NormalAngleMedian(),
                    metrics.NormalAngleWithin(11.25), metrics.NormalAngleWithin(22.5),
                    metrics.NormalAngleWithin(30)],
    }


def make_tasks(width, mean_depth):
    """The three dense tasks, each with MTAN's head: a 3x3 conv and a 1x1 conv."""
    task_metrics = make_metrics()

    def head(name, channels, **output_options):
        return [keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{name}_head"),
                keras.layers.Conv2D(channels, 1, name=name, **output_options)]

    return [
        keras_mtl.Task("segmentation", head=head("segmentation", NUM_CLASSES),
                       loss=losses.PixelCrossEntropy(), metrics=task_metrics["segmentation"]),
        # Starting at the mean depth spares the L1 loss a long walk from 0.
        keras_mtl.Task("depth", head=head("depth", 1, bias_initializer=keras.initializers.Constant(mean_depth)),
                       loss=losses.DepthL1(), metrics=task_metrics["depth"]),
        keras_mtl.Task("normals", head=head("normals", 3), loss=losses.NormalCosine(),
                       metrics=task_metrics["normals"]),
    ]


def dataset(images, labels, batch_size, shuffle_seed=None):
    data = tf.data.Dataset.from_tensor_slices((images, {t: labels[t] for t in DENSE_TASKS}))
    if shuffle_seed is not None:
        data = data.shuffle(len(images), seed=shuffle_seed)
    return data.batch(batch_size).prefetch(2)


def experiment(args, convs_per_block=1):
    """The data and model factories the Scenes comparisons share: Scenes images for
    `args.train`/`args.val`, batched datasets, a task factory (heads as wide as the first
    SegNet block, depth head starting at the mean valid depth), a SegNet backbone."""
    train_images, train_labels = scenes_arrays(args.train, args.height, args.width, seed=args.seed)
    val_images, val_labels = scenes_arrays(args.val, args.height, args.width, seed=args.seed + 10_000)
    train = dataset(train_images, train_labels, args.batch_size, shuffle_seed=args.seed)
    val = dataset(val_images, val_labels, 2 * args.batch_size)
    valid_depth = train_labels["depth"][train_labels["depth"] > 0]
    tasks_factory = functools.partial(make_tasks, args.filters[0], float(valid_depth.mean()))
    backbone = functools.partial(segnet, filters=args.filters, convs_per_block=convs_per_block)
    return train, val, val_images, val_labels, tasks_factory, backbone


def prior_predictions(labels, count):
    """Predictions from the training labels alone: each pixel's most frequent class,
    mean valid depth and mean valid normal direction."""
    seg = labels["segmentation"]
    votes = np.stack([(seg == c).sum(0) for c in range(NUM_CLASSES)], -1)
    depth = labels["depth"]
    depth_valid = depth > 0
    mean_depth = (depth * depth_valid).sum(0) / np.maximum(depth_valid.sum(0), 1)
    normals = labels["normals"].sum(0)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    tile = lambda x: np.broadcast_to(x, (count,) + x.shape)
    return {"segmentation": tile(np.eye(NUM_CLASSES, dtype=np.float32)[votes.argmax(-1)]),
            "depth": tile(mean_depth.astype(np.float32)), "normals": tile(normals.astype(np.float32))}


def evaluate_predictions(predictions, labels):
    results = {}
    for task, task_metrics in make_metrics().items():
        for metric in task_metrics:
            metric.update_state(labels[task], predictions[task])
            results[f"{task}_{metric.name}"] = float(metric.result())
    return results


def print_table(columns):
    names = list(columns)
    print("\n" + f"{'metric':<30}" + "".join(f"{n:>14}" for n in names) + "   better")
    for metric, higher in HIGHER_IS_BETTER.items():
        cells = "".join(f"{columns[n][metric]:>14.4f}" if metric in columns[n] else f"{'-':>14}"
                        for n in names)
        print(f"{metric:<30}{cells}   {'higher' if higher else 'lower'}")


def plot(model, images, labels, path, count=4):
    """Draws inputs with true and predicted segmentation, depth and normals."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    predicted = model.predict(images[:count], verbose=0)
    colours = ListedColormap(["#87ceeb", "#8c564b", "#7f7f7f", "#d62728", "#2ca02c", "#ff7f0e"])
    shade = lambda n: np.where(np.abs(n).sum(-1, keepdims=True) > 0, (n + 1) / 2, 0.0)
    columns = ["input", "segmentation", "predicted", "depth", "predicted", "normals", "predicted"]
    figure = Figure(figsize=(2.0 * len(columns), 2.0 * count * images.shape[1] / images.shape[2] + 0.8),
                    layout="constrained")
    axes = figure.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        top = labels["depth"][row].max()
        normals = predicted["normals"][row]
        normals = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
        panels = [
            (images[row], {}),
            (labels["segmentation"][row], {"cmap": colours, "vmin": -0.5, "vmax": NUM_CLASSES - 0.5}),
            (predicted["segmentation"][row].argmax(-1), {"cmap": colours, "vmin": -0.5, "vmax": NUM_CLASSES - 0.5}),
            (labels["depth"][row, ..., 0], {"cmap": "viridis", "vmin": 0, "vmax": top}),
            (predicted["depth"][row, ..., 0], {"cmap": "viridis", "vmin": 0, "vmax": top}),
            (shade(labels["normals"][row]), {}),
            (np.clip((normals + 1) / 2, 0, 1), {}),
        ]
        for col, (panel, options) in enumerate(panels):
            axes[row, col].imshow(panel, interpolation="nearest", **options)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(columns[col], fontsize=9)
    figure.legend(handles=[Patch(color=colours(i), label=n) for i, n in enumerate(CLASS_NAMES)],
                  loc="outside lower center", ncols=NUM_CLASSES, fontsize=8)
    figure.savefig(path, dpi=100)


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    keras.utils.set_random_seed(args.seed)
    train_images, train_labels = scenes_arrays(args.train, args.height, args.width, seed=args.seed)
    val_images, val_labels = scenes_arrays(args.val, args.height, args.width, seed=args.seed + 10_000)
    print(f"Scenes: {args.train} training and {args.val} validation images of "
          f"{args.height}x{args.width}, generated in {time.time() - started:.1f} s")
    train = dataset(train_images, train_labels, args.batch_size, shuffle_seed=args.seed)
    val = dataset(val_images, val_labels, 2 * args.batch_size)
    valid_depth = train_labels["depth"][train_labels["depth"] > 0]
    tasks_factory = functools.partial(make_tasks, args.filters[0], float(valid_depth.mean()))
    backbone = functools.partial(segnet, filters=args.filters, convs_per_block=args.convs_per_block)
    input_shape = (args.height, args.width, 3)
    columns = {"prior": evaluate_predictions(prior_predictions(train_labels, args.val), val_labels)}

    print("\nMulti-task model (hard sharing, equal weights):")
    clock = time.time()
    model = keras_mtl.build("hard_sharing", tasks_factory(), backbone=backbone, input_shape=input_shape,
                            name="scenes_hard_sharing")
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting="equal")
    model.fit(train, epochs=args.epochs, shuffle=False, verbose=args.verbose)
    multi_task = model.evaluate(val, return_dict=True, verbose=0)
    multi_task_seconds = time.time() - clock

    if not args.no_baselines:
        print("\nSingle-task baselines (one network per task):")
        clock = time.time()
        baselines = train_single_task_baselines(
            tasks_factory, backbone, input_shape, train, val, args.epochs,
            optimizer=keras.optimizers.Adam(args.learning_rate), verbose=args.verbose)
        columns["single-task"] = {k: v for per_task in baselines.values() for k, v in per_task.items()}
        print(f"(baselines trained in {time.time() - clock:.0f} s)")
    columns["multi-task"] = multi_task
    print(f"(multi-task model trained in {multi_task_seconds:.0f} s)")

    print_table(columns)
    if "single-task" in columns:
        value = delta_m(multi_task, columns["single-task"], HIGHER_IS_BETTER)
        print(f"\ndelta_m of the multi-task model vs the single-task baselines: {value:+.2f}% "
              "(mean relative change over the metrics above; lower is better, < 0 beats them)")
    print(f"Parameters: multi-task {model.count_params():,}")
    if args.export:
        keras_mtl.export(model, args.export)
        print(f"Exported the multi-task model to {args.export}")
    if args.plot:
        plot(model, val_images, val_labels, args.plot)
        print(f"Wrote {args.plot}")
    print(f"Total time: {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
