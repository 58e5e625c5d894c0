"""`TaskwiseEarlyStopping`: auxiliary tasks leave training when they stop helping (TCDCN)."""

import json
import math
import os
import warnings

import keras
import numpy as np

from keras_mtl.weighting._checks import check_float

_STATE_FILE = "taskwise_early_stopping.json"


def tcdcn_criterion(train_losses, val_loss, k, importance):
    """Zhang et al.'s stopping measure for one task after epoch t (ECCV 2014, eq. 5):

    `k med(E_tr) / (sum(E_tr) - k med(E_tr))  *  (E_val(t) - min E_tr) / (importance min E_tr)`

    with `med` and `sum` over the strip of the last k training losses and `min` over
    all of them. The first factor is small while the training loss still falls fast
    (the strip's early values lie well above its median), negative when the strip's
    mean is below its median (a fall that speeds up, which never stops a task), and
    taken as +inf when the two are equal. The second compares the validation loss
    with the best training loss. A product of +inf and 0 counts as 0. A validation
    loss that is NaN or infinite gives +inf (no improvement can be seen: the task
    stops). Both factors are scale-free: multiplying every loss by c > 0 leaves the
    measure unchanged.

    Args:
        train_losses: the task's training losses of epochs 1..t (at least k).
        val_loss: its validation loss of epoch t.
        k: the strip's length.
        importance: the task's importance coefficient lambda (> 0).
    """
    train = np.asarray(train_losses, np.float64)
    best = train.min()
    if not best > 0:
        raise ValueError(f"The criterion needs positive training losses. Received: {train.tolist()}")
    if not np.isfinite(val_loss):
        return math.inf
    strip = train[-k:]
    median = np.median(strip)
    spread = strip.sum() - k * median
    trend = k * median / spread if spread != 0 else math.inf
    generalisation = (val_loss - best) / (importance * best)
    with np.errstate(invalid="ignore"):
        value = trend * generalisation
    return 0.0 if np.isnan(value) else float(value)


class TaskwiseEarlyStopping(keras.callbacks.Callback):
    """Stops auxiliary tasks one by one (Zhang, Luo, Loy and Tang, "Facial Landmark
    Detection by Deep Multi-task Learning", ECCV 2014, section 3.2).

    After each epoch t >= k, every monitored task that is still active gets
    `tcdcn_criterion(its training losses, its validation loss, k, importance)` from
    the logs (`<task>_loss`, `val_<task>_loss`: epoch means, where the paper uses
    iterations). Above `threshold` the task stops for the rest of training: its
    entry of `model.task_activity()` becomes 0, so every weighting method gives it
    weight 0 and its task variables stay as they are; its losses are still logged.
    Logs `<task>_stopping_criterion` (NaN before epoch k and once stopped) and
    `<task>_active` (0 from the epoch at whose end the task stopped); the attribute
    `stopped_epoch` maps each monitored task to that (0-based) epoch or None. A
    non-finite validation loss stops the task, with a warning naming it. A monitored
    task needs a positive training loss every epoch (0: no labelled entry): else an
    error names it. When no task of the model is left active, training stops
    (`model.stop_training`): nothing would be left to learn.

    With `backup_dir`, the losses seen and the stops are written there after each
    epoch and read back when training restarts (at the epoch `BackupAndRestore`
    resumes from; put this callback before it in the list), and the file is deleted
    when training ends; a file that cannot be read is an error naming it. Without it
    the state lives in this object: a later `fit` that starts at epoch e keeps the
    epochs before e.

    Args:
        tasks: the auxiliary tasks to monitor (names); the others never stop.
        threshold: the paper's epsilon; a task stops when its criterion exceeds it.
        k: length of the strip of training losses (>= 3).
        importance: the paper's lambda per task (dict); defaults to each task's
            `Task.loss_weight`.
        backup_dir: a folder of its own for the state, or None.
    """

    def __init__(self, tasks, threshold, k=5, importance=None, backup_dir=None):
        super().__init__()
        self.tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        if not self.tasks:
            raise ValueError("tasks must name at least one task. Received: tasks=[]")
        self.threshold = check_float("threshold", threshold)
        if isinstance(k, bool) or not isinstance(k, int) or k < 3:
            # For k = 2 the sum of the strip is always twice its median.
            raise ValueError(f"k must be an integer >= 3. Received: k={k!r}")
        self.k = k
        self.importance = dict(importance or {})
        for name, value in self.importance.items():
            check_float(f"importance[{name!r}]", value, above=0)
        self.backup_dir = backup_dir
        self._records = {}  # epoch -> {task: (train loss, val loss)}
        self.stopped_epoch = {t: None for t in self.tasks}
        self._first_epoch = None

    def on_train_begin(self, logs=None):
        names = self.model.task_names
        unknown = [t for t in self.tasks if t not in names]
        if unknown:
            raise ValueError(f"TaskwiseEarlyStopping: unknown task(s) {unknown}. Tasks: {names}")
        unknown = [t for t in self.importance if t not in self.tasks]
        if unknown:
            raise ValueError(f"importance names task(s) {unknown} that are not monitored: {self.tasks}")
        specs = {s["name"]: s for s in self.model.task_specs}
        self._lambda = {t: float(self.importance.get(t, specs[t]["loss_weight"])) for t in self.tasks}
        self._activity = self.model.task_activity()
        if self.model.train_function is None:
            self.model.make_train_function()
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is not None:
            return
        self._first_epoch = epoch
        if self.backup_dir and os.path.exists(self._path()):
            self._load()
        self._records = {e: r for e, r in self._records.items() if e < epoch}
        self.stopped_epoch = {t: e if e is not None and e < epoch else None
                              for t, e in self.stopped_epoch.items()}
        missing = sorted(set(range(epoch)) - set(self._records))
        if missing:
            warnings.warn(f"TaskwiseEarlyStopping has no losses of epoch(s) {missing}: its criterion "
                          "starts from the epochs it saw (pass backup_dir= to keep them across runs).",
                          stacklevel=2)
        self._set_activity()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        missing = [key for t in self.tasks for key in (f"{t}_loss", f"val_{t}_loss") if key not in logs]
        if missing:
            raise ValueError(f"TaskwiseEarlyStopping needs the logs {missing}: fit with validation_data.")
        self._records[epoch] = {t: (float(logs[f"{t}_loss"]), float(logs[f"val_{t}_loss"]))
                                for t in self.tasks}
        epochs = sorted(e for e in self._records if e <= epoch)
        for task, (train, val) in self._records[epoch].items():
            if not math.isfinite(train):
                raise ValueError(
                    f"TaskwiseEarlyStopping: task {task!r} has the training loss {train} in "
                    f"epoch {epoch}; its criterion needs finite training losses.")
            if not train > 0:
                raise ValueError(
                    f"TaskwiseEarlyStopping: task {task!r} has the training loss {train} in "
                    f"epoch {epoch}; its criterion needs positive training losses (a loss of "
                    "0 means no labelled entry of the task in the epoch): monitor only "
                    "tasks with training labels in every epoch.")
            if not math.isfinite(val) and self.stopped_epoch[task] is None and len(epochs) >= self.k:
                warnings.warn(f"TaskwiseEarlyStopping: task {task!r} has the validation loss "
                              f"{val} at epoch {epoch}: counted as no improvement, its "
                              "criterion is +inf.", stacklevel=2)
        for task in self.tasks:
            value = math.nan
            if self.stopped_epoch[task] is None and len(epochs) >= self.k:
                train = [self._records[e][task][0] for e in epochs]
                value = tcdcn_criterion(train, self._records[epoch][task][1], self.k, self._lambda[task])
                if value > self.threshold:
                    self.stopped_epoch[task] = epoch
            logs[f"{task}_stopping_criterion"] = value
            logs[f"{task}_active"] = float(self.stopped_epoch[task] is None)
        self._set_activity()
        if self.backup_dir:
            self._save()
        if not np.any(self._activity.numpy()):
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.backup_dir and os.path.exists(self._path()):
            os.remove(self._path())

    def _set_activity(self):
        names = self.model.task_names
        active = np.ones(len(names), np.float32)
        for task, stopped in self.stopped_epoch.items():
            if stopped is not None:
                active[names.index(task)] = 0.0
        self._activity.assign(active)

    def _path(self):
        return os.path.join(self.backup_dir, _STATE_FILE)

    def _load(self):
        path = self._path()
        try:
            with open(path) as f:
                state = json.load(f)
            records = {int(e): {t: tuple(map(float, r[t])) for t in self.tasks}
                       for e, r in state["records"].items()}
            stopped = {t: state["stopped_epoch"].get(t) for t in self.tasks}
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(
                f"TaskwiseEarlyStopping cannot read its state file {path} ({error!r}): it "
                "is damaged or from other tasks; delete it to start the criterion afresh "
                "from the epochs this run sees.") from error
        self._records, self.stopped_epoch = records, stopped

    def _save(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        state = {"records": {str(e): r for e, r in self._records.items()}, "stopped_epoch": self.stopped_epoch}
        with open(self._path() + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(self._path() + ".tmp", self._path())
