"""Task weighting on Scenes: the same hard-sharing SegNet trained with each weighting
method, next to the single-task baselines, with every metric and delta_m.

Same data, epochs, optimizer and seed for every method.

    python applications/weighting_scenes.py                                  # equal, dwa, uncertainty, gradnorm
    python applications/weighting_scenes.py --methods equal,pcgrad,mgda,cagrad,imtl,nash_mtl
    python applications/weighting_scenes.py --seeds 3 --results weighting.json  # mean +- std, paired t-test
"""

import functools
import os

import keras

import _common
import _scenes
import keras_mtl
from _scenes import HIGHER_IS_BETTER, LOWER_IS_BETTER

NEEDS_ARGUMENTS = ("dtp", "fixed")  # DTP needs kpis=, Fixed its weights


def parse_args(argv=None):
    p = _scenes.parser(__doc__.split("\n\n")[0], train=600, val=200, epochs=5, filters="8,16,32")
    p.add_argument("--methods", default="equal,dwa,uncertainty,gradnorm",
                   help=f"comma-separated names from {keras_mtl.weighting.available()}, or 'all' "
                        f"(every method that works with its defaults: all but {NEEDS_ARGUMENTS})")
    p.add_argument("--verbose", type=int, default=2)
    args = _scenes.parse_args(p, argv)
    args.methods = ([m for m in keras_mtl.weighting.available() if m not in NEEDS_ARGUMENTS]
                    if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()])
    unknown = [m for m in args.methods if m not in keras_mtl.weighting.available()]
    if unknown:
        p.error(f"unknown weighting methods {unknown}; available: {keras_mtl.weighting.available()}")
    return args


def main(argv=None):
    args = parse_args(argv)
    print(f"Scenes: {args.train} training and {args.val} validation images of {args.height}x{args.width}; "
          f"{args.epochs} epochs, Adam {args.learning_rate}")
    data = functools.lru_cache(maxsize=1)(lambda seed: _scenes.experiment(args, seed))
    final_weights, histories = {}, {}

    def run(label, architecture, weighting, seed):
        print(f"\n{label}, seed {seed}:")
        experiment = data(seed)
        model = keras_mtl.build(architecture, experiment.tasks_factory(), backbone=experiment.backbone,
                                input_shape=experiment.input_shape)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting=weighting)
        history, ms_per_step = _common.fit_timed(model, experiment.train, args.epochs, verbose=args.verbose)
        final_weights[label] = [history.history[f"{t}_weight"][-1] for t in model.task_names]
        histories[label] = history
        return {**model.evaluate(experiment.val, return_dict=True, verbose=0), "train_ms_per_step": ms_per_step}

    runs = {"single-task": functools.partial(run, "single-task", "single_task", "equal")}
    runs.update({m: functools.partial(run, m, "hard_sharing", m) for m in args.methods})
    _common.compare(args, f"Task weighting on Scenes, {args.train} training / {args.val} validation images, "
                    f"{args.epochs} epochs", runs, lower_is_better=LOWER_IS_BETTER, baseline="single-task",
                    compared=list(HIGHER_IS_BETTER),
                    shown=list(HIGHER_IS_BETTER) + ["train_ms_per_step"])
    if final_weights:
        print("Last-epoch weights of the last seed run (segmentation, depth, normals): " + "; ".join(
            f"{n} {', '.join(f'{w:.2f}' for w in weights)}" for n, weights in final_weights.items()))
    if args.results and histories:
        path = os.path.splitext(args.results)[0] + "_task_weights.png"
        keras_mtl.plot.task_weights_grid({n: h for n, h in histories.items() if n != "single-task"} or histories, path)
        print(f"Wrote {path} (task weights per epoch, last seed run)")


if __name__ == "__main__":
    main()
