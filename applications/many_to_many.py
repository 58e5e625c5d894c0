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

import keras

import _common
import keras_mtl
import mtfl as mtfl_app
import utkface as utkface_app
from keras_mtl.datasets import interleave, mtfl, utkface
from keras_mtl.metrics import LandmarkFailureRate, LandmarkMeanError


def main():
    p = _common.parser(__doc__.splitlines()[0], epochs=5, batch_size=64)
    p.add_argument("--image-size", type=int, default=40)
    p.add_argument("--max-train", type=int, default=4000, help="training examples per dataset")
    p.add_argument("--samplings", default="proportional,annealed",
                   help="comma-separated task samplings, one multi-task model each")
    args = p.parse_args()
    utk_path, mtfl_path = _common.data_folder("utkface"), _common.data_folder("mtfl")
    size = args.image_size
    shape = (size, size, 3)

    ages = utkface.read_labels(utk_path)["age"]
    train_ages = ages[utkface.split_indices(len(ages), "train", seed=args.seed)]
    points = mtfl.read_labels(mtfl_path, "train")["landmarks"]
    mean_landmarks = mtfl.landmarks_in_box(points, mtfl.face_box(points)).numpy().mean(axis=0)
    tasks = lambda: [utkface_app.tasks(float(train_ages.mean()), float(train_ages.std()))[0],
                     mtfl_app.tasks(1.0, mean_landmarks)[0]]

    def train_set(name):
        if name == "age":
            return utkface.load(utk_path, "train", tasks=("age",), batch_size=args.batch_size,
                                image_size=size, seed=args.seed, max_examples=args.max_train)
        return mtfl.load(mtfl_path, "train", tasks=("landmarks",), batch_size=args.batch_size,
                         image_size=size, seed=args.seed, max_examples=args.max_train)

    test = {"age": utkface.load(utk_path, "test", tasks=("age",), batch_size=256, image_size=size),
            "landmarks": mtfl.load(mtfl_path, "test", tasks=("landmarks",), batch_size=256,
                                   image_size=size)}

    def evaluate(model):
        results = {}
        if "age" in model.task_names:
            results.update(_common.evaluate(model, test["age"], {
                "age MAE": ("age", keras.metrics.MeanAbsoluteError())}))
        if "landmarks" in model.task_names:
            results.update(_common.evaluate(model, test["landmarks"], {
                "landmark NME": ("landmarks", LandmarkMeanError()),
                "failure@10%": ("landmarks", LandmarkFailureRate(0.1))}))
        return results

    # Single-task networks: each trained on its own dataset for the same epochs (with
    # proportional sampling the shared model sees about as many batches of each task).
    single, single_seconds = {}, 0.0
    for task in tasks():
        keras.utils.set_random_seed(args.seed)
        model = keras_mtl.build("hard_sharing", [task], backbone=utkface_app.trunk, input_shape=shape)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        print(f"\n== {task.name} alone: {model.count_params():,} parameters")
        single_seconds += _common.fit(model, train_set(task.name), args.epochs)
        single.update(evaluate(model))
    results = {"single_task": (single, single_seconds)}

    per_task = {n: train_set(n).map(lambda x, y, n=n: (x, y[n])) for n in ("age", "landmarks")}
    batches = {n: int(d.cardinality()) for n, d in per_task.items()}
    steps = sum(batches.values())
    for sampling in [s for s in args.samplings.split(",") if s]:
        data = interleave(per_task, sampling=sampling, sizes=batches, steps_per_epoch=steps,
                          epochs=args.epochs, seed=args.seed)
        keras.utils.set_random_seed(args.seed)
        model = keras_mtl.build("hard_sharing", tasks(), backbone=utkface_app.trunk, input_shape=shape)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), freeze_absent_tasks=True)
        print(f"\n== shared trunk, {sampling} sampling: {model.count_params():,} parameters, "
              f"{steps} batches per epoch")
        seconds = _common.fit(model, data, args.epochs)
        results[f"shared {sampling}"] = (evaluate(model), seconds)

    _common.print_results(
        f"Many-to-many: UTKFace age (seeded random test split) + MTFL landmarks (official test), "
        f"{args.epochs} epochs, seed {args.seed}, {size}px, {args.max_train} training faces per dataset",
        results, lower_is_better={"age MAE", "landmark NME", "failure@10%"})


if __name__ == "__main__":
    main()
