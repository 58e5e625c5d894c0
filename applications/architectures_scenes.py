"""Sharing architectures on Scenes: single-task, the best split, cross-stitch and MTAN.

Segmentation, depth and surface normals on procedurally rendered Scenes images, with
one SegNet backbone for every architecture, equal task weights, and the same data,
epochs and seed: single-task networks, a split sweep (share the SegNet up to a block,
then one copy per task; Misra et al. 2016, Figure 1), cross-stitch networks (units
after every block) and MTAN on the same SegNet (Liu et al. 2019). Prints the sweep,
every metric of each architecture and its delta_m against the single-task networks.

    python applications/architectures_scenes.py                  # small defaults, < 10 min on 2 CPU cores
    python applications/architectures_scenes.py --plots figures/  # also cross-stitch alphas and MTAN masks
    python applications/architectures_scenes.py --train 4000 --epochs 30 --height 96 --width 128

The best split is chosen on the validation images every architecture is reported on,
which favours the split in the comparison.
"""

import functools
import os

import keras

import _common
import _scenes
import keras_mtl
from _scenes import HIGHER_IS_BETTER, LOWER_IS_BETTER
from keras_mtl.architectures import cross_stitch, mtan, split
from keras_mtl.evaluation import delta_m


def parse_args(argv=None):
    p = _scenes.parser(__doc__.split("\n\n")[0], train=600, val=200, epochs=5, filters="8,16,32")
    p.add_argument("--points", default="encoder1,encoder2,unpool3,decoder1",
                   help="split points of the sweep (SegNet layer names; 'decoder1' shares everything)")
    p.add_argument("--cross-stitch-multiplier", type=float, default=10.0,
                   help="learning-rate multiplier of the cross-stitch units (the paper's 10^2-10^3 was "
                        "for SGD; Adam's steps do not scale with the gradient)")
    p.add_argument("--plots", help="folder for the cross-stitch alphas and MTAN masks figures")
    p.add_argument("--verbose", type=int, default=2, help="Keras verbosity: 1 progress bar, 2 a line per epoch")
    args = _scenes.parse_args(p, argv)
    args.points = [p for p in args.points.split(",") if p]
    return args


def mtan_stages(blocks):
    """MTAN's attention points on the SegNet backbone: each encoder block's output
    before pooling, and each decoder block's output, its mask computed from the
    block's unpooled input (as the reference code's decoder modules)."""
    encoder = [f"enc{i}_1_relu" for i in range(1, blocks + 1)]
    decoder = [(f"unpool{i}", f"decoder{i}") for i in range(blocks, 0, -1)]
    return encoder + decoder


def main(argv=None):
    args = parse_args(argv)
    print(f"Scenes: {args.train} training and {args.val} validation images of {args.height}x{args.width}; "
          f"{args.epochs} epochs, equal task weights")
    data = functools.lru_cache(maxsize=1)(lambda seed: _scenes.experiment(args, seed))
    single_task, parameters, models = {}, {}, {}

    def train_and_evaluate(label, architecture, seed, compile_options=None, **options):
        print(f"\n{label}, seed {seed}:")
        experiment = data(seed)
        model = keras_mtl.build(architecture, experiment.tasks_factory(), backbone=experiment.backbone,
                                input_shape=experiment.input_shape, **options)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting="equal",
                      **(compile_options or {}))
        _, ms_per_step = _common.fit_timed(model, experiment.train, args.epochs, verbose=args.verbose)
        parameters[label], models[label] = model.count_params(), model
        results = {**model.evaluate(experiment.val, return_dict=True, verbose=0), "train_ms_per_step": ms_per_step,
                   "parameters": model.count_params()}
        if label == "single-task":
            single_task[seed] = results
        return results

    def best_split(seed):
        """The split sweep; the point with the lowest delta_m against the single-task
        networks of the same seed."""
        if seed not in single_task:  # finished in an earlier call: read from --results
            single_task[seed] = _common.finished_run(args, "single-task", seed)
        experiment = data(seed)
        print(f"\nSplit sweep over {args.points}, seed {seed}:")
        tables = split.split_sweep(
            experiment.tasks_factory(), experiment.train, validation_data=experiment.val,
            backbone=experiment.backbone, input_shape=experiment.input_shape, points=args.points,
            epochs=args.epochs, seed=seed,
            compile_options={"optimizer": keras.optimizers.Adam(args.learning_rate), "weighting": "equal"},
            verbose=args.verbose)
        print(split.format_sweep(tables))
        sweep = {}
        for i, point in enumerate(args.points):
            sweep[point] = {f"{task}_{k}": v for task, rows in tables.items() for k, v in rows[i].items()
                            if k != "split_at"}
        deltas = {p: delta_m(r, single_task[seed], HIGHER_IS_BETTER) for p, r in sweep.items()}
        print("delta_m by split point: " + ", ".join(f"{p} {d:+.2f}%" for p, d in deltas.items()))
        best = min(deltas, key=deltas.get)
        print(f"Best split point: {best}")
        return sweep[best]

    runs = {
        "single-task": functools.partial(train_and_evaluate, "single-task", "single_task"),
        "best split": best_split,
        "cross-stitch": functools.partial(
            train_and_evaluate, "cross-stitch", "cross_stitch",
            compile_options={"learning_rate_multipliers": {"cross_stitch": args.cross_stitch_multiplier}}),
        "MTAN": functools.partial(train_and_evaluate, "MTAN", "mtan", stages=mtan_stages(len(args.filters))),
    }
    _common.compare(args, f"Sharing architectures on Scenes, {args.train} training / {args.val} validation "
                    f"images, {args.epochs} epochs, equal weights ('best split': seconds of the whole sweep)",
                    runs, lower_is_better=LOWER_IS_BETTER, baseline="single-task", compared=list(HIGHER_IS_BETTER),
                    shown=list(HIGHER_IS_BETTER) + ["train_ms_per_step"])
    print("Parameters: " + ", ".join(f"{n} {p:,}" for n, p in parameters.items()))

    if "cross-stitch" in models:
        alphas = cross_stitch.cross_stitch_alphas(models["cross-stitch"])
        print("\nCross-stitch units (last seed run), mean same-task / cross-task alpha: " + ", ".join(
            f"{name[len('cross_stitch_'):]} {a.diagonal().mean():.2f}/{(a.sum() - a.trace()) / (a.size - len(a)):.2f}"
            for name, a in alphas.items()))
    if args.plots and {"cross-stitch", "MTAN"} <= set(models):
        os.makedirs(args.plots, exist_ok=True)
        cross_stitch.plot_cross_stitch_alphas(models["cross-stitch"], os.path.join(args.plots, "cross_stitch_alphas.png"))
        mtan.plot_attention_masks(models["MTAN"], data(args.seed + args.seeds - 1).val_images[:4],
                                  path=os.path.join(args.plots, "mtan_masks.png"))
        print(f"Wrote figures to {args.plots}")


if __name__ == "__main__":
    main()
