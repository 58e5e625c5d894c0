"""Many-to-many: UTKFace's age and MTFL's landmarks through one shared trunk.

The two tasks come from different datasets (different faces, no example has both
labels). `keras_mtl.datasets.interleave` draws one task per batch (uniform,
proportional to the datasets' sizes, or annealed from proportional towards uniform,
Stickland & Murray 2019); the model is compiled with `freeze_absent_tasks=True`, so a
batch updates the trunk and its own task's head only. Compared with one network per
task trained on its own dataset for the same number of epochs:
age MAE (UTKFace test split), landmark error normalised by the inter-ocular distance
and failure rate at 10% (MTFL's official test set), and delta_m.

    python applications/many_to_many.py [--epochs 5] [--samplings uniform,proportional,annealed]
"""

import functools
import os

import keras

import _common
import keras_mtl
from keras_mtl import tasks as presets
from keras_mtl.backbones import conv
from keras_mtl.datasets import interleave, mtfl, utkface
from keras_mtl.metrics import LandmarkFailureRate, LandmarkMeanError


def trunk(input_shape):
    """Conv blocks and a 128-unit feature layer (as in utkface.py)."""
    blocks = conv(input_shape, filters=(16, 32, 64), batch_norm=False)
    features = keras.layers.Dense(128, activation="relu", name="features")(
        keras.layers.Flatten(name="flatten")(blocks.output))
    return keras.Model(blocks.input, features, name="face_trunk")


def tasks(mean_age, std_age, mean_landmarks):
    """Age in years (a standardised Dense output, rescaled) and the 5 landmarks (starting
    from the mean face shape), with the heads of utkface.py and mtfl.py."""
    return [presets.regression("age", loss="mae", mean=mean_age, std=std_age),
            presets.landmarks(mean_shape=mean_landmarks)]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=5, batch_size=64)
    p.add_argument("--image-size", type=int, default=40)
    p.add_argument("--max-train", type=int, default=4000, help="training examples per dataset")
    p.add_argument("--samplings", default="proportional,annealed",
                   help="comma-separated task samplings, one multi-task model each")
    args = p.parse_args(argv)
    # --data: a folder holding utkface/ and mtfl/.
    utk_path, mtfl_path = (_common.data_folder(name, args.data and os.path.join(args.data, name))
                           for name in ("utkface", "mtfl"))
    size = args.image_size
    shape = (size, size, 3)

    ages = utkface.read_labels(utk_path)["age"]
    points = mtfl.read_labels(mtfl_path, "train")["landmarks"]
    mean_landmarks = mtfl.landmarks_in_box(points, mtfl.face_box(points)).numpy().mean(axis=0)

    def seeded_tasks(seed):
        train_ages = ages[utkface.split_indices(len(ages), "train", seed=seed)]
        return tasks(float(train_ages.mean()), float(train_ages.std()), mean_landmarks)

    def train_set(name, seed):
        if name == "age":
            return utkface.load(utk_path, "train", tasks=("age",), batch_size=args.batch_size,
                                image_size=size, seed=seed, max_examples=args.max_train)
        return mtfl.load(mtfl_path, "train", tasks=("landmarks",), batch_size=args.batch_size,
                         image_size=size, seed=seed, max_examples=args.max_train)

    landmarks_test = mtfl.load(mtfl_path, "test", tasks=("landmarks",), batch_size=256, image_size=size)

    def evaluate(model, seed):
        results = {}
        if "age" in model.task_names:
            # UTKFace's test split is the complement of the seed's training split.
            age_test = utkface.load(utk_path, "test", tasks=("age",), batch_size=256, image_size=size, seed=seed)
            results.update(_common.evaluate(model, age_test, {
                "age MAE": ("age", keras.metrics.MeanAbsoluteError())}))
        if "landmarks" in model.task_names:
            results.update(_common.evaluate(model, landmarks_test, {
                "landmark NME": ("landmarks", LandmarkMeanError()),
                "failure@10%": ("landmarks", LandmarkFailureRate(0.1))}))
        return results

    def single_task(seed):
        """Each task's network trained on its own dataset for the same epochs (with
        proportional sampling the shared model sees about as many batches of each task)."""
        single = {}
        for task in seeded_tasks(seed):
            keras.utils.set_random_seed(seed)
            model = keras_mtl.build("hard_sharing", [task], backbone=trunk, input_shape=shape)
            model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
            print(f"\n== {task.name} alone: {model.count_params():,} parameters")
            _common.fit(model, train_set(task.name, seed), args.epochs)
            single.update(evaluate(model, seed))
        return single

    def shared(sampling, seed):
        per_task = {n: train_set(n, seed).map(lambda x, y, n=n: (x, y[n])) for n in ("age", "landmarks")}
        batches = {n: int(d.cardinality()) for n, d in per_task.items()}
        steps = sum(batches.values())
        data = interleave(per_task, sampling=sampling, sizes=batches, steps_per_epoch=steps,
                          epochs=args.epochs, seed=seed)
        model = keras_mtl.build("hard_sharing", seeded_tasks(seed), backbone=trunk, input_shape=shape)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), freeze_absent_tasks=True)
        print(f"\n== shared trunk, {sampling} sampling: {model.count_params():,} parameters, "
              f"{steps} batches per epoch")
        _common.fit(model, data, args.epochs)
        return evaluate(model, seed)

    runs = {"single_task": single_task}
    runs.update({f"shared {s}": functools.partial(shared, s) for s in args.samplings.split(",") if s})
    _common.compare(
        args, f"Many-to-many: UTKFace age (seeded random test split) + MTFL landmarks (official test), "
        f"{args.epochs} epochs, {size}px, {args.max_train} training faces per dataset",
        runs, lower_is_better={"age MAE", "landmark NME", "failure@10%"})


if __name__ == "__main__":
    main()
