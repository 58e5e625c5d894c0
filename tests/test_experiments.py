"""keras_mtl.experiments: paired seeds, resuming from the results file, and the summary's
statistics against a float64 numpy computation."""

import csv
import json

import numpy as np
import pytest

from keras_mtl import experiments

HIGHER = {"miou": True, "abs_error": False}
# Per configuration and seed: miou, abs_error (non-trivial, seed-dependent numbers).
TABLE = {
    "single": {0: (0.412, 0.731), 1: (0.455, 0.688), 2: (0.398, 0.760), 3: (0.431, 0.702)},
    "equal": {0: (0.405, 0.702), 1: (0.471, 0.695), 2: (0.379, 0.701), 3: (0.420, 0.730)},
    "famo": {0: (0.462, 0.610), 1: (0.490, 0.620), 2: (0.441, 0.655), 3: (0.470, 0.600)},
}


def _configurations(calls=None, stop_after=None):
    def make(name):
        def train(seed):
            if calls is not None:
                if stop_after is not None and len(calls) == stop_after:
                    raise KeyboardInterrupt
                calls.append((name, seed))
            miou, error = TABLE[name][seed]
            return {"seg": {"miou": miou}, "depth": {"abs_error": error, "loss": 10 * error}}
        return train
    return {name: make(name) for name in TABLE}


def test_summary_statistics_match_numpy(tmp_path):
    seeds = [0, 1, 2, 3]
    stored = experiments.run(_configurations(), seeds, baseline="single", higher_is_better=HIGHER,
                             path=str(tmp_path / "r.json"), log=None)
    summary = stored["summary"]
    for name in TABLE:
        miou = np.array([TABLE[name][s][0] for s in seeds], np.float64)
        error = np.array([TABLE[name][s][1] for s in seeds], np.float64)
        base_miou = np.array([TABLE["single"][s][0] for s in seeds], np.float64)
        base_error = np.array([TABLE["single"][s][1] for s in seeds], np.float64)
        entry = summary[name]
        assert entry["seeds"] == seeds and entry["paired_seeds"] == seeds
        assert entry["metrics"]["miou"]["mean"] == pytest.approx(miou.mean(), rel=1e-12)
        assert entry["metrics"]["abs_error"]["std"] == pytest.approx(error.std(ddof=1), rel=1e-12)
        assert entry["metrics"]["loss"]["mean"] == pytest.approx(10 * error.mean(), rel=1e-12)
        miou_change = -100 * (miou - base_miou) / base_miou
        error_change = 100 * (error - base_error) / base_error
        per_seed = (miou_change + error_change) / 2
        np.testing.assert_allclose(entry["delta_m"]["values"], per_seed, rtol=1e-12, atol=1e-12)
        assert entry["delta_m"]["mean"] == pytest.approx(per_seed.mean(), abs=1e-12)
        assert entry["metric_changes"]["miou"]["mean"] == pytest.approx(miou_change.mean(), abs=1e-12)
        assert entry["metric_changes"]["abs_error"]["std"] == pytest.approx(error_change.std(ddof=1), abs=1e-12)
        assert entry["is_baseline"] == (name == "single")
        if name == "single":
            assert "p" not in entry["delta_m"]
            continue
        t = per_seed.mean() / (per_seed.std(ddof=1) / np.sqrt(4))
        assert entry["delta_m"]["t"] == pytest.approx(t, rel=1e-10)
        # 3.182446305 is the two-sided 5% critical value of Student's t with 3 degrees of freedom.
        half = 3.182446305 * per_seed.std(ddof=1) / 2
        assert entry["delta_m"]["ci_low"] == pytest.approx(per_seed.mean() - half, rel=1e-8)
        assert entry["delta_m"]["exceeds_noise"] == (abs(t) > 3.182446305)
    # FAMO is clearly better on every seed; equal weighting is within the seed noise.
    assert summary["famo"]["delta_m"]["exceeds_noise"] and summary["famo"]["delta_m"]["mean"] < 0
    assert not summary["equal"]["delta_m"]["exceeds_noise"]
    table = experiments.format_table(summary)
    assert "famo" in table and "exceeds" in table and "within" in table


def test_an_interrupted_run_resumes_without_recomputing(tmp_path):
    path = str(tmp_path / "results.json")
    calls = []
    with pytest.raises(KeyboardInterrupt):
        experiments.run(_configurations(calls, stop_after=4), 3, baseline="single",
                        higher_is_better=HIGHER, path=path, log=None)
    assert len(calls) == 4
    assert len(experiments.load(path)["runs"]) == 4
    resumed = []
    lines = []
    stored = experiments.run(_configurations(resumed), 3, baseline="single", higher_is_better=HIGHER,
                             path=path, log=lines.append)
    assert len(resumed) == 9 - 4
    assert not set(resumed) & set(calls)
    assert lines[0].endswith("4 finished runs kept, 5 to run")
    assert lines[1].startswith("[1/5] ") and "left" in lines[1] and lines[-1].startswith("[5/5] ")
    assert len(stored["runs"]) == 9
    again = []
    experiments.run(_configurations(again), 3, baseline="single", higher_is_better=HIGHER, path=path, log=None)
    assert again == []
    # More seeds later: only the new seed runs.
    experiments.run(_configurations(again), 4, baseline="single", higher_is_better=HIGHER, path=path, log=None)
    assert sorted(again) == [("equal", 3), ("famo", 3), ("single", 3)]
    with pytest.raises(ValueError, match="other settings"):
        experiments.run(_configurations(), 3, baseline="single", higher_is_better=HIGHER, path=path,
                        settings={"epochs": 5}, log=None)


def test_every_configuration_gets_the_same_seeds_and_random_state():
    seen = {}

    def make(name):
        def train(seed):
            seen.setdefault(name, []).append((seed, float(np.random.rand())))
            return {"miou": 0.5, "abs_error": 0.5}
        return train

    experiments.run({n: make(n) for n in ("a", "b", "c")}, [7, 3, 11], log=None)
    assert [s for s, _ in seen["a"]] == [7, 3, 11]
    assert seen["a"] == seen["b"] == seen["c"]
    assert len({draw for _, draw in seen["a"]}) == 3


def test_csv_export_has_a_row_per_run_with_its_paired_delta_m(tmp_path):
    stored = experiments.run(_configurations(), 2, baseline="single", higher_is_better=HIGHER, log=None)
    experiments.write_csv(stored, tmp_path / "runs.csv")
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(rows) == 6
    famo_1 = next(r for r in rows if r["configuration"] == "famo" and r["seed"] == "1")
    assert float(famo_1["miou"]) == TABLE["famo"][1][0]
    expected = (-(0.490 - 0.455) / 0.455 + (0.620 - 0.688) / 0.688) * 50
    assert float(famo_1["delta_m"]) == pytest.approx(expected, abs=1e-12)
    json.dumps(stored)  # the stored results are plain JSON


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="baseline 'x' is not a configuration"):
        experiments.run(_configurations(), 2, baseline="x", higher_is_better=HIGHER)
    with pytest.raises(ValueError, match="higher_is_better"):
        experiments.run(_configurations(), 2, baseline="single")
    with pytest.raises(ValueError, match="distinct ints"):
        experiments.run(_configurations(), [1, 1])
    with pytest.raises(TypeError, match="'bad' .*non-numeric metric 'miou'"):
        experiments.run({"bad": lambda seed: {"miou": "high"}}, 1, log=None)


def test_compare_ranking_matches_rank_correlations_of_the_means():
    stored = experiments.run(_configurations(), 4, baseline="single", higher_is_better=HIGHER, log=None)
    summary = stored["summary"]
    published = {"LS": 5.6, "FAMO": -4.1, "Nash-MTL": -4.0}
    ranking = experiments.compare_ranking(summary, published, names={"equal": "LS", "famo": "FAMO"})
    ours = {n: summary[n]["delta_m"]["mean"] for n in ("equal", "famo")}
    assert [m[0] for m in ranking["methods"]] == sorted(ours, key=ours.get)
    assert ranking["methods"][0] == ("famo", ours["famo"], -4.1)
    # Two methods in the same order in both tables: both correlations are 1.
    assert ranking["spearman"] == pytest.approx(1.0) and ranking["kendall_tau"] == pytest.approx(1.0)
    assert ranking["missing"] == []
    with pytest.raises(ValueError, match="at least 2"):
        experiments.compare_ranking(summary, {"LS": 1.0}, names={"equal": "LS"})


def test_compare_ranking_with_a_swapped_pair():
    ours = {"a": -3.0, "b": -1.0, "c": 0.5, "d": 2.0, "base": 0.0}
    summary = {n: {"is_baseline": n == "base", "delta_m": {"mean": v}} for n, v in ours.items()}
    published = {"a": 1.0, "b": -2.0, "c": 3.0, "d": 4.0, "e": 0.0}   # a and b swapped, e not ours
    ranking = experiments.compare_ranking(summary, published)
    assert [m[0] for m in ranking["methods"]] == ["a", "b", "c", "d"]
    assert ranking["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))       # sum d^2 = 2
    assert ranking["kendall_tau"] == pytest.approx((5 - 1) / 6)              # 5 concordant, 1 discordant pair


def test_each_configuration_may_have_its_own_baseline():
    # Two data sizes, each multi-task model against the single-task networks of its size.
    values = {("single", 250): 0.40, ("multi", 250): 0.44, ("single", 1000): 0.60, ("multi", 1000): 0.57}
    noise = {0: 0.01, 1: -0.02, 2: 0.015}
    configurations = {f"{kind} n={n}": (lambda seed, v=v: {"miou": v + noise[seed] * v})
                      for (kind, n), v in values.items()}
    baselines = {"multi n=250": "single n=250", "multi n=1000": "single n=1000"}
    summary = experiments.run(configurations, 3, baseline=baselines, higher_is_better={"miou": True},
                              log=None)["summary"]
    for n in (250, 1000):
        multi = np.array([values[("multi", n)] * (1 + noise[s]) for s in range(3)])
        single = np.array([values[("single", n)] * (1 + noise[s]) for s in range(3)])
        expected = -100 * (multi - single) / single
        entry = summary[f"multi n={n}"]
        assert entry["baseline"] == f"single n={n}" and not entry["is_baseline"]
        np.testing.assert_allclose(entry["delta_m"]["values"], expected, rtol=1e-12)
        assert summary[f"single n={n}"]["is_baseline"] and "delta_m" not in summary[f"single n={n}"]
    assert summary["multi n=250"]["delta_m"]["mean"] == pytest.approx(-10.0)
    assert summary["multi n=1000"]["delta_m"]["mean"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="baseline 'nope' is not a configuration"):
        experiments.run(configurations, 1, baseline={"multi n=250": "nope"}, higher_is_better={"miou": True})
