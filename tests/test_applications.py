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


@pytest.mark.slow
def test_quickstart_trains_saves_and_exports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    history = runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")["history"].history
    for name in ("object_count_loss", "classes_present_weight", "val_classes_present_binary_accuracy"):
        assert len(history[name]) == 5 and np.all(np.isfinite(history[name])), name
    assert (tmp_path / "quickstart.keras").stat().st_size > 10_000
    assert (tmp_path / "saved_models" / "quickstart" / "saved_model.pb").exists()


@pytest.mark.slow
def test_weighting_scenes_over_seeds_resumes_and_plots(tmp_path, monkeypatch, capsys):
    application = _application("weighting_scenes", monkeypatch)
    results = tmp_path / "weighting.json"
    flags = SCENES_FLAGS + ["--methods", "equal", "--seeds", "2", "--results", str(results)]
    assert application.parse_args(SCENES_FLAGS + ["--methods", "all"]).methods == [
        m for m in application.keras_mtl.weighting.available() if m not in application.NEEDS_ARGUMENTS]
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


def test_fit_timed_counts_steps_per_epoch_when_given(monkeypatch):
    common = _application("_common", monkeypatch)
    import tensorflow as tf

    clock = iter([0.0, 9.0,   10.0, 13.0])  # epochs of 9 and 3 s

    class Model:
        def fit(self, train, epochs, callbacks, verbose, steps_per_epoch):
            for epoch in range(epochs):
                for c in callbacks:
                    c.on_epoch_begin(epoch, {})
                for c in callbacks:
                    c.on_epoch_end(epoch, {})

    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    _, ms = common.fit_timed(Model(), tf.data.Dataset.range(8).batch(2).repeat(), 2, verbose=0, steps_per_epoch=6)
    assert ms == pytest.approx(1000 * 3.0 / 6)


def test_interleaved_seconds_calls_in_turns_and_takes_each_median(monkeypatch):
    common = _application("_common", monkeypatch)
    now, calls = [0.0], []
    monkeypatch.setattr(common.time, "perf_counter", lambda: now[0])

    def function(name, durations):
        durations = iter(durations)

        def call():
            calls.append(name)
            now[0] += next(durations)
        return call

    medians = common.interleaved_seconds({"a": function("a", [100.0, 1.0, 5.0, 2.0]),
                                          "b": function("b", [100.0, 4.0, 3.0, 9.0])}, rounds=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert medians == {"a": pytest.approx(np.median([1.0, 5.0, 2.0])), "b": pytest.approx(np.median([4.0, 3.0, 9.0]))}


def test_compare_with_row_flags_extends_a_results_file_with_more_rows(tmp_path, monkeypatch, capsys):
    common = _application("_common", monkeypatch)
    import argparse

    def args(sizes, **more):
        return argparse.Namespace(**{"epochs": 2, "sizes": sizes, "seed": 0, "seeds": 2,
                                     "results": str(tmp_path / "r.json"), "figures": "x", **more})

    def runs(sizes):
        rows = {}
        for n in sizes:
            rows[f"single n={n}"] = lambda seed, n=n: {"error": 1.0 + seed + 1 / n}
            rows[f"multi n={n}"] = lambda seed, n=n: {"error": 0.9 + seed + 1 / n}
        return rows, {name: f"single n={name.split('=')[1]}" for name in rows}

    rows, baselines = runs([10])
    common.compare(args([10]), "t", rows, {"error"}, baseline=baselines, row_flags=("sizes",))
    rows, baselines = runs([10, 20])
    summary = common.compare(args([10, 20], figures="y"), "t", rows, {"error"}, baseline=baselines,
                             row_flags=("sizes",))
    assert "4 finished runs kept, 4 to run" in capsys.readouterr().out
    assert summary["multi n=20"]["delta_m"]["values"] == pytest.approx(
        [100 * (0.9 + s + 0.05 - (1.0 + s + 0.05)) / (1.0 + s + 0.05) for s in (0, 1)])
    with pytest.raises(ValueError, match="other settings"):  # a flag that changes the runs
        common.compare(args([10, 20], figures="y", extra=1), "t", rows, {"error"}, baseline=baselines,
                       row_flags=("sizes",))


def test_scenes_sizes_share_their_first_images(monkeypatch):
    scenes_common = _application("_scenes", monkeypatch)
    from keras_mtl.datasets.scenes import scenes_arrays

    args = scenes_common.parse_args(scenes_common.parser("x", train=4, val=2, epochs=1, filters="4,8"),
                                    ["--height", "16", "--width", "16"])
    generated = scenes_arrays(6, 16, 16, seed=3)
    alone = scenes_common.experiment(args, 3, train=4)
    sliced = scenes_common.experiment(args, 3, train=4, generated=generated)
    for (x1, y1), (x2, y2) in zip(alone.train.unbatch(), sliced.train.unbatch(), strict=True):
        np.testing.assert_array_equal(x1.numpy(), x2.numpy())
        for task in y1:
            np.testing.assert_array_equal(y1[task].numpy(), y2[task].numpy())
    assert alone.tasks_factory.keywords == sliced.tasks_factory.keywords  # the same mean depth


def test_scenes_tells_whether_multi_task_gains_more_with_less_data(monkeypatch):
    application = _application("scenes", monkeypatch)
    # delta_m per seed at three sizes; seeds listed in different orders, seed 3 not at every size.
    deltas = {100: {0: -5.0, 1: -6.0, 2: -4.0}, 200: {2: -1.0, 0: -2.0, 1: -4.0, 3: 7.0}, 400: {1: 2.0, 0: 1.0, 2: 0.0}}
    summary = {f"n={n}": {"paired_seeds": list(d), "delta_m": {"values": list(d.values())}} for n, d in deltas.items()}
    result, verdict = application.trend_per_doubling(summary, {n: f"n={n}" for n in deltas})
    x = np.log2([100, 200, 400])
    slopes = []
    for seed in (0, 1, 2):  # least squares by the normal equations, in float64
        y = np.array([deltas[n][seed] for n in (100, 200, 400)])
        slopes.append(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    assert result["seeds"] == [0, 1, 2] and result["values"] == pytest.approx(slopes, rel=1e-9)
    assert result["std"] == pytest.approx(np.std(slopes, ddof=1))
    t = np.mean(slopes) / (np.std(slopes, ddof=1) / np.sqrt(3))
    assert result["p"] == pytest.approx(1 - abs(t) / np.sqrt(t ** 2 + 2), rel=1e-6)  # Student's t, 2 dof
    assert result["exceeds_noise"] and verdict.startswith("yes")  # delta_m rises with the data
    summary["n=400"]["delta_m"]["values"] = [-9.0, -3.0, -8.0]
    result, verdict = application.trend_per_doubling(summary, {n: f"n={n}" for n in deltas})
    assert verdict.startswith("within the seed noise")
    assert application.parse_args(["--full"]).train_sizes == [150, 300, 600, 1200, 2400]
    assert application.parse_args([]).seeds == 3
