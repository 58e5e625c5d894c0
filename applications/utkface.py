"""UTKFace: age (regression), gender and race from one face, under several task weightings.

Age is an L1 loss in years (about 10 at the start), gender and race
cross-entropies (about 1): the classic mix of loss scales. Trains one network
per task (`single_task`) and a `hard_sharing` network with equal weights, fixed
weights (age 0.1: its loss scaled to the others'), learned uncertainty weights
(Kendall et al. CVPR 2018) and Dynamic Weight Average (Liu et al. CVPR 2019) when
`keras_mtl.weighting` has them, then prints age MAE, gender and race accuracy and
delta_m against the single-task networks. Split: seeded random 80/20 over the
sorted file names (UTKFace has no official split).

    python applications/utkface.py [--epochs 8] [--image-size 48] [--max-train 6000]
"""

import functools

import keras

import _common
import keras_mtl
from keras_mtl import tasks as presets
from keras_mtl.backbones import conv
from keras_mtl.datasets import utkface


def trunk(input_shape):
    blocks = conv(input_shape, filters=(16, 32, 64), batch_norm=False)
    x = keras.layers.Flatten(name="flatten")(blocks.output)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    return keras.Model(blocks.input, x, name="face_trunk")


def tasks(mean_age, std_age):
    """Age in years (L1; a standardised output rescaled to years) and gender and race
    (softmax), from `keras_mtl.tasks`."""
    return [presets.regression("age", loss="mae", mean=mean_age, std=std_age),
            presets.classification("gender", 2, from_logits=False),
            presets.classification("race", 5, from_logits=False)]


def weightings():
    """The weighting methods to compare, by row name."""
    methods = {"equal": "equal", "fixed age=0.1": keras_mtl.weighting.Fixed(
        {"age": 0.1, "gender": 1.0, "race": 1.0})}
    available = keras_mtl.weighting.available()
    if "uncertainty" in available:
        methods["uncertainty"] = keras_mtl.weighting.Uncertainty(
            forms={"age": "regression", "gender": "classification", "race": "classification"})
    if "dwa" in available:
        methods["dwa"] = "dwa"
    missing = [m for m in ("uncertainty", "dwa") if m not in available]
    if missing:
        print(f"Weighting methods not available in this keras_mtl: {missing}")
    return methods


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=8, batch_size=64)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--max-train", type=int, default=6000,
                   help="random subset of the training split (0: all 18,962)")
    args = p.parse_args(argv)
    path = _common.data_folder("utkface", args.data)
    ages = utkface.read_labels(path)["age"]
    test_count = len(utkface.split_indices(len(ages), "test", seed=args.seed))
    runs = {"single_task": ("single_task", None)}
    runs.update({f"hard_sharing {name}": ("hard_sharing", name) for name in weightings()})

    def run(name, seed):
        architecture, method = runs[name]
        # A weighting instance belongs to one model: a fresh one per run.
        weighting = "equal" if method is None else weightings()[method]
        train = utkface.load(path, "train", batch_size=args.batch_size, image_size=args.image_size,
                             seed=seed, max_examples=args.max_train or None)
        test = utkface.load(path, "test", batch_size=256, image_size=args.image_size, seed=seed)
        train_ages = ages[utkface.split_indices(len(ages), "train", seed=seed)]
        age_scale = float(train_ages.mean()), float(train_ages.std())
        model = keras_mtl.build(architecture, tasks(*age_scale), backbone=trunk,
                                input_shape=(args.image_size, args.image_size, 3))
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting=weighting,
                      steps_per_execution=16)
        print(f"\n== {name}: {model.count_params():,} parameters")
        _common.fit(model, train, args.epochs)
        metrics = {"age MAE": ("age", keras.metrics.MeanAbsoluteError()),
                   "gender acc": ("gender", keras.metrics.SparseCategoricalAccuracy()),
                   "race acc": ("race", keras.metrics.SparseCategoricalAccuracy())}
        return _common.evaluate(model, test, metrics)

    _common.compare(
        args, f"UTKFace test (seeded random 20%, {test_count} faces), "
        f"{args.epochs} epochs, {args.image_size}px, {args.max_train or 'all'} training faces",
        {name: functools.partial(run, name) for name in runs}, lower_is_better={"age MAE"})


if __name__ == "__main__":
    main()
