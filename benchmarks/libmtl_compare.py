"""keras_mtl vs LibMTL (PyTorch): training speed of the same hard-sharing model with
the same weighting methods, and numerical agreement of DWA, UW, PCGrad and MGDA.

Speed: for each method both libraries train the same architecture (same layer
sizes, batch, input size, K = 3 tasks, Adam) on the same data, one epoch each per
round, in interleaved rounds; the table gives the median steps/s and the median of
the per-round ratios keras_mtl / LibMTL (target >= 1.2). The LibMTL side builds its
model as `LibMTL.trainer.Trainer._prepare_model` does (its `HPS` architecture
class and the method's weighting class, combined by inheritance) and runs the inner
loop of `Trainer.train` (forward, per-task losses through LibMTL's `AbsLoss`,
`model.backward(losses, **weight_args)`, `optimizer.step()`, the epoch's average
losses into `train_loss_buffer`), minus its per-batch metric updates: LibMTL 1.1.5's
`Trainer` itself hard-codes `cuda:0` and the removed `DataLoader` iterator method
`.next()`. Its batches are tensors made once, so it pays no data-loading cost.
Gradient methods run on the shared parameters in both (LibMTL's `rep_grad=False`),
except GradDrop, which LibMTL supports only on the representation.

Agreement: each method's own code in both libraries on the same inputs: DWA and UW
weights over the same loss history (UW's log-variances trained by SGD in both),
PCGrad (same task orders), MGDA and IMTL combined gradients on the same gradient
matrix. The LibMTL methods run unchanged, with the gradient plumbing of
`LibMTL/weighting/abstract_weighting.py` (`_compute_grad`, `_reset_grad`) replaced
by the given matrix and a capture of the result.

Needs `torch` (CPU build), `LibMTL` (installed with `--no-deps`: its package
`__init__` imports torchvision's removed `torchvision.models.utils`, so only its
`weighting`, `architecture` and `loss` modules are loaded) and `scipy` (LibMTL's
CAGrad).

    python -m benchmarks.libmtl_compare [--quick] [--models mlp,scenes]

Under `KERAS_BACKEND=torch` keras_mtl trains on the same framework as LibMTL (one step
per execution: Keras' torch trainer runs no more).
"""

import argparse
import importlib
import importlib.util
import os
import sys
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_mtl  # noqa: E402
from benchmarks import (  # noqa: E402
    interleaved_rounds, keras_epoch_runner, load_weighting_methods, markdown_table, summarize)
from benchmarks.overhead import mlp_setting, scenes_setting  # noqa: E402

TARGET_RATIO = 1.2
AGREEMENT_TOLERANCE = 1e-5

# (label, keras_mtl weighting name, its arguments, LibMTL class or None, LibMTL
# weight_args, LibMTL rep_grad). Arguments are LibMTL's defaults (LibMTL/config.py).
METHODS = (
    ("EW", "equal", {}, "EW", {}, False),
    ("DWA", "dwa", {"temperature": 2.0}, "DWA", {"T": 2.0}, False),
    ("UW", "uncertainty", {}, "UW", {}, False),
    ("GradNorm", "gradnorm", {"alpha": 1.5}, "GradNorm", {"alpha": 1.5}, False),
    ("MGDA", "mgda", {"normalization": "none"}, "MGDA", {"mgda_gn": "none"}, False),
    ("PCGrad", "pcgrad", {}, "PCGrad", {}, False),
    ("CAGrad", "cagrad", {"c": 0.5, "rescale": 1}, "CAGrad", {"calpha": 0.5, "rescale": 1}, False),
    ("Nash-MTL", "nash_mtl", {}, None, {}, False),
    ("GLS", "gls", {}, "GLS", {}, False),
    ("RLW", "rlw", {}, "RLW", {"dist": "Normal"}, False),
    ("IMTL", "imtl", {}, "IMTL", {}, False),
    ("GradVac", "gradvac", {"beta": 0.5}, "GradVac", {"beta": 0.5}, False),
    ("GradDrop", "graddrop", {"leak": 0.0, "gradient_mode": "representation"}, "GradDrop",
     {"leak": 0.0}, True),
)
ISSUE_METHODS = ("EW", "DWA", "UW", "GradNorm", "MGDA", "PCGrad", "CAGrad", "Nash-MTL")


# ------------------------------------------------------------------ importing


def set_threads(threads):
    """Gives TensorFlow and PyTorch the same number of CPU threads (before either
    runs anything). PyTorch's OpenMP threads wait for each other at every op, so on
    a machine busy with other work 2 threads can make it 50x slower than 1, while
    TensorFlow's thread pool degrades gracefully: one thread each keeps the
    comparison about the libraries, not about oversubscription."""
    import tensorflow as tf
    import torch

    torch.set_num_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def import_libmtl():
    """Returns LibMTL's `(weighting, architecture, loss)` modules; raises ImportError
    with the reason when torch or LibMTL is missing."""
    import torch  # noqa: F401

    if "LibMTL" not in sys.modules:
        spec = importlib.util.find_spec("LibMTL")
        if spec is None:
            raise ImportError("LibMTL is not installed (pip install LibMTL --no-deps)")
        try:
            importlib.import_module("LibMTL")
        except ImportError:
            # Its __init__ imports LibMTL.model (ResNets, torchvision); the modules
            # needed here import only torch, numpy and scipy.
            package = types.ModuleType("LibMTL")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            sys.modules["LibMTL"] = package
    return tuple(importlib.import_module(f"LibMTL.{m}") for m in ("weighting", "architecture", "loss"))


def libmtl_unavailable_reason():
    """None when the LibMTL comparison can run, else why not."""
    try:
        import_libmtl()
    except ImportError as e:
        return f"{type(e).__name__}: {e}"
    return None


def keras_mtl_weighting(name, options=None):
    """A keras_mtl weighting instance; `None` when keras_mtl has no method `name`."""
    if name not in keras_mtl.weighting.available():
        return None
    options = dict(options or {})
    # Set after construction: not every method takes it as an argument.
    mode = options.pop("gradient_mode", None)
    weighting = type(keras_mtl.weighting.get(name))(**options)
    if mode is not None:
        weighting.gradient_mode = mode
    return weighting


# ------------------------------------------------------------- PyTorch models


def _torch_modules(setting, keras_model):
    """`(encoder_class, decoders, losses)` of the PyTorch twin of a keras_mtl model."""
    from torch import nn

    _, _, loss_lib = import_libmtl()

    class MeanSquaredError(loss_lib.AbsLoss):
        def __init__(self):
            super().__init__()
            self.loss_fn = nn.MSELoss()

        def compute_loss(self, pred, gt):
            return self.loss_fn(pred, gt)

    if setting == "mlp":
        units = [keras_model.get_layer(f"dense{i}").units for i in (1, 2)]
        features = keras_model.input_shape[-1]

        class Encoder(nn.Sequential):
            def __init__(self):
                super().__init__(nn.Linear(features, units[0]), nn.ReLU(),
                                 nn.Linear(units[0], units[1]), nn.ReLU())

        decoders = {"t0": nn.Linear(units[1], 5), "t1": nn.Linear(units[1], 5),
                    "t2": nn.Linear(units[1], 1)}
        losses = {"t0": loss_lib.CELoss(), "t1": loss_lib.CELoss(), "t2": MeanSquaredError()}
        return Encoder, decoders, losses

    filters = [keras_model.get_layer(f"enc{i}_1_conv").filters for i in (1, 2, 3)]

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU())

    class SegNet(nn.Module):
        """The `segnet` backbone with one conv per block: max pooling with indices,
        max-unpooling at them."""

        def __init__(self):
            super().__init__()
            channels = [3] + filters
            self.encoders = nn.ModuleList(block(channels[i], channels[i + 1]) for i in range(3))
            # Decoder i (deepest first) ends with the channels of encoder block i-1.
            self.decoders = nn.ModuleList(block(filters[i], filters[max(i - 1, 0)]) for i in (2, 1, 0))
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)

        def forward(self, x):
            indices = []
            for encoder in self.encoders:
                x, where = self.pool(encoder(x))
                indices.append(where)
            for decoder, where in zip(self.decoders, reversed(indices)):
                x = decoder(self.unpool(x, where))
            return x

    def head(channels):
        return nn.Sequential(nn.Conv2d(filters[0], filters[0], 3, padding=1), nn.ReLU(),
                             nn.Conv2d(filters[0], channels, 1))

    class PixelCrossEntropy(loss_lib.AbsLoss):
        def compute_loss(self, pred, gt):
            return nn.functional.cross_entropy(pred, gt, ignore_index=-1)

    class DepthL1(loss_lib.AbsLoss):
        def compute_loss(self, pred, gt):
            valid = (gt > 0).float()
            per_image = ((pred - gt).abs() * valid).sum((1, 2, 3)) / valid.sum((1, 2, 3)).clamp(min=1)
            return per_image.mean()

    class NormalCosine(loss_lib.AbsLoss):
        def compute_loss(self, pred, gt):
            valid = (gt.abs().sum(1) > 0).float()
            cosine = (nn.functional.normalize(pred, dim=1) * nn.functional.normalize(gt, dim=1)).sum(1)
            per_image = ((1 - cosine) * valid).sum((1, 2)) / valid.sum((1, 2)).clamp(min=1)
            return per_image.mean()

    from keras_mtl.datasets.scenes import NUM_CLASSES

    decoders = {"segmentation": head(NUM_CLASSES), "depth": head(1), "normals": head(3)}
    losses = {"segmentation": PixelCrossEntropy(), "depth": DepthL1(), "normals": NormalCosine()}
    return SegNet, decoders, losses


def _torch_batches(setting, dataset):
    """The Keras dataset's batches as PyTorch tensors (channels first for images)."""
    import torch

    batches = []
    for x, y in dataset.as_numpy_iterator():
        x, y = np.array(x), {t: np.array(v) for t, v in y.items()}
        if setting == "mlp":
            labels = {"t0": torch.from_numpy(y["t0"]).long(), "t1": torch.from_numpy(y["t1"]).long(),
                      "t2": torch.from_numpy(y["t2"])}
            batches.append((torch.from_numpy(x), labels))
        else:
            channels_first = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
            labels = {"segmentation": torch.from_numpy(y["segmentation"]).long(),
                      "depth": channels_first(y["depth"]), "normals": channels_first(y["normals"])}
            batches.append((channels_first(x), labels))
    return batches


class LibMTLRunner:
    """One LibMTL model and optimizer; each call trains one epoch and returns
    `(steps, wall_seconds, cpu_seconds)`."""

    def __init__(self, method, weight_args, rep_grad, encoder_class, decoders, losses, batches,
                 max_epochs=1000):
        import torch
        from torch import nn

        weighting_lib, architecture_lib, _ = import_libmtl()
        weighting = getattr(weighting_lib, method)

        # As LibMTL/trainer.py, Trainer._prepare_model.
        class MTLmodel(architecture_lib.HPS, weighting):
            def __init__(self, task_name, encoder_class, decoders, rep_grad, multi_input, device, kwargs):
                super().__init__(task_name, encoder_class, decoders, rep_grad, multi_input, device, **kwargs)
                self.init_param()

            def zero_grad_share_params(self):
                # LibMTL 1.1.5 was written for PyTorch 1.x, whose zero_grad() zeroed
                # gradients; 2.x sets them to None, and its gradient methods then
                # fail writing `param.grad.data`.
                self.encoder.zero_grad(set_to_none=False)

        self.task_names = list(decoders)
        self.model = MTLmodel(task_name=self.task_names, encoder_class=encoder_class,
                              decoders=nn.ModuleDict(decoders), rep_grad=rep_grad, multi_input=False,
                              device=torch.device("cpu"), kwargs={})
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.model.train_loss_buffer = np.zeros([len(self.task_names), max_epochs])
        self.weight_args = weight_args
        self.losses = losses
        self.batches = batches
        self.epoch = 0

    def __call__(self):
        import torch

        model, k = self.model, len(self.task_names)
        # As LibMTL/trainer.py, Trainer.train, without the metric meter.
        model.epoch = self.epoch
        model.train()
        wall, cpu = time.perf_counter(), time.process_time()
        for inputs, labels in self.batches:
            predictions = model(inputs)
            train_losses = torch.zeros(k)
            for tn, task in enumerate(self.task_names):
                train_losses[tn] = self.losses[task]._update_loss(predictions[task], labels[task])
            self.optimizer.zero_grad(set_to_none=False)
            model.backward(train_losses, **self.weight_args)
            self.optimizer.step()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        for tn, task in enumerate(self.task_names):
            model.train_loss_buffer[tn, self.epoch] = self.losses[task]._average_loss()
            self.losses[task]._reinit()
        self.epoch += 1
        return len(self.batches), wall, cpu


# -------------------------------------------------------------------- speed


def speed(quick=False, models=("mlp",), methods=None, rounds=None, extra_rounds=None,
          steps_per_execution=16, log=print):
    """Steps/s of keras_mtl and LibMTL for each method on each model.

    On the MLP keras_mtl also runs with `compile(steps_per_execution=...)` (several
    train steps per call of the compiled function: Keras' remedy for per-step
    Python dispatch, which dominates such a small model's step).

    Returns rows `(model, method, LibMTL steps/s, keras_mtl steps/s, ratio, ratio
    spread, CPU-time ratio, keras_mtl steps/s with steps_per_execution, its ratio,
    rounds, note)`, None where not measured.
    """
    import torch

    rounds = rounds or 3
    extra_rounds = (2 if quick else 3) if extra_rounds is None else extra_rounds
    methods = methods or ISSUE_METHODS
    spe_label = f"keras_mtl spe={steps_per_execution}"
    rows = []
    for setting in models:
        examples, batch = {"mlp": (4096 if quick else 8192, 32), "scenes": (128 if quick else 256, 16)}[setting]
        tasks, backbone, shape, dataset = {"mlp": mlp_setting, "scenes": scenes_setting}[setting](
            examples, batch)
        batches = _torch_batches(setting, dataset)
        for label, name, options, libmtl_class, weight_args, rep_grad in METHODS:
            if label not in methods:
                continue
            runners, note = {}, ""
            torch.manual_seed(0)
            keras.utils.set_random_seed(0)
            if libmtl_class is not None:
                model = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
                encoder, decoders, losses = _torch_modules(setting, model)
                runners["LibMTL"] = LibMTLRunner(libmtl_class, weight_args, rep_grad, encoder,
                                                 decoders, losses, batches)
            else:
                note = "not in LibMTL 1.1.5"
            if name in keras_mtl.weighting.available():
                for runner, spe in (("keras_mtl", 1), (spe_label, steps_per_execution)):
                    # (Keras' torch trainer runs one step per execution.)
                    if spe > 1 and (setting != "mlp" or keras.backend.backend() == "torch"):
                        continue
                    model = keras_mtl.build("hard_sharing", tasks(), backbone=backbone, input_shape=shape)
                    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=spe,
                                  weighting=keras_mtl_weighting(name, options))
                    runners[runner] = keras_epoch_runner(model, dataset)
            else:
                note = f"'{name}' not in keras_mtl.weighting.available()"
            reference = "LibMTL" if "LibMTL" in runners else "keras_mtl"
            try:
                # LibMTL's GradNorm and DWA change behaviour after epochs 1 and 2.
                samples = summarize(interleaved_rounds(
                    runners, reference, rounds, warmup=2 if label in ("GradNorm", "DWA") else 1,
                    extra_rounds=extra_rounds if "LibMTL" in runners else 0))
            except Exception as e:  # report a method that fails, time the others
                rows.append((setting, label) + (None,) * 7 + (0, f"failed: {type(e).__name__}: "
                                                             f"{str(e).splitlines()[0][:120]}"))
                continue
            lib, ours, spe = (samples.get(k) for k in ("LibMTL", "keras_mtl", spe_label))
            paired = lambda summary, i: summary[i] if summary and lib else None
            rows.append((setting, label, lib and lib[0], ours and ours[0], paired(ours, 1),
                         paired(ours, 2), paired(ours, 3), spe and spe[0], paired(spe, 1),
                         (ours or lib)[4], note))
            if log:
                log(f"libmtl_compare: {rows[-1]}")
    return rows


def speed_report(rows, steps_per_execution=16):
    header = ["model", "method", "LibMTL steps/s", "keras_mtl steps/s", "ratio keras_mtl/LibMTL",
              "IQR/median", "CPU-time ratio", f"keras_mtl steps/s, steps_per_execution={steps_per_execution}",
              "its ratio", "rounds", "target >= 1.2 (default compile)"]
    table = []
    show = lambda v: "-" if v is None else v
    for row in rows:
        ratio, note = row[4], row[-1]
        verdict = note or ("met" if ratio >= TARGET_RATIO else "MISSED")
        table.append(tuple(show(v) for v in row[:-1]) + (verdict,))
    return markdown_table(header, table)


# ---------------------------------------------------------------- agreement


def _libmtl_weighting(cls_name, k, grads=None):
    """A LibMTL weighting object outside a model; with `grads`, its gradient
    plumbing returns that matrix and records what it would write as gradients."""
    import torch

    weighting_lib, _, _ = import_libmtl()
    method = getattr(weighting_lib, cls_name)()
    method.task_num, method.device, method.rep_grad = k, torch.device("cpu"), False
    method.init_param()
    if grads is not None:
        method.captured = {}
        method._compute_grad_dim = lambda: None
        method._compute_grad = lambda losses, mode, rep_grad=False: grads.clone()
        method._reset_grad = lambda new_grads: method.captured.setdefault("combined", new_grads.clone())
    return method


def _loss_history(epochs=5, steps=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    decay = np.exp(-rng.uniform(0.05, 0.6, size=(epochs, 1, k)) * np.arange(epochs)[:, None, None])
    return (rng.uniform(0.5, 3.0, size=(1, 1, k)) * decay
            * rng.uniform(0.8, 1.2, size=(epochs, steps, k))).astype("float32")


def agree_dwa(temperature=2.0, seed=0):
    """Max |keras_mtl - LibMTL| of the DWA weights used in each epoch of one loss history."""
    import torch

    history = _loss_history(seed=seed)
    epochs, steps, k = history.shape
    ours = keras_mtl.weighting.DWA(temperature=temperature)
    ours.build((k,))
    theirs = _libmtl_weighting("DWA", k)
    theirs.train_loss_buffer = np.zeros([k, epochs])
    differences = []
    for epoch in range(epochs):
        theirs.epoch = epoch
        for step in range(steps):
            losses = history[epoch, step]
            _, weights = ours.combine(keras.ops.convert_to_tensor(losses), training=True)
            expected = theirs.backward(torch.tensor(losses, requires_grad=True), T=temperature)
            differences.append(np.max(np.abs(np.asarray(weights) - expected)))
        ours.on_epoch_end()
        theirs.train_loss_buffer[:, epoch] = history[epoch].mean(0)
    return float(max(differences))


def agree_uncertainty(learning_rate=0.1, seed=0):
    """Max |keras_mtl - LibMTL| of the UW weights, objectives and log-variances when
    both train their log-variances by SGD on the same loss history."""
    import tensorflow as tf
    import torch

    history = _loss_history(seed=seed).reshape(-1, 3)
    k = history.shape[1]
    ours = keras_mtl.weighting.Uncertainty()
    ours.build((k,))
    optimizer = keras.optimizers.SGD(learning_rate)
    theirs = _libmtl_weighting("UW", k)
    their_optimizer = torch.optim.SGD([theirs.loss_scale], lr=learning_rate)
    differences = []
    for losses in history:
        with tf.GradientTape() as tape:
            objective, weights = ours.combine(tf.constant(losses), training=True)
        optimizer.apply(tape.gradient(objective, ours.trainable_variables), ours.trainable_variables)
        their_losses = torch.tensor(losses)
        their_objective = (their_losses / (2 * theirs.loss_scale.exp()) + theirs.loss_scale / 2).sum()
        their_optimizer.zero_grad()
        expected = theirs.backward(their_losses)
        their_optimizer.step()
        differences += [np.max(np.abs(np.asarray(weights) - expected)),
                        abs(float(objective) - float(their_objective.detach())),
                        np.max(np.abs(ours.log_variances.numpy() - theirs.loss_scale.detach().numpy()))]
    return float(max(differences))


def _gradient_matrix(k=3, p=40, seed=0):
    """Per-task gradients with conflicts: task 1 partly opposes task 0, task 2 more."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(k, p))
    g[1] = -0.3 * g[0] + g[1]
    if k > 2:
        g[2] = -0.7 * g[0] + 0.6 * g[2]
    return (g * rng.uniform(0.5, 2.0, size=(k, 1))).astype("float32")


def agree_pcgrad(seeds=(0, 1, 2, 3)):
    """Max |keras_mtl - LibMTL| of PCGrad's combined gradient, with LibMTL's random
    task orders set to the ones keras_mtl draws for the same seed."""
    import torch

    if "pcgrad" not in keras_mtl.weighting.available():
        raise KeyError("keras_mtl has no PCGrad")
    differences = []
    for seed in seeds:
        grads = _gradient_matrix(seed=seed)
        k = grads.shape[0]
        ours = keras_mtl_weighting("pcgrad", {"seed": seed})
        ours.build((k,))
        combined, _ = ours.combine_gradients(keras.ops.convert_to_tensor(grads), keras.ops.ones((k,)))
        # The orders PCGrad draws: one permutation per task from a fresh generator.
        draw = keras.random.uniform((k, k), seed=keras.random.SeedGenerator(seed))
        orders = [list(row) for row in np.argsort(np.asarray(draw), axis=-1)]
        theirs = _libmtl_weighting("PCGrad", k, torch.tensor(grads))
        module = sys.modules[type(theirs).__module__]
        pending = iter(orders)
        original = module.random
        module.random = types.SimpleNamespace(shuffle=lambda items: items.__setitem__(slice(None), next(pending)))
        try:
            theirs.backward(torch.ones(k))
        finally:
            module.random = original
        differences.append(np.max(np.abs(np.asarray(combined) - theirs.captured["combined"].numpy())))
    return float(max(differences))


def _combined_by_both(cls_name, ours, grads, weight_args=None):
    """`(keras_mtl's combined gradient, LibMTL's)` for one gradient matrix."""
    import torch

    k = grads.shape[0]
    ours.build((k,))
    losses = np.linspace(0.5, 2.0, k).astype("float32")
    combined, _ = ours.combine_gradients(keras.ops.convert_to_tensor(grads), keras.ops.convert_to_tensor(losses))
    theirs = _libmtl_weighting(cls_name, k, torch.tensor(grads))
    theirs.backward(torch.tensor(losses, requires_grad=True), **(weight_args or {}))
    return np.asarray(combined), theirs.captured["combined"].numpy()


def min_norm_point(grads):
    """The exact minimum-norm point of the convex hull of the rows of `grads`
    (float64): the best of the KKT solutions on every face of the simplex."""
    import itertools

    grads = np.asarray(grads, np.float64)
    gram, k = grads @ grads.T, len(grads)
    best, best_value = None, np.inf
    for size in range(1, k + 1):
        for face in map(list, itertools.combinations(range(k), size)):
            system = np.block([[gram[np.ix_(face, face)], np.ones((size, 1))],
                               [np.ones((1, size)), np.zeros((1, 1))]])
            try:
                solution = np.linalg.solve(system, np.r_[np.zeros(size), 1.0])[:size]
            except np.linalg.LinAlgError:
                continue
            if solution.min() < 0:
                continue
            weights = np.zeros(k)
            weights[face] = solution
            if weights @ gram @ weights < best_value:
                best, best_value = weights, weights @ gram @ weights
    return best @ grads


def _edge_gradient_matrix(seed):
    """Three task gradients whose min-norm point lies on the edge of tasks 0 and 1:
    task 2 points beyond that point (`g_2 . v > ||v||^2`)."""
    rng = np.random.default_rng(seed)
    g = _gradient_matrix(seed=seed).astype(np.float64)
    v = min_norm_point(g[:2])
    g[2] = 2.5 * v + 0.3 * rng.normal(size=v.shape)
    return g.astype("float32")


def agree_mgda(seeds=(0, 1, 2, 3)):
    """Max |keras_mtl - LibMTL| of MGDA's min-norm point `sum_k a_k g_k` (no
    normalisation; keras_mtl's combined gradient is K times it) on matrices where
    LibMTL's solver is exact: K = 2 (its closed form) and K = 3 with the point on
    an edge of the simplex. Inside the simplex LibMTL stops its Frank-Wolfe
    iterations at an L1 change of the weights below 1e-5 (`STOP_CRIT` in
    LibMTL/weighting/MGDA.py), so there it is compared with the exact point
    instead (`agree_mgda_interior`)."""
    ours = keras_mtl_weighting("mgda", {"normalization": "none"})
    if ours is None:
        raise KeyError("keras_mtl has no MGDA")
    differences = []
    for seed in seeds:
        for grads in (_gradient_matrix(k=2, seed=seed), _edge_gradient_matrix(seed)):
            ours = keras_mtl_weighting("mgda", {"normalization": "none"})
            combined, expected = _combined_by_both("MGDA", ours, grads, {"mgda_gn": "none"})
            differences.append(np.max(np.abs(combined / len(grads) - expected)))
    return float(max(differences))


def agree_mgda_interior(seeds=(0, 1, 2, 3)):
    """`(keras_mtl's error, LibMTL's error)`: max |min-norm point - exact| with the
    point inside the simplex (all three tasks weighted)."""
    ours_errors, their_errors = [], []
    for seed in seeds:
        grads = _gradient_matrix(seed=seed)
        ours = keras_mtl_weighting("mgda", {"normalization": "none"})
        if ours is None:
            raise KeyError("keras_mtl has no MGDA")
        combined, theirs = _combined_by_both("MGDA", ours, grads, {"mgda_gn": "none"})
        exact = min_norm_point(grads)
        ours_errors.append(np.max(np.abs(combined / len(grads) - exact)))
        their_errors.append(np.max(np.abs(theirs - exact)))
    return float(max(ours_errors)), float(max(their_errors))


def agree_imtl(seeds=(0, 1, 2, 3)):
    """Max |keras_mtl - LibMTL| of IMTL-G's combined gradient `sum_k a_k g_k`
    (keras_mtl's is K times it; LibMTL's IMTL-L loss scales are 0 at
    initialisation, so they leave the losses unchanged)."""
    differences = []
    for seed in seeds:
        ours = keras_mtl_weighting("imtl")
        if ours is None:
            raise KeyError("keras_mtl has no IMTL")
        grads = _gradient_matrix(seed=seed)
        combined, expected = _combined_by_both("IMTL", ours, grads)
        differences.append(np.max(np.abs(combined / len(grads) - expected)))
    return float(max(differences))


AGREEMENT = {
    "DWA weights (5 epochs of losses)": agree_dwa,
    "UW weights, objective, log-variances (20 SGD steps)": agree_uncertainty,
    "PCGrad combined gradient (K=3, same task orders)": agree_pcgrad,
    "MGDA min-norm point (K=2; K=3 on an edge)": agree_mgda,
    "IMTL-G combined gradient (K=3)": agree_imtl,
}


def agreement():
    """Rows `(check, what is compared, max abs difference or None, note)`."""
    rows = []
    for check, function in AGREEMENT.items():
        try:
            rows.append((check, "keras_mtl vs LibMTL", function(), ""))
        except KeyError as e:
            rows.append((check, "keras_mtl vs LibMTL", None, f"not run: {e}"))
    try:
        ours, theirs = agree_mgda_interior()
        check = "MGDA min-norm point (K=3, inside the simplex)"
        rows += [(check, "keras_mtl vs exact", ours, ""), (check, "LibMTL vs exact", theirs, "")]
    except KeyError as e:
        rows.append(("MGDA min-norm point (K=3, inside the simplex)", "-", None, f"not run: {e}"))
    return rows


def agreement_report(rows):
    return markdown_table(
        ["check (same inputs)", "compared", "max abs difference", "<= 1e-5"],
        [(check, compared, "-" if d is None else f"{d:.2e}",
          note or ("yes" if d <= AGREEMENT_TOLERANCE else "no")) for check, compared, d, note in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MLP only, the issue's methods, fewer rounds")
    parser.add_argument("--models", help="comma-separated: mlp, scenes (default: mlp quick, both full)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each framework")
    args = parser.parse_args(argv)
    reason = libmtl_unavailable_reason()
    if reason:
        print(f"\nLibMTL comparison not run: {reason}")
        return None
    set_threads(args.threads)
    failed = load_weighting_methods()
    if failed:
        print(f"keras_mtl weighting modules that failed to import: {failed}")
    models = tuple(args.models.split(",")) if args.models else (("mlp",) if args.quick else ("mlp", "scenes"))
    if keras.backend.backend() == "tensorflow":  # (the agreement checks run on TensorFlow)
        print("\n## keras_mtl vs LibMTL: agreement\n")
        print(agreement_report(agreement()))
    rows = []
    for setting in models:
        # Every method both libraries have on the MLP; the issue's on the slower SegNet.
        every = setting == "mlp" and not args.quick
        rows += speed(quick=args.quick, models=(setting,),
                      methods=tuple(m[0] for m in METHODS) if every else ISSUE_METHODS)
    print(f"\n## keras_mtl ({keras.backend.backend()} backend) vs LibMTL: speed "
          f"({args.threads} CPU thread(s) each)\n")
    print(speed_report(rows))
    print("\nratio: median over rounds of keras_mtl steps/s / LibMTL steps/s in the same round; "
          "CPU-time ratio: the same with process CPU time.")
    return rows


if __name__ == "__main__":
    main()
