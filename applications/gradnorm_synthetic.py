"""The synthetic benchmark of GradNorm (Chen et al., ICML 2018, section 4).

T regression tasks `f_i(x) = sigma_i tanh((B + eps_i) x)` share the input `x` (250-d,
uniform in [-1, 1], scaled to unit norm) and a common matrix `B` (100 x 250, N(0, 10^2)
entries); each task has its own `eps_i` (N(0, 3.5^2) entries) and a very different
scale `sigma_i` (log-spaced from 1 to `--max-sigma`). With equal weights the
large-sigma tasks dominate the gradient. A 4-layer ReLU trunk (100 units) is shared
and each task has an affine head.

Trains the same network (same seed and initial weights) with equal weights,
learned uncertainty, GradNorm and DWA, and prints each task's test error
normalised by its scale, `MSE_i / sigma_i^2` (1 is predicting 0).

    python applications/gradnorm_synthetic.py --plot weights.png
"""

import functools
import time

import keras
import numpy as np

import _common
import keras_mtl
from keras_mtl import plot as mtl_plot
from keras_mtl.backbones.mlp import mlp
from keras_mtl.weighting import DWA, GradNorm, Uncertainty

INPUT_DIM, OUTPUT_DIM = 250, 100


def make_data(num_tasks, max_sigma, n_train, n_test, seed):
    """Returns `(x_train, y_train, x_test, y_test, sigmas)`, y as dicts by task."""
    rng = np.random.default_rng(seed)
    sigmas = np.geomspace(1.0, max_sigma, num_tasks)
    b = rng.normal(scale=10.0, size=(OUTPUT_DIM, INPUT_DIM))
    eps = rng.normal(scale=3.5, size=(num_tasks, OUTPUT_DIM, INPUT_DIM))

    def sample(n):
        x = rng.uniform(-1.0, 1.0, size=(n, INPUT_DIM))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = {f"task{i}": (sigmas[i] * np.tanh(x @ (b + eps[i]).T)).astype("float32")
             for i in range(num_tasks)}
        return x.astype("float32"), y

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return x_train, y_train, x_test, y_test, sigmas


def make_model(num_tasks):
    tasks = [keras_mtl.Task(f"task{i}", head=OUTPUT_DIM, loss="mse") for i in range(num_tasks)]
    return keras_mtl.build("hard_sharing", tasks, input_shape=(INPUT_DIM,),
                           backbone=functools.partial(mlp, units=(100,) * 4))


def methods(args):
    return {
        "equal": lambda: "equal",
        "uncertainty": lambda: Uncertainty(),
        "gradnorm": lambda: GradNorm(alpha=args.alpha),
        "dwa": lambda: DWA(temperature=args.temperature),
    }


def run(method, weighting, data, args):
    x_train, y_train, x_test, y_test, sigmas = data
    model = make_model(len(sigmas))
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  weighting_optimizer=keras.optimizers.Adam(args.weighting_learning_rate),
                  weighting=weighting)
    start = time.time()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        verbose=0)
    seconds = time.time() - start
    predictions = model.predict(x_test, batch_size=1024, verbose=0)
    errors = np.array([np.mean((predictions[f"task{i}"] - y_test[f"task{i}"]) ** 2) / s ** 2
                       for i, s in enumerate(sigmas)])
    return errors, history, seconds


def main(argv=None):
    parser = _common.parser(__doc__.splitlines()[0], epochs=40, batch_size=128, data=False)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--max-sigma", type=float, default=100.0)
    parser.add_argument("--train", type=int, default=8192, help="training examples")
    parser.add_argument("--test", type=int, default=2048, help="test examples")
    parser.add_argument("--weighting-learning-rate", type=float, default=0.025,
                        help="Adam learning rate of the learned weights")
    parser.add_argument("--alpha", type=float, default=0.12,
                        help="GradNorm's alpha (Chen et al. use 0.12 on this benchmark)")
    parser.add_argument("--temperature", type=float, default=2.0, help="DWA's T")
    parser.add_argument("--methods", default="equal,uncertainty,gradnorm,dwa")
    parser.add_argument("--plot", help="write the weight trajectories to this image")
    args = parser.parse_args(argv)

    available = methods(args)
    chosen = args.methods.split(",")
    unknown = [m for m in chosen if m not in available]
    if unknown:
        parser.error(f"unknown --methods {unknown}; choose from {sorted(available)}")
    sigmas = np.geomspace(1.0, args.max_sigma, args.tasks)
    columns = [f"s={s:.3g}" for s in sigmas]

    results = {}

    def seeded_run(method, seed):
        data = make_data(args.tasks, args.max_sigma, args.train, args.test, seed)
        results[method] = run(method, available[method](), data, args)
        errors = results[method][0]
        return {**dict(zip(columns, errors.tolist())), "mean": float(errors.mean())}

    _common.compare(args, f"Test MSE_i / sigma_i^2 ({args.tasks} tasks, {args.epochs} epochs)",
                    {m: functools.partial(seeded_run, m) for m in chosen},
                    lower_is_better=set(columns) | {"mean"}, baseline=chosen[0], compared=columns)

    if args.plot and results:
        mtl_plot.task_weights_grid({method: history for method, (_, history, _) in results.items()}, args.plot)
        print(f"weight trajectories written to {args.plot}")
    return results


if __name__ == "__main__":
    main()
