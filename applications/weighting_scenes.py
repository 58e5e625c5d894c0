"""Task weighting on Scenes: the same hard-sharing SegNet trained with each weighting
method, next to the single-task baselines, with every metric and delta_m.

Same data, epochs, optimizer and seed for every method.

    python applications/weighting_scenes.py                                  # equal, dwa, uncertainty, gradnorm
    python applications/weighting_scenes.py --methods equal,pcgrad,mgda,cagrad,imtl,nash_mtl
"""

import argparse
import time

import keras

import keras_mtl
from keras_mtl.evaluation import delta_m
from scenes import HIGHER_IS_BETTER, experiment, print_table


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default="equal,dwa,uncertainty,gradnorm",
                   help=f"comma-separated names from {keras_mtl.weighting.available()}")
    p.add_argument("--height", type=int, default=48)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--train", type=int, default=600)
    p.add_argument("--val", type=int, default=200)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--filters", default="8,16,32", help="SegNet channels per block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=2)
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.filters = tuple(int(f) for f in args.filters.split(","))
    unknown = [m for m in args.methods if m not in keras_mtl.weighting.available()]
    if unknown:
        p.error(f"unknown weighting methods {unknown}; available: {keras_mtl.weighting.available()}")
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    train, val, _, _, tasks_factory, backbone = experiment(args)
    input_shape = (args.height, args.width, 3)
    print(f"Scenes: {args.train} training and {args.val} validation images of {args.height}x{args.width}; "
          f"{args.epochs} epochs, seed {args.seed}, Adam {args.learning_rate}")

    results, seconds, final_weights = {}, {}, {}
    runs = [("single-task", "single_task", "equal")] + [(m, "hard_sharing", m) for m in args.methods]
    for label, architecture, weighting in runs:
        print(f"\n{label}:")
        clock = time.time()
        keras.utils.set_random_seed(args.seed)
        model = keras_mtl.build(architecture, tasks_factory(), backbone=backbone, input_shape=input_shape)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting=weighting)
        history = model.fit(train, epochs=args.epochs, verbose=args.verbose).history
        results[label] = model.evaluate(val, return_dict=True, verbose=0)
        seconds[label] = time.time() - clock
        final_weights[label] = [history[f"{t}_weight"][-1] for t in model.task_names]

    print_table(results)
    print(f"\n{'':<30}" + "".join(f"{n:>14}" for n in results))
    print(f"{'delta_m vs single-task (%)':<30}" + "".join(
        f"{delta_m(r, results['single-task'], HIGHER_IS_BETTER):>14.2f}" for r in results.values()))
    print(f"{'training seconds':<30}" + "".join(f"{seconds[n]:>14.0f}" for n in results))
    print("Last-epoch weights (segmentation, depth, normals): " + "; ".join(
        f"{n} {', '.join(f'{w:.2f}' for w in final_weights[n])}" for n in results))
    print("delta_m: mean relative change over the metrics above, lower is better, < 0 beats single-task.")
    print(f"Total time: {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
