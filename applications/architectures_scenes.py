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

import argparse
import os
import time

import keras

import keras_mtl
from keras_mtl.architectures import cross_stitch, mtan, split
from keras_mtl.evaluation import delta_m
from scenes import HIGHER_IS_BETTER, experiment, print_table


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--height", type=int, default=48, help="image height (multiple of 2^blocks)")
    p.add_argument("--width", type=int, default=64, help="image width (multiple of 2^blocks)")
    p.add_argument("--train", type=int, default=600, help="training images")
    p.add_argument("--val", type=int, default=200, help="validation images")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--filters", default="8,16,32", help="SegNet channels per block")
    p.add_argument("--points", default="encoder1,encoder2,unpool3,decoder1",
                   help="split points of the sweep (SegNet layer names; 'decoder1' shares everything)")
    p.add_argument("--cross-stitch-multiplier", type=float, default=10.0,
                   help="learning-rate multiplier of the cross-stitch units (the paper's 10^2-10^3 was "
                        "for SGD; Adam's steps do not scale with the gradient)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plots", help="folder for the cross-stitch alphas and MTAN masks figures")
    p.add_argument("--verbose", type=int, default=2, help="Keras verbosity: 1 progress bar, 2 a line per epoch")
    args = p.parse_args(argv)
    args.filters = tuple(int(f) for f in args.filters.split(","))
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
    started = time.time()
    train, val, val_images, _, tasks_factory, backbone = experiment(args)
    input_shape = (args.height, args.width, 3)
    print(f"Scenes: {args.train} training and {args.val} validation images of {args.height}x{args.width}; "
          f"{args.epochs} epochs, seed {args.seed}, equal task weights")

    results, seconds, parameters, models = {}, {}, {}, {}

    def train_and_evaluate(label, architecture, compile_options=None, **options):
        print(f"\n{label}:")
        clock = time.time()
        keras.utils.set_random_seed(args.seed)
        model = keras_mtl.build(architecture, tasks_factory(), backbone=backbone, input_shape=input_shape,
                                **options)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting="equal",
                      **(compile_options or {}))
        model.fit(train, epochs=args.epochs, verbose=args.verbose)
        results[label] = model.evaluate(val, return_dict=True, verbose=0)
        seconds[label], parameters[label], models[label] = time.time() - clock, model.count_params(), model

    train_and_evaluate("single-task", "single_task")

    print(f"\nSplit sweep over {args.points}:")
    clock = time.time()
    tables = split.split_sweep(
        tasks_factory(), train, validation_data=val, backbone=backbone, input_shape=input_shape,
        points=args.points, epochs=args.epochs, seed=args.seed,
        compile_options={"optimizer": keras.optimizers.Adam(args.learning_rate), "weighting": "equal"},
        verbose=args.verbose)
    print(split.format_sweep(tables))
    sweep = {}
    for i, point in enumerate(args.points):
        sweep[point] = {f"{task}_{k}": v for task, rows in tables.items() for k, v in rows[i].items()
                        if k != "split_at"}
    deltas = {p: delta_m(r, results["single-task"], HIGHER_IS_BETTER) for p, r in sweep.items()}
    print("delta_m by split point: " + ", ".join(f"{p} {d:+.2f}%" for p, d in deltas.items()))
    best = min(deltas, key=deltas.get)
    print(f"Best split point: {best}")
    results["best split"] = sweep[best]
    seconds["best split"] = (time.time() - clock) / len(args.points)

    train_and_evaluate("cross-stitch", "cross_stitch",
                       compile_options={"learning_rate_multipliers": {"cross_stitch": args.cross_stitch_multiplier}})
    train_and_evaluate("MTAN", "mtan", stages=mtan_stages(len(args.filters)))

    print_table(results)
    print(f"\n{'':<30}" + "".join(f"{n:>14}" for n in results))
    print(f"{'delta_m vs single-task (%)':<30}" + "".join(
        f"{delta_m(r, results['single-task'], HIGHER_IS_BETTER):>14.2f}" for r in results.values()))
    print(f"{'parameters':<30}" + "".join(f"{parameters[n]:>14,}" if n in parameters else f"{'-':>14}"
                                          for n in results))
    print(f"{'training seconds':<30}" + "".join(f"{seconds[n]:>14.0f}" for n in results))
    print("delta_m: mean relative change over the metrics above, lower is better, < 0 beats single-task.")

    alphas = cross_stitch.cross_stitch_alphas(models["cross-stitch"])
    print("\nCross-stitch units, mean same-task / cross-task alpha: " + ", ".join(
        f"{name[len('cross_stitch_'):]} {a.diagonal().mean():.2f}/{(a.sum() - a.trace()) / (a.size - len(a)):.2f}"
        for name, a in alphas.items()))
    if args.plots:
        os.makedirs(args.plots, exist_ok=True)
        cross_stitch.plot_cross_stitch_alphas(models["cross-stitch"], os.path.join(args.plots, "cross_stitch_alphas.png"))
        mtan.plot_attention_masks(models["MTAN"], val_images[:4], path=os.path.join(args.plots, "mtan_masks.png"))
        print(f"Wrote figures to {args.plots}")
    print(f"Total time: {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
