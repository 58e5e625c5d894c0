"""Dense multi-task learning on Scenes: what sharing one network between semantic
segmentation, depth and surface normals buys over one network per task.

Trains a hard-sharing SegNet (one shared encoder-decoder, one small head per task, as in
MTAN's NYUv2 experiments; equal task weights) and the single-task SegNets (one per task,
the same trunk) on procedurally rendered Scenes images over several seeds, with
`keras_mtl.experiments` (paired: the same seed gives both the same data and initial
weights). Prints a summary table (mean +- std over seeds, delta_m against the
single-task networks of the same size and seed, a paired t-test against the seed noise),
what sharing saves (parameters, and inference and training time timed in turns in this
process), and the best weighting method and architecture of docs/choosing.md; writes
the plots (PNG) to --figures and exports the last multi-task model. `--full` sweeps the
training-set size (every size trains for the same number of steps, --epochs epochs of
--train images, so that the sizes differ in data, not in training) and says whether
multi-task learning gains more with less data (the slope of delta_m per doubling).

    python applications/scenes.py                    # 600 images, 3 seeds: about 3 minutes on 2 cores
    python applications/scenes.py --full             # 5 training-set sizes, 150 to 2400
    python applications/scenes.py --verbose          # also every metric, and a Keras line per epoch
    python applications/scenes.py --weightings equal,cagrad   # also hard sharing with CAGrad
    python applications/scenes.py --seeds 5 --results scenes.json  # keep the runs (and a CSV); a later call extends them
    python applications/scenes.py --plot predictions.png  # also draws predictions
"""

import functools
import logging
import math
import os
import time

# TensorFlow's C++ notes (its graph optimiser on the non-finite check's assertion) and its
# note on retracing (this script builds one model per run, on purpose) say nothing to a user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
logging.getLogger("tensorflow").addFilter(lambda record: "triggered tf.function retracing" not in record.getMessage())

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402
import _scenes  # noqa: E402
import keras_mtl  # noqa: E402
from _scenes import HIGHER_IS_BETTER  # noqa: E402
from keras_mtl.datasets.scenes import CLASS_NAMES, NUM_CLASSES, scenes_arrays  # noqa: E402
from keras_mtl.statistics import paired_t_test  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = "600"
FULL_SIZES = "150,300,600,1200,2400"

# docs/choosing.md, "Weighting methods on Scenes, 3 seeds" and "Sharing architectures on
# Scenes, 3 seeds" (600 training images, 5 epochs, SegNet 8-16-32, seeds 0-2, against the
# single-task SegNets): delta_m % mean, std. The application's defaults are that budget.
BEST_WEIGHTING = ("cagrad", 3.19, 4.29)
EQUAL_WEIGHTING = (10.15, 4.21)
BEST_ARCHITECTURE = ("cross-stitch", -1.95, 0.70)


def parse_args(argv=None):
    p = _scenes.parser(__doc__.split("\n\n")[0], train=600, val=200, epochs=5, filters="8,16,32")
    p.add_argument("--seeds", type=int, default=3, help="seeds --seed .. --seed+N-1 (paired over sizes and models)")
    p.add_argument("--train-sizes", default=DEFAULT_SIZES, help="comma-separated training-set sizes")
    p.add_argument("--full", action="store_true", help=f"the full sweep: --train-sizes {FULL_SIZES}")
    p.add_argument("--budget", choices=("steps", "epochs"), default="steps",
                   help="'steps': every size trains as many steps as --epochs epochs of --train images; "
                        "'epochs': --epochs epochs of its own images")
    p.add_argument("--weightings", default="equal",
                   help=f"weighting methods of the multi-task model, from {keras_mtl.weighting.available()}")
    p.add_argument("--convs-per-block", type=int, default=1)
    p.add_argument("--figures", default=os.path.join(REPOSITORY, "results", "scenes"),
                   help="folder for the plots (PNG; '' to skip)")
    p.add_argument("--export", default=os.path.join(REPOSITORY, "saved_models", "scenes"),
                   help="SavedModel folder for the last multi-task model trained ('' to skip)")
    p.add_argument("--plot", help="write a figure of that model's predictions to this file (e.g. out.png)")
    p.add_argument("--verbose", action="store_true",
                   help="also print every metric (the full table) and a Keras line per epoch")
    args = _scenes.parse_args(p, argv)
    if args.full:
        args.train_sizes = FULL_SIZES
    args.train_sizes = [int(n) for n in args.train_sizes.split(",")]
    args.weightings = [w.strip() for w in args.weightings.split(",") if w.strip()]
    unknown = [w for w in args.weightings if w not in keras_mtl.weighting.available()]
    if unknown or not args.weightings:
        p.error(f"--weightings: unknown methods {unknown}; available: {keras_mtl.weighting.available()}")
    if min(args.train_sizes) < 1:
        p.error(f"--train-sizes must be positive. Received: {args.train_sizes}")
    return args


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


def multi_task_label(weighting, size):
    return f"multi-task n={size}" if weighting == "equal" else f"multi-task {weighting} n={size}"


def train_and_measure(architecture, weighting, data, args, steps_per_epoch, trained):
    """Trains `architecture` with `weighting` for --epochs epochs of `steps_per_epoch`
    steps (the training images repeated when they make fewer or more steps) and
    returns its validation metrics with its parameters, the optimizer's steps, training
    milliseconds per step and training seconds (`sharing_costs` times inference). Keeps
    the model in `trained`."""
    model = keras_mtl.build(architecture, data.tasks_factory(), backbone=data.backbone, input_shape=data.input_shape)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting=weighting)
    own_steps = int(data.train.cardinality())
    train = data.train if own_steps == steps_per_epoch else data.train.repeat()
    started = time.perf_counter()
    _, ms_per_step = _common.fit_timed(model, train, args.epochs, shuffle=False, verbose=2 if args.verbose else 0,
                                       steps_per_epoch=None if own_steps == steps_per_epoch else steps_per_epoch)
    train_seconds = time.perf_counter() - started
    results = model.evaluate(data.val, return_dict=True, verbose=0)
    trained[architecture] = (model, data)
    return {**results, "parameters": model.count_params(), "train_steps": int(model.optimizer.iterations),
            "train_ms_per_step": ms_per_step, "train_seconds": train_seconds}


def sharing_costs(data, args, rounds=7):
    """What sharing saves, measured in this process: parameters, inference milliseconds
    per image for all tasks (the multi-task model's one forward pass against one
    forward pass of each task's own network, batches of 2 x --batch-size) and
    milliseconds per training step (a batch of --batch-size), the models called in
    turns (`_common.interleaved_seconds`). Untrained models: the cost does not depend
    on the weights.

    Returns:
        `{quantity: (multi-task, single-task networks together)}`.
    """
    def built(architecture, tasks):
        model = keras_mtl.build(architecture, tasks, backbone=data.backbone, input_shape=data.input_shape)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting="equal")
        return model

    multi = built("hard_sharing", data.tasks_factory())
    singles = [built("single_task", [task]) for task in data.tasks_factory()]
    images = data.val_images[:2 * args.batch_size]
    x = images[:args.batch_size]
    y = {task: labels[:args.batch_size] for task, labels in data.val_labels.items() if task in multi.task_names}
    seconds = _common.interleaved_seconds({
        "multi-task inference": lambda: multi.predict_on_batch(images),
        "single-task inference": lambda: [m.predict_on_batch(images) for m in singles],
        "multi-task step": lambda: multi.train_on_batch(x, y),
        "single-task step": lambda: [m.train_on_batch(x, {t: y[t] for t in m.task_names}) for m in singles],
    }, rounds=rounds, warmup=2)
    return {"parameters": (multi.count_params(), sum(m.count_params() for m in singles)),
            "inference ms/image": tuple(1000.0 * seconds[f"{k} inference"] / len(images)
                                        for k in ("multi-task", "single-task")),
            "training ms/step": tuple(1000.0 * seconds[f"{k} step"] for k in ("multi-task", "single-task"))}


def _delta_text(delta):
    text = f"{delta['mean']:+.2f}"
    if delta.get("std") is not None:
        text += f" +- {delta['std']:.2f}"
    text += " %"
    if "p" in delta:
        text += f" (p {delta['p']:.3f}, {'beyond' if delta['exceeds_noise'] else 'within'} the seed noise)"
    return text


SUMMARY_COLUMNS = (("seg mIoU", "segmentation_miou", "{:.3f}"), ("depth err", "depth_abs_error", "{:.3f}"),
                   ("normals deg", "normals_angle_mean", "{:.1f}"))


def summary_table(summary):
    """The summary in under 100 columns: one row per run configuration, three of the nine
    metrics (mean +- std over seeds), delta_m against the single-task networks of the same
    size and seed (mean +- std), the paired t-test's p and the training seconds per run.
    Every metric is in --verbose's table and the --results CSV."""
    def mean_std(value, form):
        if value is None:
            return "-"
        text = form.format(value["mean"])
        return text if value.get("std") is None else f"{text}+-{form.format(value['std']).lstrip('+')}"

    header = ["run", *(title for title, _, _ in SUMMARY_COLUMNS), "delta_m %", "p", "s/run"]
    rows = [header]
    for name, entry in summary.items():
        delta = entry.get("delta_m") if not entry.get("is_baseline") else None
        rows.append([name, *(mean_std(entry["metrics"].get(metric), form) for _, metric, form in SUMMARY_COLUMNS),
                     mean_std(delta, "{:+.2f}") if delta else "0",
                     f"{delta['p']:.3f}{'*' if delta['exceeds_noise'] else ''}" if delta and "p" in delta else "-",
                     f"{entry['metrics']['train_seconds']['mean']:.0f}" if "train_seconds" in entry["metrics"] else "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join(lines + ["delta_m: mean relative change over the 9 metrics vs the single-task networks of the "
                               "same\nsize and seed, lower is better; p: paired t-test over seeds, * beyond the seed "
                               "noise."])


def trend_per_doubling(summary, rows):
    """How delta_m changes per doubling of the training set: for each seed run at every
    size, the least-squares slope of delta_m against log2(size); their mean and
    standard deviation, Student's paired t-test of the slopes, and what it says.

    Args:
        summary: `keras_mtl.experiments.summarize` with delta_m.
        rows: `{size: configuration}`, two or more sizes.

    Returns:
        `(result, verdict)`: result has `seeds`, `values` (slopes, points of delta_m
        per doubling), `mean`, `std` and, with two or more seeds, `p` and `exceeds_noise`.
    """
    sizes = sorted(rows)
    per_size = [dict(zip(summary[rows[n]]["paired_seeds"], summary[rows[n]]["delta_m"]["values"])) for n in sizes]
    seeds = [s for s in per_size[0] if all(s in deltas for deltas in per_size)]
    x = np.log2(sizes)
    slopes = [float(np.polyfit(x, [deltas[s] for deltas in per_size], 1)[0]) for s in seeds]
    result = {"seeds": seeds, "values": slopes, "mean": float(np.mean(slopes)),
              "std": float(np.std(slopes, ddof=1)) if len(slopes) > 1 else None}
    if len(slopes) > 1:
        test = paired_t_test(slopes)
        result.update(p=test["p"], exceeds_noise=bool(test["ci_low"] > 0 or test["ci_high"] < 0))
    if not result.get("exceeds_noise"):
        verdict = ("within the seed noise: these runs cannot tell; the mean points "
                   + ("that way" if result["mean"] > 0 else "the other way\n  (delta_m falls as the data grow)"))
    elif result["mean"] > 0:
        verdict = "yes: delta_m is lower (multi-task better) with less data, beyond the seed noise"
    else:
        verdict = "no: delta_m is higher (multi-task worse) with less data, beyond the seed noise"
    return result, verdict


def print_story(summary, args, costs):
    """Prints what the table says: the costs, delta_m by size, its trend, the best method."""
    sizes = args.train_sizes
    (mp, sp), (mi, si), (mt, st) = costs["parameters"], costs["inference ms/image"], costs["training ms/step"]
    tasks = len(_scenes.DENSE_TASKS)
    print(f"\nWhat sharing saves: hard sharing vs the {tasks} single-task SegNets (same trunk; timed in turns):")
    print(f"  parameters            {mp:>9,} vs {sp:>9,}  ({mp / sp:.2f}x)")
    print(f"  inference, all tasks  {mi:>9.2f} vs {si:>9.2f} ms/image  ({mi / si:.2f}x: one forward pass vs {tasks})")
    print(f"  training              {mt:>9.1f} vs {st:>9.1f} ms/step   ({mt / st:.2f}x)")
    seconds = {kind: [summary[f"{kind} n={n}"]["metrics"]["train_seconds"]["mean"] for n in sizes
                      if f"{kind} n={n}" in summary] for kind in ("multi-task", "single-task")}
    if all(seconds.values()):
        print(f"  training per run      {np.mean(seconds['multi-task']):>9.0f} vs "
              f"{np.mean(seconds['single-task']):>9.0f} s         (the runs above)")
    for weighting in args.weightings:
        name = "equal weights" if weighting == "equal" else weighting
        print(f"\nWhat sharing costs in accuracy: multi-task ({name}) vs single-task, delta_m against the same\n"
              f"size and seed (lower is better; < 0: multi-task better):")
        for n in sizes:
            entry = summary.get(multi_task_label(weighting, n))
            if entry and "delta_m" in entry:
                per_seed = ", ".join(f"{v:+.1f}" for v in entry["delta_m"]["values"])
                print(f"  n={n:<6} {_delta_text(entry['delta_m'])}  per seed: {per_seed}")
        rows = {n: multi_task_label(weighting, n) for n in sizes}
        if len(sizes) > 1 and all("delta_m" in summary.get(row, {}) for row in rows.values()):
            trend, verdict = trend_per_doubling(summary, rows)
            print(f"Does it gain more with less data? Change of delta_m per doubling of the training set\n"
                  f"  (per seed: {', '.join(f'{v:+.2f}' for v in trend['values'])}): "
                  f"{_delta_text(trend).replace(' %', ' points')}\n  {verdict}.")
    if len(sizes) == 1:
        print("Does it gain more with less data? --full trains 150 to 2400 images and tells.")
    best, mean, std = BEST_WEIGHTING
    print(f"\nBest weighting method on Scenes (docs/choosing.md: 15 methods, 600 images, 3 seeds): {best},\n"
          f"  delta_m {mean:+.2f} +- {std:.2f} % vs {EQUAL_WEIGHTING[0]:+.2f} +- {EQUAL_WEIGHTING[1]:.2f} % for equal "
          f"weights (better beyond the seed noise).\n  Train it here with --weightings equal,{best}.")
    name, mean, std = BEST_ARCHITECTURE
    print(f"Best architecture there: {name}, delta_m {mean:+.2f} +- {std:.2f} %, the only one to beat the\n"
          f"  single-task networks beyond the seed noise (applications/architectures_scenes.py).")


def write_figures(summary, args, folder):
    """delta_m against the training-set size, delta_m per row and the change per metric."""
    from keras_mtl import plot as plots

    os.makedirs(folder, exist_ok=True)
    series = {("equal weights" if w == "equal" else w): {n: multi_task_label(w, n) for n in args.train_sizes}
              for w in args.weightings}
    paths = [os.path.join(folder, f"{name}.png") for name in ("delta_m", "metric_changes", "delta_m_by_size")]
    plots.delta_m(summary, paths[0], title="delta_m vs the single-task networks of the same size")
    plots.metric_changes(summary, paths[1], title="Change per metric vs the single-task networks")
    if len(args.train_sizes) < 2:
        return paths[:2]
    plots.delta_m_trend(summary, series, paths[2], xlabel="training images",
                        title="Hard sharing vs single-task SegNets on Scenes")
    return paths


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    sizes, steps = args.train_sizes, math.ceil(args.train / args.batch_size)
    generated = functools.lru_cache(maxsize=1)(
        lambda seed: scenes_arrays(max(sizes), args.height, args.width, seed=seed))
    data = functools.lru_cache(maxsize=1)(
        lambda seed, size: _scenes.experiment(args, seed, args.convs_per_block, train=size, generated=generated(seed)))
    trained, runs, baselines = {}, {}, {}

    def run(architecture, weighting, size, seed):
        own = data(seed, size)
        steps_per_epoch = steps if args.budget == "steps" else int(own.train.cardinality())
        return train_and_measure(architecture, weighting, own, args, steps_per_epoch, trained)

    for size in sizes:
        rows = {f"single-task n={size}": ("single_task", "equal")}
        rows.update({multi_task_label(w, size): ("hard_sharing", w) for w in args.weightings})
        for label, (architecture, weighting) in rows.items():
            runs[label] = functools.partial(run, architecture, weighting, size)
            baselines[label] = f"single-task n={size}"
    print(f"Scenes: {len(runs)} configurations x {args.seeds} seeds = {len(runs) * args.seeds} runs (a single-task "
          f"run trains {len(_scenes.DENSE_TASKS)} networks);\na line as each run ends.", flush=True)
    budget = (f"{args.epochs * steps} steps of {args.batch_size} images at every size ({args.epochs} epochs of "
              f"{args.train})" if args.budget == "steps" else f"{args.epochs} epochs at every size")
    summary = _common.compare(
        args, f"Scenes: multi-task vs single-task SegNets ({','.join(map(str, args.filters))}),\n"
        f"{args.val} validation images of {args.height}x{args.width}, {budget}",
        runs, lower_is_better=_scenes.LOWER_IS_BETTER | {"train_ms_per_step", "train_seconds"},
        baseline=baselines, compared=list(HIGHER_IS_BETTER),
        shown=list(HIGHER_IS_BETTER) + ["train_seconds"], row_flags=("train_sizes", "full", "weightings"),
        table=None if args.verbose else summary_table)
    if args.verbose:
        print("\n" + summary_table(summary))
    print("\nTiming what sharing saves...", flush=True)
    costs = sharing_costs(_scenes.experiment(args, args.seed, args.convs_per_block, train=args.batch_size), args)
    print_story(summary, args, costs)
    if args.figures:
        print("Wrote the plots:\n  " + "\n  ".join(write_figures(summary, args, args.figures)))
    if "hard_sharing" in trained:
        model, own = trained["hard_sharing"]
        if args.export:
            keras_mtl.export(model, args.export)
            print(f"Exported the last multi-task model trained (a SavedModel) to\n  {args.export}")
        if args.plot:
            plot(model, own.val_images, own.val_labels, args.plot)
            print(f"Wrote {args.plot}")
    print(f"Total time: {time.time() - started:.0f} s")
    return summary


if __name__ == "__main__":
    main()
