"""Task weighting on Scenes: the same hard-sharing SegNet trained with each weighting
method, next to the single-task baselines, with every metric and delta_m.

Same data, epochs, optimizer and seed for every method.

    python applications/weighting_scenes.py                                  # equal, dwa, uncertainty, gradnorm
    python applications/weighting_scenes.py --methods equal,pcgrad,mgda,cagrad,imtl,nash_mtl
    python applications/weighting_scenes.py --seeds 3 --results weighting.json  # mean +- std, paired t-test

With two or more of the methods in Navon et al.'s NYUv2 table, it also prints the rank
correlation of their delta_m order here with the published one.
"""

import functools
import os

import keras

import _common
import _scenes
import keras_mtl
from _scenes import HIGHER_IS_BETTER, LOWER_IS_BETTER

# DTP needs kpis=, Fixed its weights, Krum n_byzantine=, TrimmedMean trim_number=.
NEEDS_ARGUMENTS = ("dtp", "fixed", "krum", "trimmed_mean")

# Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, Table 2: NYUv2
# (segmentation, depth, normals; MTAN, 200 epochs), delta_m % against single-task SegNets,
# mean of 3 seeds, lower is better. LS is equal weighting, UW uncertainty, IMTL-G imtl;
# their scale-invariant baseline SI (4.39) has no method here.
NASH_MTL_NYUV2_DELTA_M = {"equal": 5.59, "rlw": 7.78, "dwa": 3.57, "uncertainty": 4.05,
                          "mgda": 1.38, "pcgrad": 3.97, "graddrop": 3.58, "cagrad": 0.20,
                          "imtl": -0.76, "nash_mtl": -4.04}


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
    summary = _common.compare(args, f"Task weighting on Scenes, {args.train} training / {args.val} validation images, "
                    f"{args.epochs} epochs", runs, lower_is_better=LOWER_IS_BETTER, baseline="single-task",
                    compared=list(HIGHER_IS_BETTER),
                    shown=list(HIGHER_IS_BETTER) + ["train_ms_per_step"])
    if len([m for m in args.methods if m in NASH_MTL_NYUV2_DELTA_M]) >= 2:
        print_ranking(summary)
    if final_weights:
        print("Last-epoch weights of the last seed run (segmentation, depth, normals): " + "; ".join(
            f"{n} {', '.join(f'{w:.2f}' for w in weights)}" for n, weights in final_weights.items()))
    if args.results and histories:
        path = os.path.splitext(args.results)[0] + "_task_weights.png"
        keras_mtl.plot.task_weights_grid({n: h for n, h in histories.items() if n != "single-task"} or histories, path)
        print(f"Wrote {path} (task weights per epoch, last seed run)")


def print_ranking(summary):
    """Prints the methods' delta_m next to the published NYUv2 figures and the rank
    correlation of the two orders."""
    ranking = keras_mtl.experiments.compare_ranking(summary, NASH_MTL_NYUV2_DELTA_M)
    print("\ndelta_m % here vs on NYUv2 (Navon et al. 2022, Table 2), best first here:")
    for method, ours, published in ranking["methods"]:
        print(f"  {method:12s} {ours:+8.2f} {published:+8.2f}")
    print(f"Rank correlation with the published order: Spearman {ranking['spearman']:+.2f}, "
          f"Kendall tau {ranking['kendall_tau']:+.2f} ({len(ranking['methods'])} methods)")
    return ranking


if __name__ == "__main__":
    main()
