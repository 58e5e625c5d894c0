"""Census-Income (KDD): income above 50K and never-married, the MMoE tasks.

UCI "Census-Income (KDD)" (Lane and Kohavi), as used by Ma et al., "Modeling Task
Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018
(task group 1). Folder layout (the UCI download, and ../shared/data/census_income):

    census-income.data[.gz]   the official training split (optional)
    census-income.test[.gz]   the official test split

Headerless lines of 42 comma-separated fields (`COLUMNS`). With both files the
split is the official one; with only the test file (as in ../shared/data), that
file is split at random, seeded (`test_fraction` of it for test).
"""

import functools
import gzip
import os

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.datasets import _validate

tf = LazyTensorFlow("The census-income tf.data pipeline (keras_mtl.datasets.census_income.load)")

TASKS = ("income", "marital")
SPLITS = ("train", "test")
COLUMNS = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin",
    "sex", "union_member", "unemp_reason", "full_or_part_emp", "capital_gains",
    "capital_losses", "stock_dividends", "tax_filer_stat", "region_prev_res",
    "state_prev_res", "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa",
    "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp",
    "fam_under_18", "country_father", "country_mother", "country_self", "citizenship",
    "own_or_self", "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
)
CONTINUOUS = ("age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends",
              "num_emp", "weeks_worked")
# Heavy-tailed amounts (mostly 0, up to 99,999): log1p before standardising keeps
# a few large values from dominating the input scale.
_LOG_SCALED = ("wage_per_hour", "capital_gains", "capital_losses", "stock_dividends")
# Labels are not features; UCI says instance_weight is a survey weight, not a feature.
_NOT_FEATURES = ("marital_stat", "income_50k", "instance_weight")
NOMINAL = tuple(c for c in COLUMNS if c not in CONTINUOUS + _NOT_FEATURES)
# Every value the label columns take in the UCI files.
_LABEL_VALUES = {
    "income_50k": ("- 50000.", "50000+."),
    "marital_stat": ("Never married", "Married-civilian spouse present", "Married-spouse absent",
                     "Married-A F spouse present", "Separated", "Divorced", "Widowed"),
}


def _data_file(path, stem):
    for name in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    return None


def has_official_split(path):
    """Whether `path` holds the official training file, `census-income.data[.gz]`."""
    return _data_file(path, "census-income.data") is not None


def read_table(file):
    """Reads a census-income file (plain or gzip) as a `(N, 42)` numpy string array
    of stripped fields (cached by path, size and modification time, so that a file
    rewritten on disk is read again: do not modify the result).

    Checks every line's field count, that the continuous columns hold numbers >= 0
    and the label columns known values; a `ValueError` names the file and line.
    """
    status = os.stat(file)
    return _read_table(file, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _read_table(file, size, mtime_ns):
    opener = gzip.open if file.endswith(".gz") else open
    rows, lines = [], []
    with opener(file, "rt") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                row = [field.strip() for field in line.split(",")]
                _validate.field_count(row, len(COLUMNS), file, number, "comma-separated fields in the order of census_income.COLUMNS")
                rows.append(row)
                lines.append(number)
    _validate.not_empty(len(rows), file, "lines of 42 comma-separated fields")
    rows = np.array(rows)
    for name in CONTINUOUS:
        _validate.number_column(rows[:, COLUMNS.index(name)], file, lines, name, minimum=0)
    for name, values in _LABEL_VALUES.items():
        column = rows[:, COLUMNS.index(name)]
        _validate.column(column, np.isin(column, values), file, lines, name, f"one of {values}")
    return rows


def read_split(path, split, seed=0, test_fraction=0.2):
    """The rows of one split (see the module docstring for which split is used).

    Args:
        path: the census-income folder.
        split: "train" or "test".
        seed, test_fraction: the random split of the test file, when the official
            training file is absent.

    Returns:
        A `(N, 42)` numpy string array.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    test_file = _data_file(path, "census-income.test")
    if test_file is None:
        raise FileNotFoundError(f"No census-income.test[.gz] in path={path!r}.")
    train_file = _data_file(path, "census-income.data")
    if train_file is not None:
        return read_table(train_file if split == "train" else test_file)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}")
    rows = read_table(test_file)
    order = np.random.default_rng(seed).permutation(len(rows))
    test_count = int(round(len(rows) * test_fraction))
    return rows[np.sort(order[:test_count] if split == "test" else order[test_count:])]


def labels(rows):
    """The two MMoE task labels: income above 50K, and never married (float32 0/1)."""
    return {
        "income": (rows[:, COLUMNS.index("income_50k")] == "50000+.").astype("float32"),
        "marital": (rows[:, COLUMNS.index("marital_stat")] == "Never married").astype("float32"),
    }


def fit_encoding(rows):
    """The feature encoding learnt from training rows: each nominal column's
    vocabulary (sorted; index 0 is kept for values unseen in training) and the mean
    and standard deviation of each continuous column."""
    continuous = _continuous(rows)
    return {
        "vocabularies": [sorted(set(rows[:, COLUMNS.index(c)])) for c in NOMINAL],
        "mean": continuous.mean(axis=0),
        "std": np.maximum(continuous.std(axis=0), 1e-6),
    }


def _continuous(rows):
    values = rows[:, [COLUMNS.index(c) for c in CONTINUOUS]].astype("float32")
    for c in _LOG_SCALED:
        values[:, CONTINUOUS.index(c)] = np.log1p(values[:, CONTINUOUS.index(c)])
    return values


def encode(rows, encoding):
    """Encodes rows as `(codes, continuous)`: int32 `(N, len(NOMINAL))` indices into
    one concatenated one-hot space (each column's vocabulary plus one unseen slot),
    and float32 `(N, len(CONTINUOUS))` standardised values."""
    codes = np.empty((len(rows), len(NOMINAL)), dtype="int32")
    offset = 0
    for j, (column, vocabulary) in enumerate(zip(NOMINAL, encoding["vocabularies"])):
        values = rows[:, COLUMNS.index(column)]
        vocabulary = np.array(vocabulary)
        position = np.minimum(np.searchsorted(vocabulary, values), len(vocabulary) - 1)
        seen = vocabulary[position] == values
        codes[:, j] = offset + np.where(seen, position + 1, 0)
        offset += len(vocabulary) + 1
    continuous = (_continuous(rows) - encoding["mean"]) / encoding["std"]
    return codes, continuous.astype("float32")


def feature_size(encoding):
    """The length of the encoded feature vector."""
    return len(CONTINUOUS) + sum(len(v) + 1 for v in encoding["vocabularies"])


def load(path, split="train", tasks=None, batch_size=256, training=None, seed=0,
         test_fraction=0.2, max_examples=None):
    """A census-income `tf.data` pipeline of `(features, {task: label})` batches.

    Features are the standardised continuous columns followed by the one-hot nominal
    columns (`encode`), with the encoding learnt on the training split; the one-hot
    part is expanded per batch from integer codes held in memory.

    Args:
        path: the census-income folder (see the module docstring).
        split: "train" or "test".
        tasks: task names to return labels for (default both of `TASKS`).
        batch_size: examples per batch.
        training: shuffle; defaults to `split == "train"`.
        seed: seed of the random split (test file only), the subset and the shuffle.
        test_fraction: share of the test file used for test when it is split.
        max_examples: keep a random subset of this many examples.

    Returns:
        A `tf.data.Dataset` of `(x, labels)`: x float32 `(batch, D)`; labels float32
        `(batch, 1)` per task.
    """
    tasks = tuple(TASKS if tasks is None else tasks)
    if not tasks or any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks!r}")
    training = split == "train" if training is None else training
    encoding = fit_encoding(read_split(path, "train", seed, test_fraction))
    rows = read_split(path, split, seed, test_fraction)
    if max_examples is not None:
        rows = rows[np.sort(np.random.default_rng(seed).permutation(len(rows))[:max_examples])]
    codes, continuous = encode(rows, encoding)
    targets = {t: v[:, None] for t, v in labels(rows).items() if t in tasks}
    depth = feature_size(encoding) - len(CONTINUOUS)

    def expand(codes, continuous, targets):
        one_hot = tf.reduce_sum(tf.one_hot(codes, depth), axis=1)
        return tf.concat([continuous, one_hot], axis=-1), targets

    ds = tf.data.Dataset.from_tensor_slices((codes, continuous, targets))
    if training:
        ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(expand, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)
