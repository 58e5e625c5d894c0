"""MTFL, TCDCN-style: 5 facial landmarks alone vs landmarks + 4 face attributes.

Zhang, Luo, Loy, Tang, "Facial Landmark Detection by Deep Multi-task Learning",
ECCV 2014: landmark regression shares a conv trunk and a 100-unit feature layer
with gender, smile, glasses and head-pose classification, the auxiliary tasks
weighted down. The paper's claim: the auxiliary tasks reduce the landmark error.

Faces are cropped around a box derived from the landmarks (jittered in training)
and resized; the official split (10,000 train, 2,995 AFLW test) is used. Trains
the landmark network alone and `hard_sharing` models (landmarks + attributes,
one per attribute loss weight, since the landmark MSE on normalised coordinates
is about 1/300 of a cross-entropy), then prints the normalised mean error, the
failure rate at 10% (per landmark), each attribute's accuracy and delta_m against
the landmark network alone (or, with --attribute-baselines, against one
single-task network per task).

With --taskwise-early-stopping THRESHOLD (and --validation N held-out training faces,
on which every row then validates), each attribute-weight row is trained again with
`keras_mtl.callbacks.TaskwiseEarlyStopping` on the four attributes (the paper's
section 3.2), and the epoch at which each attribute stopped is printed.

    python applications/mtfl.py [--epochs 8] [--aux-weights 0.1,0.01,0.001]
    python applications/mtfl.py --validation 1000 --taskwise-early-stopping 100 --tes-k 3 \
        --max-train 3000 --epochs 10 --aux-weights 0.01
"""

import functools

import keras
import numpy as np

import _common
import keras_mtl
from keras_mtl.datasets import mtfl
from keras_mtl.zoo.tcdcn import tcdcn_early_stopping, tcdcn_tasks, tcdcn_trunk
from keras_mtl.metrics.landmark_error import LandmarkMeanError
from keras_mtl.metrics.landmark_failure_rate import LandmarkFailureRate


def test_metrics(task_names):
    metrics = {"landmark NME": ("landmarks", LandmarkMeanError()),
               "failure@10%": ("landmarks", LandmarkFailureRate(0.1))}
    for name in task_names[1:]:
        metrics[f"{name} acc"] = (name, keras.metrics.SparseCategoricalAccuracy())
    return metrics


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=8, batch_size=64)
    p.add_argument("--image-size", type=int, default=40)
    p.add_argument("--aux-weights", default="0.1,0.01,0.001",
                   help="comma-separated loss weights of the attribute tasks (landmarks: 1); "
                        "one hard_sharing model per value")
    p.add_argument("--attribute-baselines", action="store_true",
                   help="also train single-task attribute networks (single_task over all five "
                        "tasks replaces 'landmarks alone' as the delta_m baseline)")
    p.add_argument("--max-train", type=int, default=None, help="use a subset of the training set")
    p.add_argument("--validation", type=int, default=0,
                   help="hold out this many (seeded) training faces as validation data")
    p.add_argument("--taskwise-early-stopping", type=float, default=None, metavar="THRESHOLD",
                   help="also train each aux row with TaskwiseEarlyStopping at this threshold")
    p.add_argument("--tes-k", type=int, default=5, help="TaskwiseEarlyStopping's strip length k")
    args = p.parse_args(argv)
    if args.taskwise_early_stopping is not None and not args.validation:
        p.error("--taskwise-early-stopping needs --validation N")
    path = _common.data_folder("mtfl", args.data)
    training_labels = mtfl.read_labels(path, "train")
    all_tasks = ("landmarks",) + mtfl.ATTRIBUTES
    # (row name, architecture, tasks, attribute loss weight)
    baseline = (("single_task", "single_task", all_tasks, 1.0) if args.attribute_baselines
                else ("landmarks alone", "hard_sharing", ("landmarks",), 1.0))
    runs = [baseline + (False,)]
    for w in args.aux_weights.split(","):
        runs.append((f"hard_sharing aux={float(w):g}", "hard_sharing", all_tasks, float(w), False))
        if args.taskwise_early_stopping is not None:
            runs.append((f"hard_sharing aux={float(w):g} + TES", "hard_sharing", all_tasks, float(w), True))
    kept_count = len(training_labels["path"]) - args.validation

    def run(row, seed):
        name, architecture, task_names, aux_weight, stopping = row
        order = np.random.default_rng(seed).permutation(len(training_labels["path"]))
        held_out, kept = np.sort(order[:args.validation]), np.sort(order[args.validation:])
        points = training_labels["landmarks"][kept]
        mean_landmarks = mtfl.landmarks_in_box(points, mtfl.face_box(points)).numpy().mean(axis=0)
        train = mtfl.load(path, "train", tasks=task_names, batch_size=args.batch_size,
                          image_size=args.image_size, seed=seed, max_examples=args.max_train,
                          indices=kept)
        validation = (mtfl.load(path, "train", tasks=task_names, batch_size=256, image_size=args.image_size,
                                training=False, indices=held_out) if args.validation else None)
        test = mtfl.load(path, "test", tasks=task_names, batch_size=256, image_size=args.image_size)
        model = keras_mtl.build(
            architecture, [t for t in tcdcn_tasks(aux_weight, mean_landmarks) if t.name in task_names],
            backbone=tcdcn_trunk, input_shape=(args.image_size, args.image_size, 3))
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), steps_per_execution=16)
        print(f"\n== {name}: {model.count_params():,} parameters")
        callbacks = [tcdcn_early_stopping(args.taskwise_early_stopping, k=args.tes_k)] if stopping else []
        _common.fit(model, train, args.epochs, validation, callbacks)
        if stopping:
            logs = model.history.history
            print(f"  stopped after epoch (1-based; None: never): "
                  f"{ {t: None if e is None else e + 1 for t, e in callbacks[0].stopped_epoch.items()} }; "
                  "criteria: " + str({t: [round(v, 1) for v in logs[f'{t}_stopping_criterion']]
                                      for t in mtfl.ATTRIBUTES}))
        return _common.evaluate(model, test, test_metrics(task_names))

    _common.compare(
        args, f"MTFL test (AFLW, 2,995 faces), {args.epochs} epochs, "
        f"{args.image_size}px crops, {min(kept_count, args.max_train or kept_count)} training faces; aux = each attribute's loss weight"
        + (f"; TES: TaskwiseEarlyStopping(threshold={args.taskwise_early_stopping:g}, k={args.tes_k})"
           if args.taskwise_early_stopping is not None else ""),
        {row[0]: functools.partial(run, row) for row in runs},
        lower_is_better={"landmark NME", "failure@10%"}, baseline=baseline[0])


if __name__ == "__main__":
    main()
