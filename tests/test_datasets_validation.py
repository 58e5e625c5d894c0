"""The dataset loaders reject malformed files and out-of-range values with errors
that name the file and line (small fixture files in the real formats)."""

import gzip
import re

import numpy as np
import pytest

from keras_mtl.datasets import census_income, mtfl, oxford_pets, tox21, utkface


def _raises_at(file, line, message):
    """`pytest.raises` for a ValueError starting `file:line: ` and matching `message`."""
    where = str(file) if line is None else f"{file}:{line}"
    return pytest.raises(ValueError, match=re.escape(f"{where}: ") + message)


# --------------------------------------------------------------------- census-income

def _census_row(**values):
    row = {c: "x" for c in census_income.COLUMNS}
    row.update({c: "0" for c in census_income.CONTINUOUS})
    row.update(income_50k="- 50000.", marital_stat="Never married", instance_weight="1.5")
    row.update(values)
    return ", ".join(row[c] for c in census_income.COLUMNS)


def _census(tmp_path, name, *lines, gz=False):
    folder = tmp_path / name
    folder.mkdir()
    file = folder / ("census-income.test" + (".gz" if gz else ""))
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(file, "wt") as f:
            f.write(text)
    else:
        file.write_text(text)
    return str(folder), file


def test_census_reads_valid_rows_and_their_labels(tmp_path):
    folder, _ = _census(tmp_path, "ok", _census_row(), "", _census_row(income_50k="50000+.", marital_stat="Divorced"),
                        gz=True)
    rows = census_income.read_split(folder, "test", test_fraction=0.5)
    rows = np.concatenate([rows, census_income.read_split(folder, "train", test_fraction=0.5)])
    labels = census_income.labels(rows)
    assert sorted(zip(labels["income"], labels["marital"])) == [(0.0, 1.0), (1.0, 0.0)]


@pytest.mark.parametrize("values, message", [
    (dict(income_50k="50000+"), r"income_50k is '50000\+'; expected one of \('- 50000\.', '50000\+\.'\)"),
    (dict(marital_stat="Never-married"), "marital_stat is 'Never-married'; expected one of"),
    (dict(age="abc"), "age is 'abc'; expected a finite number >= 0"),
    (dict(capital_gains="-5"), "capital_gains is '-5'; expected a finite number >= 0"),
    (dict(weeks_worked="inf"), "weeks_worked is 'inf'; expected a finite number >= 0"),
])
def test_census_rejects_bad_values(tmp_path, values, message):
    folder, file = _census(tmp_path, "bad", _census_row(), "", _census_row(**values))
    with _raises_at(file, 3, message):
        census_income.read_split(folder, "test")


def test_census_rejects_a_wrong_field_count_and_an_empty_file(tmp_path):
    folder, file = _census(tmp_path, "short", _census_row(), _census_row().rsplit(",", 1)[0])
    with _raises_at(file, 2, "41 fields; expected 42: comma-separated"):
        census_income.read_split(folder, "test")
    folder, file = _census(tmp_path, "empty", "")
    with _raises_at(file, None, "no examples"):
        census_income.read_split(folder, "test")


# ----------------------------------------------------------------------------- MTFL

_MTFL_POINTS = "64.3 88.6 75.7 63.7 84.4 65.2 67.9 86.2 95.2 97.6"


def _mtfl(tmp_path, *lines):
    (tmp_path / "training.txt").write_text("".join(line + "\n" for line in lines))
    return str(tmp_path), tmp_path / "training.txt"


def test_mtfl_reads_valid_lines(tmp_path):
    path, _ = _mtfl(tmp_path, f"lfw_5590\\a.jpg {_MTFL_POINTS} 2 1 2 5", "", f"net_7876/b.jpg {_MTFL_POINTS} 1 2 1 1")
    labels = mtfl.read_labels(path, "train")
    assert list(labels["path"]) == [str(tmp_path / "lfw_5590" / "a.jpg"), str(tmp_path / "net_7876" / "b.jpg")]
    assert labels["gender"].tolist() == [1, 0] and labels["pose"].tolist() == [4, 0]
    np.testing.assert_allclose(labels["landmarks"][1], np.array(_MTFL_POINTS.split(), "float32"))


@pytest.mark.parametrize("line, message", [
    (f"a.jpg {_MTFL_POINTS} 3 1 2 3", "gender is '3'; expected an integer from 1 to 2"),
    (f"a.jpg {_MTFL_POINTS} 1 1 2 0", "pose is '0'; expected an integer from 1 to 5"),
    (f"a.jpg {_MTFL_POINTS} 1 1 x 3", "glasses is 'x'; expected an integer from 1 to 2"),
    (f"a.jpg {' '.join(['50'] * 10)} 1 1 2 3", "all 5 landmarks are the same point"),
    (f"a.jpg nan {_MTFL_POINTS[5:]} 1 1 2 3", "a landmark coordinate is 'nan'; expected a finite number"),
    (f"a.jpg {_MTFL_POINTS} 1 1 2", "14 fields; expected 15: `path x1..x5 y1..y5"),
    (f"..\\x.jpg {_MTFL_POINTS} 1 1 2 3", r"the path '\.\.\\\\x\.jpg' leads outside"),
    (f"../x.jpg {_MTFL_POINTS} 1 1 2 3", r"the path '\.\./x\.jpg' leads outside"),
    (f"lfw_5590/../../x.jpg {_MTFL_POINTS} 1 1 2 3", "the path '.*' leads outside"),
    (f"/etc/x.jpg {_MTFL_POINTS} 1 1 2 3", "the path '/etc/x.jpg' leads outside"),
])
def test_mtfl_rejects_bad_lines(tmp_path, line, message):
    path, file = _mtfl(tmp_path, f"a.jpg {_MTFL_POINTS} 1 1 2 3", "", line)
    with _raises_at(file, 3, message):
        mtfl.read_labels(path, "train")


def test_mtfl_rejects_an_empty_label_file(tmp_path):
    path, file = _mtfl(tmp_path, "")
    with _raises_at(file, None, "no examples"):
        mtfl.load(path, "train")


# ---------------------------------------------------------------------------- Tox21

_TOX21_HEADER = ",".join(tox21.TASKS + ("mol_id", "smiles"))


def _tox21(tmp_path, *lines):
    (tmp_path / "tox21.csv").write_text("".join(line + "\n" for line in lines))
    return str(tmp_path), tmp_path / "tox21.csv"


def test_tox21_reads_labels_with_missing_values(tmp_path):
    path, _ = _tox21(tmp_path, _TOX21_HEADER, "0,1,,0,0,0,0,0,0,0,1.0,0,TOX1,CCO")
    data = tox21.read_csv(path)
    expected = [0, 1, np.nan, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    np.testing.assert_array_equal(data["labels"], np.array([expected], "float32"))
    assert data["smiles"].tolist() == ["CCO"] and data["mol_id"].tolist() == ["TOX1"]


@pytest.mark.parametrize("value", ["2", "-1", "0.5", "inf", "nan", "yes"])
def test_tox21_rejects_labels_other_than_0_1_or_empty(tmp_path, value):
    path, file = _tox21(tmp_path, _TOX21_HEADER, "0,0,0,0,0,0,0,0,0,0,0,0,TOX1,CCO",
                        f"0,0,0,0,0,0,0,0,0,{value},0,0,TOX2,CCO")
    with _raises_at(file, 3, f"SR-HSE is '{value}'; expected 0, 1 or empty"):
        tox21.read_csv(path)


def test_tox21_rejects_malformed_files(tmp_path):
    path, file = _tox21(tmp_path)
    with _raises_at(file, 1, "the header lacks the column"):
        tox21.read_csv(path)
    path, file = _tox21(tmp_path, _TOX21_HEADER.replace("SR-p53,", ""))
    with _raises_at(file, 1, r"the header lacks the column\(s\) \['SR-p53'\]"):
        tox21.read_csv(path)
    path, file = _tox21(tmp_path, _TOX21_HEADER, "0,0,0,0,0,0,0,0,0,0,0,TOX1,CCO")
    with _raises_at(file, 2, "13 fields; expected 14"):
        tox21.read_csv(path)
    path, file = _tox21(tmp_path, _TOX21_HEADER, "0,0,0,0,0,0,0,0,0,0,0,0,TOX1,")
    with _raises_at(file, 2, "the smiles field is empty"):
        tox21.read_csv(path)
    path, file = _tox21(tmp_path, _TOX21_HEADER)
    with _raises_at(file, None, "no examples"):
        tox21.read_csv(path)


# ------------------------------------------------------------------ Oxford-IIIT Pet

def _pets(tmp_path, trainval, test=("Bengal_1 6 1 2",)):
    annotations = tmp_path / "annotations"
    annotations.mkdir(exist_ok=True)
    (annotations / "trainval.txt").write_text("".join(line + "\n" for line in trainval))
    (annotations / "test.txt").write_text("".join(line + "\n" for line in test))
    return str(tmp_path), annotations / "trainval.txt"


def test_pets_reads_valid_lists(tmp_path):
    path, _ = _pets(tmp_path, ["#Image CLASS-ID SPECIES BREED ID", "Abyssinian_1 1 1 1", "american_bulldog_2 2 2 1"])
    records = oxford_pets.read_split(path, "trainval")
    assert records["breed"].tolist() == [0, 1] and records["species"].tolist() == [0, 1]
    assert records["image"][1] == str(tmp_path / "images" / "american_bulldog_2.jpg")
    assert oxford_pets.breeds(path) == ["Abyssinian", "american_bulldog", "Bengal"]


@pytest.mark.parametrize("line, message", [
    ("Abyssinian_2 1 3 1", "SPECIES is '3'; expected an integer from 1 to 2"),
    ("Abyssinian_2 0 1 1", "CLASS-ID is '0'; expected an integer >= 1"),
    ("Abyssinian_2 1 1 one", "BREED-ID is 'one'; expected an integer >= 1"),
    ("Abyssinian_2 1 1", "3 fields; expected 4: `NAME CLASS-ID SPECIES BREED-ID`"),
    ("../x 1 1 1", r"NAME is '\.\./x'; expected a file name without folders"),
    ("..\\x 1 1 1", r"NAME is '\.\.\\\\x'; expected a file name without folders"),
])
def test_pets_rejects_bad_lines(tmp_path, line, message):
    path, file = _pets(tmp_path, ["# comment", "Abyssinian_1 1 1 1", line])
    with _raises_at(file, 3, message):
        oxford_pets.read_split(path, "trainval")


def test_pets_rejects_an_empty_list(tmp_path):
    path, file = _pets(tmp_path, ["# only a comment"])
    with _raises_at(file, None, "no examples"):
        oxford_pets.load(path, "trainval")


# -------------------------------------------------------------------------- UTKFace

def _utkface(tmp_path, *names):
    folder = tmp_path / "UTKFace"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"")
    return str(tmp_path), folder


def test_utkface_reads_labels_and_skips_names_missing_a_field(tmp_path):
    path, folder = _utkface(tmp_path, "26_1_3_20170117.jpg.chip.jpg", "116_0_4_2017.jpg.chip.jpg",
                            "39_1_20170116174525125.jpg.chip.jpg")
    labels = utkface.read_labels(path)
    assert labels["age"].tolist() == [116.0, 26.0] and labels["race"].tolist() == [4, 3]
    assert labels["path"][1] == str(folder / "26_1_3_20170117.jpg.chip.jpg")


@pytest.mark.parametrize("name, message", [
    ("26_2_0_2017.jpg.chip.jpg", "gender is '2'; expected an integer from 0 to 1"),
    ("26_0_5_2017.jpg.chip.jpg", "race is '5'; expected an integer from 0 to 4"),
    ("117_0_0_2017.jpg.chip.jpg", "age is '117'; expected an integer from 0 to 116"),
])
def test_utkface_rejects_labels_out_of_range(tmp_path, name, message):
    path, folder = _utkface(tmp_path, "26_1_3_2017.jpg.chip.jpg", name)
    with _raises_at(folder / name, None, message):
        utkface.read_labels(path)


def test_utkface_rejects_a_folder_without_images(tmp_path):
    path, folder = _utkface(tmp_path, "notes.txt")
    with _raises_at(folder, None, "no examples"):
        utkface.load(path)
