"""Dense multi-task learning on Scenes: semantic segmentation, depth and surface normals.

Trains a hard-sharing SegNet (one shared encoder-decoder, one small head per task, as in
MTAN's NYUv2 experiments) and the single-task baselines (one SegNet per task) on
procedurally rendered Scenes images, prints every metric next to a positional prior,
and delta_m of the multi-task model against the baselines, and exports the multi-task
model as a SavedModel.

    python applications/scenes.py                    # defaults: under 10 minutes on 2 CPU cores
    python applications/scenes.py --plot scenes.png  # also draws predictions
    python applications/scenes.py --height 96 --width 128 --train 4000 --epochs 30
    python applications/scenes.py --seeds 3 --results scenes.json  # mean +- std over 3 seeds, paired t-test
    python applications/scenes.py --seeds 3 --train-sizes 250,500,1000,2000 --results sizes.json
"""

import functools
import os
import time

import keras
import numpy as np

import _common
import _scenes
import keras_mtl
from _scenes import HIGHER_IS_BETTER, make_metrics
from keras_mtl.datasets.scenes import CLASS_NAMES, NUM_CLASSES
from keras_mtl.evaluation import delta_m, train_single_task_baselines

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = _scenes.parser(__doc__.split("\n\n")[0], train=1000, val=250, epochs=8, filters="16,32,64")
    p.add_argument("--convs-per-block", type=int, default=1)
    p.add_argument("--no-baselines", action="store_true", help="skip the single-task baselines")
    p.add_argument("--export", default=os.path.join(REPOSITORY, "saved_models", "scenes"),
                   help="SavedModel folder ('' to skip)")
    p.add_argument("--plot", help="write a figure of predictions to this file (e.g. out.png)")
    p.add_argument("--verbose", type=int, default=1, help="Keras verbosity: 1 progress bar, 2 a line per epoch")
    p.add_argument("--train-sizes", help="comma-separated training set sizes: multi-task vs single-task at "
                                         "each (with --seeds, --results), delta_m against the same size")
    args = _scenes.parse_args(p, argv)
    args.train_sizes = [int(n) for n in args.train_sizes.split(",")] if args.train_sizes else None
    return args


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


def train_multi_task(data, args):
    """The hard-sharing SegNet with equal weights: the trained model and its validation logs."""
    model = keras_mtl.build("hard_sharing", data.tasks_factory(), backbone=data.backbone,
                            input_shape=data.input_shape, name="scenes_hard_sharing")
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting="equal")
    model.fit(data.train, epochs=args.epochs, shuffle=False, verbose=args.verbose)
    return model, model.evaluate(data.val, return_dict=True, verbose=0)


def train_baselines(data, args):
    """The single-task SegNets' validation metrics, by metric name."""
    baselines = train_single_task_baselines(
        data.tasks_factory, data.backbone, data.input_shape, data.train, data.val, args.epochs,
        optimizer=keras.optimizers.Adam(args.learning_rate), verbose=args.verbose)
    return {k: v for per_task in baselines.values() for k, v in per_task.items()}


def measured(architecture, data, args):
    """Trains `architecture` (equal weights) and returns its validation logs with its
    parameters, training milliseconds per step and inference milliseconds per image
    (every task's output, batches of 2 x --batch-size, after a warm-up call)."""
    model = keras_mtl.build(architecture, data.tasks_factory(), backbone=data.backbone, input_shape=data.input_shape)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting="equal")
    _, ms_per_step = _common.fit_timed(model, data.train, args.epochs, shuffle=False, verbose=args.verbose)
    results = model.evaluate(data.val, return_dict=True, verbose=0)
    model.predict(data.val_images[:2 * args.batch_size], batch_size=2 * args.batch_size, verbose=0)
    started = time.perf_counter()
    model.predict(data.val_images, batch_size=2 * args.batch_size, verbose=0)
    inference = 1000.0 * (time.perf_counter() - started) / len(data.val_images)
    return {**results, "parameters": model.count_params(), "train_ms_per_step": ms_per_step,
            "inference_ms_per_image": inference}


def repeated(args):
    """--seeds N (or --train-sizes): the multi-task model and the single-task networks over
    N seeds with keras_mtl.experiments, per training set size; delta_m of each multi-task
    model against the single-task networks of the same size and seed."""
    sizes = args.train_sizes or [args.train]
    data = functools.lru_cache(maxsize=1)(
        lambda seed, size: _scenes.experiment(args, seed, args.convs_per_block, train=size))
    label = (lambda kind, size: f"{kind} n={size}") if args.train_sizes else (lambda kind, size: kind)
    runs, baselines = {}, {}
    for size in sizes:
        for kind, architecture in (("single-task", "single_task"), ("multi-task", "hard_sharing")):
            runs[label(kind, size)] = functools.partial(
                lambda seed, architecture, size: measured(architecture, data(seed, size), args),
                architecture=architecture, size=size)
        baselines[label("multi-task", size)] = baselines[label("single-task", size)] = label("single-task", size)
    _common.compare(
        args, f"Scenes, {', '.join(map(str, sizes))} training / {args.val} validation images of "
        f"{args.height}x{args.width}, {args.epochs} epochs, equal weights",
        runs, lower_is_better=_scenes.LOWER_IS_BETTER | {"train_ms_per_step", "inference_ms_per_image"},
        baseline=baselines if args.train_sizes else "single-task", compared=list(HIGHER_IS_BETTER),
        shown=list(HIGHER_IS_BETTER) + ["parameters", "train_ms_per_step", "inference_ms_per_image"])


def main(argv=None):
    args = parse_args(argv)
    if args.seeds > 1 or args.results or args.train_sizes:
        return repeated(args)
    started = time.time()
    keras.utils.set_random_seed(args.seed)
    data = _scenes.experiment(args, args.seed, args.convs_per_block)
    print(f"Scenes: {args.train} training and {args.val} validation images of "
          f"{args.height}x{args.width}, generated in {time.time() - started:.1f} s")
    columns = {"prior": evaluate_predictions(prior_predictions(data.train_labels, args.val), data.val_labels)}

    print("\nMulti-task model (hard sharing, equal weights):")
    clock = time.time()
    model, multi_task = train_multi_task(data, args)
    multi_task_seconds = time.time() - clock

    if not args.no_baselines:
        print("\nSingle-task baselines (one network per task):")
        clock = time.time()
        columns["single-task"] = train_baselines(data, args)
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
        plot(model, data.val_images, data.val_labels, args.plot)
        print(f"Wrote {args.plot}")
    print(f"Total time: {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
