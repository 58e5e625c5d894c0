"""Smoke tests of the applications and examples on tiny data: each trains, prints its
table, and with --seeds / --results keeps its runs, resumes and draws its plots."""

import importlib.util
import json
import pathlib
import re
import runpy

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
APPLICATIONS = ROOT / "applications"
DATA = ROOT.parent / "shared" / "data"
SCENES_FLAGS = ["--height", "16", "--width", "16", "--train", "16", "--val", "8", "--epochs", "1",
                "--batch-size", "8", "--filters", "4,8", "--verbose", "0"]


def _application(name, monkeypatch):
    monkeypatch.syspath_prepend(str(APPLICATIONS))  # the applications import _common (and _scenes)
    spec = importlib.util.spec_from_file_location(f"application_{name}", APPLICATIONS / f"{name}.py")
    application = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(application)
    return application


def _row(printed, name):
    """The numbers of the table row that starts with `name`."""
    line = next(line for line in printed.splitlines() if line.startswith(name + "  "))
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", line[len(name):])]


def test_no_application_imports_another_application():
    scripts = {p.stem for p in APPLICATIONS.glob("*.py") if not p.stem.startswith("_")}
    for path in APPLICATIONS.glob("*.py"):
        imported = set(re.findall(r"^\s*(?:import|from)\s+(\w+)", path.read_text(), re.MULTILINE))
        assert not imported & scripts, f"{path.name} imports {imported & scripts}"
        if not path.stem.startswith("_"):
            assert re.search(r"^def main\(argv=None\):", path.read_text(), re.MULTILINE), path.name


def test_quickstart_is_the_readme_api_tour():
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## API tour"):]
    code = tour[tour.index("```python\n") + len("```python\n"):tour.index("```\n", tour.index("```python\n") + 10)]
    script = (ROOT / "examples" / "quickstart.py").read_text()
    assert script.startswith('"""')
    assert script[script.index('"""', 3) + 3:].lstrip("\n") == code


@pytest.mark.slow
def test_quickstart_trains_saves_and_exports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    histories = [float(x) for x in re.findall(r"\d+\.\d+(?:e-?\d+)?", printed)]
    assert len(histories) == 4 * 5 and all(np.isfinite(histories))
    assert (tmp_path / "model.keras").stat().st_size > 10_000
    assert (tmp_path / "saved_models" / "my_model" / "saved_model.pb").exists()


@pytest.mark.slow
def test_weighting_scenes_over_seeds_resumes_and_plots(tmp_path, monkeypatch, capsys):
    application = _application("weighting_scenes", monkeypatch)
    results = tmp_path / "weighting.json"
    flags = SCENES_FLAGS + ["--methods", "equal", "--seeds", "2", "--results", str(results)]
    assert application.parse_args(SCENES_FLAGS + ["--methods", "all"]).methods == [
        m for m in application.keras_mtl.weighting.available() if m not in ("dtp", "fixed")]
    application.main(flags)
    printed = capsys.readouterr().out
    stored = json.loads(results.read_text())
    assert sorted((r["configuration"], r["seed"]) for r in stored["runs"]) == [
        ("equal", 0), ("equal", 1), ("single-task", 0), ("single-task", 1)]
    deltas = stored["summary"]["equal"]["delta_m"]["values"]
    # The printed row: delta_m's mean +- std over the two seeds (the last numbers before p).
    row = _row(printed, "equal")
    assert row[-3] == pytest.approx(np.mean(deltas), abs=0.006)
    assert row[-2] == pytest.approx(np.std(deltas, ddof=1), abs=0.006)
    assert all(r["metrics"]["train_ms_per_step"] > 0 for r in stored["runs"])
    for suffix in (".csv", "_delta_m.png", "_metric_changes.png", "_task_weights.png"):
        assert (tmp_path / f"weighting{suffix}").stat().st_size > 100
    # A second call with the same flags trains nothing; one more seed trains two models.
    application.main(flags)
    assert "4 finished runs kept, 0 to run" in capsys.readouterr().out
    application.main(flags[:-3] + ["3", "--results", str(results)])
    assert "4 finished runs kept, 2 to run" in capsys.readouterr().out
    assert len(json.loads(results.read_text())["runs"]) == 6


def test_weighting_scenes_ranks_against_the_published_table(monkeypatch, capsys):
    application = _application("weighting_scenes", monkeypatch)
    # Three methods whose delta_m order is the published one reversed, and one not in it.
    summary = {"single-task": {"is_baseline": True},
               "equal": {"delta_m": {"mean": -3.0}}, "mgda": {"delta_m": {"mean": 1.0}},
               "nash_mtl": {"delta_m": {"mean": 2.0}}, "famo": {"delta_m": {"mean": 0.0}}}
    ranking = application.print_ranking(summary)
    assert [m for m, _, _ in ranking["methods"]] == ["equal", "mgda", "nash_mtl"]
    assert ranking["spearman"] == pytest.approx(-1.0) and ranking["missing"] == ["famo"]
    assert "Spearman -1.00, Kendall tau -1.00 (3 methods)" in capsys.readouterr().out


@pytest.mark.slow
def test_architectures_scenes_prints_every_architecture(tmp_path, monkeypatch, capsys):
    application = _application("architectures_scenes", monkeypatch)
    application.main(SCENES_FLAGS + ["--points", "encoder1,decoder1", "--plots", str(tmp_path)])
    printed = capsys.readouterr().out
    for name in ("single-task", "best split", "cross-stitch", "MTAN"):
        # Nine metrics, the training step time (not for the sweep) and delta_m (seconds are whole numbers).
        assert len(_row(printed, name)) == (10 if name == "best split" else 11)
    assert _row(printed, "single-task")[-1] == 0.0
    assert (tmp_path / "cross_stitch_alphas.png").exists() and (tmp_path / "mtan_masks.png").exists()


@pytest.mark.slow
def test_scenes_over_seeds_and_training_sizes(tmp_path, monkeypatch, capsys):
    application = _application("scenes", monkeypatch)
    results = tmp_path / "sizes.json"
    application.main(SCENES_FLAGS + ["--seeds", "2", "--train-sizes", "8,16", "--export", "",
                                     "--results", str(results)])
    printed = capsys.readouterr().out
    assert "seeds 0-1" in printed
    summary = json.loads(results.read_text())["summary"]
    for size in (8, 16):
        entry = summary[f"multi-task n={size}"]
        assert entry["baseline"] == f"single-task n={size}" and len(entry["delta_m"]["values"]) == 2
        single = summary[f"single-task n={size}"]["metrics"]
        # Hard sharing has fewer parameters than three separate networks.
        assert entry["metrics"]["parameters"]["mean"] < single["parameters"]["mean"]
        assert entry["metrics"]["inference_ms_per_image"]["mean"] > 0
        assert re.search(rf"^multi-task n={size}\s+2\s", printed, re.MULTILINE)
    assert (tmp_path / "sizes_delta_m.png").exists()


def _real_data(name):
    if not (DATA / name).is_dir():
        pytest.skip(f"no {DATA / name}")


REAL_DATA_RUNS = {
    "census_income": (["census_income"], ["--epochs", "1", "--units", "8", "--architectures", "single_task,mmoe"],
                      ["single_task", "mmoe"]),
    "tox21": (["tox21"], ["--epochs", "1", "--units", "16"], ["single_task", "hard_sharing"]),
    "utkface": (["utkface"], ["--epochs", "1", "--max-train", "64", "--image-size", "16"],
                ["single_task", "hard_sharing equal", "hard_sharing fixed age=0.1", "hard_sharing uncertainty",
                 "hard_sharing dwa"]),
    "mtfl": (["mtfl"], ["--epochs", "1", "--max-train", "64", "--image-size", "16", "--aux-weights", "0.1"],
             ["landmarks alone", "hard_sharing aux=0.1"]),
    "oxford_pets": (["oxford_pets_sample"], ["--epochs", "1", "--image-size", "32"], ["single_task", "hard_sharing"]),
    "many_to_many": (["utkface", "mtfl"], ["--epochs", "1", "--max-train", "64", "--image-size", "16",
                                           "--samplings", "uniform"], ["single_task", "shared uniform"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL_DATA_RUNS))
def test_real_data_application_prints_its_table(name, tmp_path, monkeypatch, capsys):
    folders, flags, rows = REAL_DATA_RUNS[name]
    for folder in folders:
        _real_data(folder)
    application = _application(name, monkeypatch)
    application.main(flags + ["--results", str(tmp_path / "r.json")])
    printed = capsys.readouterr().out
    stored = json.loads((tmp_path / "r.json").read_text())
    assert [r["configuration"] for r in stored["runs"]] == rows
    for row in rows:
        assert len(_row(printed, row)) >= 2  # metrics and delta_m
    assert _row(printed, rows[0])[-1] == 0.0  # the baseline's delta_m


def test_fit_timed_is_the_median_epoch_after_the_first_per_step(monkeypatch):
    common = _application("_common", monkeypatch)
    import tensorflow as tf

    clock = iter([0.0, 9.0,   10.0, 12.0,   20.0, 23.0,   30.0, 31.0])  # epochs of 9, 2, 3 and 1 s
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))

    class Model:
        def fit(self, train, epochs, callbacks, verbose):
            for epoch in range(epochs):
                for c in callbacks:
                    c.on_epoch_begin(epoch, {})
                for c in callbacks:
                    c.on_epoch_end(epoch, {})
            return "history"

    history, ms = common.fit_timed(Model(), tf.data.Dataset.range(8).batch(2), 4, verbose=0)
    assert history == "history"
    assert ms == pytest.approx(1000 * 2.0 / 4)  # median of 2, 3, 1 s over 4 steps


def test_an_application_may_redefine_a_common_flag(monkeypatch):
    common = _application("_common", monkeypatch)
    p = common.parser("x", epochs=3, batch_size=8)
    p.add_argument("--seeds", type=int, default=5, help="the application's own meaning")
    args = p.parse_args([])
    assert args.seeds == 5 and args.epochs == 3 and args.results is None
    assert p.parse_args(["--seeds", "2"]).seeds == 2
