"""keras_mtl.experiments' results file: damaged, duplicated or unreachable files and
non-finite metrics are errors that name the file, the run and what to do."""

import json
import os

import pytest

from keras_mtl import experiments

HIGHER = {"score": True}


def _configurations(calls, value=lambda name, seed: 0.5 + 0.1 * seed):
    def make(name):
        def train(seed):
            calls.append((name, seed))
            return {"score": value(name, seed)}
        return train
    return {name: make(name) for name in ("base", "method")}


def _run(path, calls, **kwargs):
    return experiments.run(_configurations(calls, **kwargs), 2, baseline="base",
                           higher_is_better=HIGHER, path=path, log=None)


def test_a_file_with_a_pair_twice_is_an_error_naming_it(tmp_path):
    path = str(tmp_path / "results.json")
    _run(path, [])
    stored = json.load(open(path))
    stored["runs"].append({**stored["runs"][1], "metrics": {"score": 9.0}})
    json.dump(stored, open(path, "w"))
    with pytest.raises(ValueError, match=rf"{path}.*\('method', 0\) twice"):
        experiments.load(path)
    calls = []
    with pytest.raises(ValueError, match=rf"{path}.*\('method', 0\) twice"):
        _run(path, calls)
    assert calls == []


@pytest.mark.parametrize("content", ["", '{"format": 1, "settings": {}, "runs": [{"configu',
                                     "[]", '{"format": 1, "settings": {}, "runs": [{"seed": 0}]}',
                                     '{"format": 1, "settings": {}, "runs": [3]}',
                                     '{"format": 1, "settings": {}, "runs": [{"configuration": '
                                     '"base", "seed": 0, "metrics": []}]}'],
                         ids=["empty", "truncated", "list", "no-configuration", "not-a-dict",
                              "metrics-list"])
def test_a_damaged_file_is_an_error_naming_it(tmp_path, content):
    path = str(tmp_path / "results.json")
    with open(path, "w") as f:
        f.write(content)
    calls = []
    with pytest.raises(ValueError, match=rf"{path}.*(delete|another path)"):
        _run(path, calls)
    assert calls == []


def test_a_path_in_a_missing_folder_fails_before_any_run(tmp_path):
    calls = []
    path = str(tmp_path / "missing" / "results.json")
    with pytest.raises(ValueError, match=rf"path={path!r}.*folder .* does not exist"):
        _run(path, calls)
    assert calls == []


def test_a_nan_metric_is_an_error_naming_the_run(tmp_path):
    path = str(tmp_path / "results.json")
    calls = []
    nan_at = lambda name, seed: float("nan") if (name, seed) == ("method", 1) else 0.5
    with pytest.raises(ValueError, match=r"'method' \(seed 1\).*'score'.*nan"):
        _run(path, calls, value=nan_at)
    # The runs before it are kept; the failed one is not stored.
    assert [(r["configuration"], r["seed"]) for r in experiments.load(path)["runs"]] == [
        ("base", 0), ("method", 0), ("base", 1)]
    assert os.path.exists(path)
