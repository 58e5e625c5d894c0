"""Census-income (MMoE task group 1): income > 50K and never-married from one MLP.

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, section 6.3. Trains one network per task
(`single_task`), `hard_sharing`, and MMoE / PLE / DSelect-k when
`keras_mtl.architectures` has them ("mmoe", "ple", "dselect_k"), each task with a small tower (16 ReLU units, sigmoid
output), then prints each task's test ROC-AUC and delta_m against the single-task
networks. Split: the official train/test files when both are present; with only
census-income.test (as in ../shared/data), a seeded random 80/20 split of it.

    python applications/census_income.py [--epochs 5] [--units 64,32] [--architectures mmoe,dselect_k]
"""

import functools

import keras

import _common
import keras_mtl
from keras_mtl import tasks as presets
from keras_mtl.backbones import mlp
from keras_mtl.datasets import census_income


def tasks():
    """Each task's tower: 16 ReLU units and a sigmoid output (`keras_mtl.tasks.binary`)."""
    return [presets.binary(name, hidden=(16,), from_logits=False) for name in census_income.TASKS]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=5, batch_size=256)
    p.add_argument("--units", default="64,32", help="hidden layer widths of the MLP (each expert's)")
    p.add_argument("--experts", type=int, default=4, help="MMoE and DSelect-k experts")
    p.add_argument("--nonzeros", type=int, default=2, help="DSelect-k's k (experts per task)")
    p.add_argument("--architectures", default=None,
                   help="comma-separated subset of the rows to train (default: all)")
    args = p.parse_args(argv)
    path = _common.data_folder("census_income", args.data)
    trunk = functools.partial(mlp, units=tuple(int(u) for u in args.units.split(",")))
    available = keras_mtl.architectures.available()
    runs = {"single_task": {}, "hard_sharing": {}}
    if "mmoe" in available:
        runs["mmoe"] = {"num_experts": args.experts}
    if "ple" in available:
        runs["ple"] = {}
    if "dselect_k" in available:
        runs["dselect_k"] = {"num_experts": args.experts, "num_nonzeros": args.nonzeros}
    missing = [a for a in ("mmoe", "ple", "dselect_k") if a not in available]
    if missing:
        print(f"Architectures not available in this keras_mtl: {missing}")
    if args.architectures:
        runs = {a: runs[a] for a in args.architectures.split(",")}

    def run(architecture, seed):
        train = census_income.load(path, "train", batch_size=args.batch_size, seed=seed)
        test = census_income.load(path, "test", batch_size=4096, seed=seed)
        model = keras_mtl.build(architecture, tasks(), backbone=trunk,
                                input_shape=train.element_spec[0].shape[1:], **runs[architecture])
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), steps_per_execution=16)
        print(f"\n== {architecture}: {model.count_params():,} parameters")
        _common.fit(model, train, args.epochs)
        metrics = {f"{name} AUC": (name, keras.metrics.AUC(num_thresholds=2000))
                   for name in census_income.TASKS}
        return _common.evaluate(model, test, metrics)

    split = ("official split" if census_income.has_official_split(path)
             else "seeded random 20% of census-income.test")
    _common.compare(args, f"Census-income test ({split}), {args.epochs} epochs",
                    {a: functools.partial(run, a) for a in runs}, lower_is_better=set())


if __name__ == "__main__":
    main()
