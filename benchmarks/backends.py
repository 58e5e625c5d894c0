"""keras_mtl on the JAX backend vs the TensorFlow backend, in the same run.

A Keras process has one backend, so each backend trains in its own worker process;
this process sends both workers "one epoch of model M" commands in interleaved rounds
(`benchmarks.interleaved_rounds`: one epoch of each contender per round, in a rotating
order) and reports each contender's steps/s as a ratio to keras_mtl on TensorFlow
without XLA in the same round (higher is faster), by wall-clock and by CPU time.

Contenders: the models of `benchmarks/overhead.py` (the tabular MLP and the Scenes
SegNet) with equal weighting and with PCGrad on the shared parameters, on TensorFlow
without and with `jit_compile`, and on JAX (always jit-compiled), from the same data
pipeline (`tf.data`, batch 32 and 16).

    python -m benchmarks.backends [--quick] [--models mlp,scenes] [--methods equal,pcgrad]
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import interleaved_rounds, markdown_table, summarize

REFERENCE = "tensorflow, equal"


def _contenders(backend, methods):
    """`(label, weighting, jit_compile)` of one backend's models."""
    jits = (False, True) if backend == "tensorflow" else (True,)
    return [(f"{backend}{', XLA' if jit and backend == 'tensorflow' else ''}, {method}",
             method, jit) for method in methods for jit in jits]


def _worker(backend, model_name, methods, quick):
    """Builds this backend's contenders, then runs one epoch of the model named on
    each line of stdin and answers `steps wall_seconds cpu_seconds` as JSON."""
    import keras

    import keras_mtl
    from benchmarks import keras_epoch_runner
    from benchmarks.overhead import SETTINGS

    assert keras.backend.backend() == backend, keras.backend.backend()
    examples, batch = {"mlp": (2048 if quick else 8192, 32),
                       "scenes": (96 if quick else 256, 16)}[model_name]
    tasks, backbone, shape, dataset = SETTINGS[model_name](examples, batch)
    runners = {}
    for label, method, jit in _contenders(backend, methods):
        keras.utils.set_random_seed(0)
        model = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
        model.compile(optimizer="adam", weighting=method, jit_compile=jit)
        runners[label] = keras_epoch_runner(model, dataset)
    print(json.dumps(sorted(runners)), flush=True)
    for line in sys.stdin:
        print(json.dumps(runners[line.strip()]()), flush=True)


class _Worker:
    def __init__(self, backend, model_name, methods, quick):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-m", "benchmarks.backends", "--worker", backend,
                   "--models", model_name, "--methods", ",".join(methods)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(command + (["--quick"] if quick else []), env=env, cwd=root,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.labels = json.loads(self.process.stdout.readline())

    def runner(self, label):
        def run():
            self.process.stdin.write(label + "\n")
            self.process.stdin.flush()
            return tuple(json.loads(self.process.stdout.readline()))
        return run

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def run(quick=False, models=("mlp", "scenes"), methods=("equal", "pcgrad"), rounds=None, log=print):
    """Rows `(model, run, steps/s, ratio, ratio spread, CPU-time ratio, rounds)`, the
    ratios against keras_mtl with equal weighting on TensorFlow without XLA."""
    rounds = rounds or (3 if quick else 5)
    rows = []
    for model_name in models:
        start = time.perf_counter()
        workers = [_Worker(b, model_name, methods, quick) for b in ("tensorflow", "jax")]
        try:
            runners = {label: w.runner(label) for w in workers for label in w.labels}
            if log:
                log(f"backends: {model_name}: {len(runners)} models built in "
                    f"{time.perf_counter() - start:.0f} s")
            samples = interleaved_rounds(runners, REFERENCE, rounds,
                                         extra_rounds=2 if quick else 4)
        finally:
            for w in workers:
                w.close()
        for label, summary in summarize(samples).items():
            rows.append((model_name, label) + summary)
    return rows


def report(rows):
    header = ["model", "run", "steps/s", f"ratio vs {REFERENCE}", "IQR/median",
              "CPU-time ratio", "rounds"]
    return markdown_table(header, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data, fewer rounds")
    parser.add_argument("--models", default="mlp,scenes", help="comma-separated: mlp, scenes")
    parser.add_argument("--methods", default="equal,pcgrad", help="weighting methods")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 3 quick, 5 full)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    methods = tuple(args.methods.split(","))
    if args.worker:
        return _worker(args.worker, args.models, methods, args.quick)
    if "equal" not in methods:
        raise ValueError(f"--methods must include equal (the reference). Received: {args.methods}")
    rows = run(quick=args.quick, models=tuple(args.models.split(",")), methods=methods,
               rounds=args.rounds)
    print("\n## keras_mtl on JAX vs TensorFlow (same run)\n")
    print(report(rows))
    return rows


if __name__ == "__main__":
    main()
