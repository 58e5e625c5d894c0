"""Tox21: 12 toxicity assays per molecule, with missing labels.

The Tox21 Data Challenge 2014 (Mayr et al., "DeepTox", Frontiers in Environmental
Science 2016), in the MoleculeNet CSV (Wu et al., Chemical Science 2018). Folder
layout (DeepChem's tox21.csv.gz, decompressed, and ../shared/data/tox21):

    tox21.csv   12 task columns (1, 0 or empty = not measured), mol_id, smiles
                (or DeepChem's gzipped tox21.csv.gz)

Molecules are featurised as Morgan (ECFP) bit fingerprints with RDKit (an
optional dependency). The file defines no split: `split_indices` makes
MoleculeNet's scaffold split (Bemis-Murcko scaffolds, largest groups first into
train) or a seeded random one, 80/10/10.
"""

import csv
import functools
import gzip
import os

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.datasets import _validate

tf = LazyTensorFlow("The Tox21 tf.data pipeline (keras_mtl.datasets.tox21.load)")

TASKS = ("NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD",
         "NR-PPAR-gamma", "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53")
SPLITS = ("train", "valid", "test")
SPLIT_METHODS = ("scaffold", "random")
FRACTIONS = (0.8, 0.1, 0.1)
_COLUMNS = TASKS + ("mol_id", "smiles")


def read_csv(path):
    """Reads `tox21.csv` (or `tox21.csv.gz`).

    Args:
        path: the Tox21 folder.

    Returns:
        A dict: "smiles" and "mol_id" (numpy string arrays) and "labels", a float32
        `(N, 12)` array in `TASKS` order with NaN where the assay was not measured.

    Raises:
        ValueError: naming the file and line of a missing column, a line with the
            wrong number of fields, a label other than 0, 1 or empty, or an empty
            SMILES.
    """
    csv_file = os.path.join(path, "tox21.csv")
    if not os.path.isfile(csv_file) and os.path.isfile(csv_file + ".gz"):
        csv_file += ".gz"
    if not os.path.isfile(csv_file):
        raise FileNotFoundError(f"No Tox21 file {csv_file} or {csv_file}.gz (path={path!r}).")
    opener = gzip.open if csv_file.endswith(".gz") else open
    smiles, mol_ids, labels = [], [], []
    with opener(csv_file, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        missing = [t for t in _COLUMNS if t not in header]
        if missing:
            raise _validate.error(csv_file, 1, f"the header lacks the column(s) {missing}",
                                  f"a header naming {list(_COLUMNS)}")
        columns = [header.index(t) for t in _COLUMNS]
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            _validate.field_count(row, len(header), csv_file, line, "one per header column")
            labels.append([_label(row[i], csv_file, line, t) for i, t in zip(columns, TASKS)])
            mol_ids.append(row[columns[-2]])
            smiles.append(row[columns[-1]])
            if not smiles[-1]:
                raise _validate.error(csv_file, line, "the smiles field is empty", "a SMILES string")
    _validate.not_empty(len(smiles), csv_file, "a header line and one line per molecule")
    return {"smiles": np.array(smiles), "mol_id": np.array(mol_ids),
            "labels": np.array(labels, dtype="float32")}


def _label(text, file, line, task):
    if text == "":
        return np.nan
    expected = "0, 1 or empty (not measured)"
    value = _validate.number(text, file, line, task, expected)
    if value not in (0.0, 1.0):
        raise _validate.error(file, line, f"{task} is {text!r}", expected)
    return value


def _molecule(smiles):
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        # Tox21 has aluminium compounds ("[AlH3]" with 4 bonds) that fail RDKit's
        # valence check; their graph is still well defined for fingerprints.
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            raise ValueError(f"RDKit cannot parse the SMILES {smiles!r}.")
        mol.UpdatePropertyCache(strict=False)
        Chem.GetSymmSSSR(mol)
    return mol


@functools.lru_cache(maxsize=4)
def _molecules(smiles):
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    return tuple(_molecule(s) for s in smiles)


def morgan_fingerprints(smiles, radius=2, bits=1024):
    """Morgan bit fingerprints (ECFP, Rogers and Hahn 2010) of SMILES strings.

    Args:
        smiles: a sequence of SMILES strings.
        radius: the fingerprint radius (2 is ECFP4).
        bits: the fingerprint length.

    Returns:
        A uint8 `(N, bits)` array of 0/1.
    """
    try:
        from rdkit.Chem import rdFingerprintGenerator
    except ImportError as error:
        raise ImportError("Tox21 featurisation needs RDKit: pip install rdkit") from error
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    molecules = _molecules(tuple(smiles))
    return np.stack([generator.GetFingerprintAsNumPy(m) for m in molecules]).astype("uint8")


def scaffolds(smiles):
    """Bemis-Murcko scaffold SMILES of each molecule ("" for acyclic ones)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return [MurckoScaffold.MurckoScaffoldSmiles(mol=m, includeChirality=False)
            for m in _molecules(tuple(smiles))]


def split_indices(smiles, split, method="scaffold", seed=0):
    """Row indices of one split (80/10/10 train/valid/test).

    Args:
        smiles: all molecules' SMILES, in file order.
        split: "train", "valid" or "test".
        method: "scaffold": molecules grouped by Bemis-Murcko scaffold, groups sorted
            by size (largest first, ties by first row) and assigned whole to train
            while it stays within 80%, else to valid while train and valid stay
            within 90%, else to test (DeepChem's ScaffoldSplitter; deterministic,
            `seed` unused). "random": a seeded random permutation.
        seed: seed of the random split.

    Returns:
        Sorted int64 row indices.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    if method not in SPLIT_METHODS:
        raise ValueError(f"method must be one of {SPLIT_METHODS}. Received: method={method!r}")
    count = len(smiles)
    train_end, valid_end = FRACTIONS[0] * count, (FRACTIONS[0] + FRACTIONS[1]) * count
    assignment = np.empty(count, dtype="int64")
    if method == "random":
        order = np.random.default_rng(seed).permutation(count)
        assignment[order] = np.searchsorted([train_end, valid_end], np.arange(count), side="right")
    else:
        groups = {}
        for i, scaffold in enumerate(scaffolds(smiles)):
            groups.setdefault(scaffold, []).append(i)
        sizes = [0, 0, 0]
        for members in sorted(groups.values(), key=lambda g: (-len(g), g[0])):
            if sizes[0] + len(members) <= train_end:
                part = 0
            elif sizes[0] + sizes[1] + len(members) <= valid_end:
                part = 1
            else:
                part = 2
            assignment[members] = part
            sizes[part] += len(members)
    return np.flatnonzero(assignment == SPLITS.index(split))


def load(path, split="train", tasks=None, batch_size=128, method="scaffold", radius=2,
         bits=1024, training=None, seed=0):
    """A Tox21 `tf.data` pipeline of `(fingerprint, {task: label}, {task: mask})`.

    A missing label is given as 0 with mask 0, so that a masked loss (a per-task
    sample weight) leaves it out; it is never a negative. The fingerprints are
    computed once and held in memory as uint8 (the parsed molecules are cached
    across calls), and cast to float32 per batch.

    Args:
        path: the Tox21 folder (see the module docstring).
        split: "train", "valid" or "test" (see `split_indices`).
        tasks: task names to return (default all of `TASKS`).
        batch_size: examples per batch.
        method: "scaffold" or "random" split.
        radius, bits: the Morgan fingerprint's radius and length.
        training: shuffle; defaults to `split == "train"`.
        seed: seed of the random split and of the shuffle.

    Returns:
        A `tf.data.Dataset` of `(x, labels, masks)`: x float32 `(batch, bits)`;
        labels float32 `(batch, 1)` and masks float32 `(batch,)` per task.
        Examples are in file order unless shuffled.
    """
    tasks = tuple(TASKS if tasks is None else tasks)
    if not tasks or any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks!r}")
    training = split == "train" if training is None else training
    data = read_csv(path)
    rows = split_indices(data["smiles"], split, method, seed)
    features = morgan_fingerprints(data["smiles"], radius, bits)[rows]
    columns = [TASKS.index(t) for t in tasks]
    values = data["labels"][rows][:, columns]
    labels = {t: np.nan_to_num(values[:, [i]], nan=0.0) for i, t in enumerate(tasks)}
    masks = {t: (~np.isnan(values[:, i])).astype("float32") for i, t in enumerate(tasks)}
    ds = tf.data.Dataset.from_tensor_slices((features, labels, masks))
    if training:
        ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(
        lambda x, y, w: (tf.cast(x, tf.float32), y, w)).prefetch(tf.data.AUTOTUNE)
