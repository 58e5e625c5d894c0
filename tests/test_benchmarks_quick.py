"""The benchmark functions run on tiny configurations and return their tables
(no timing assertions: these machines are shared)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import benchmarks  # noqa: E402
from benchmarks import backends, libmtl_compare, overhead, scaling  # noqa: E402


def test_interleaved_rounds_pairs_ratios_by_round_and_reruns_noisy_rows():
    calls = {"all": 0, "noisy": 0}

    def runner(name, relative_time, cpu_seconds):
        def run():
            # A load that doubles every round (3 epochs): paired ratios do not see it.
            load = 2.0 ** (calls["all"] // 3)
            calls["all"] += 1
            calls[name] = calls.get(name, 0) + 1
            factor = (1.0, 3.0)[calls[name] % 2] if name == "noisy" else 1.0
            return 10, load * relative_time * factor, cpu_seconds
        return run

    runners = {"reference": runner("reference", 2.0, 1.0), "fast": runner("fast", 1.0, 0.5),
               "noisy": runner("noisy", 1.0, 1.0)}
    samples = benchmarks.interleaved_rounds(runners, "reference", rounds=4, warmup=1, extra_rounds=3)
    assert samples["fast"]["ratio"] == [2.0] * 4  # steady: no extra rounds
    assert samples["fast"]["cpu_ratio"] == [2.0] * 4
    np.testing.assert_allclose(sorted(set(np.round(samples["noisy"]["ratio"][:4], 9))), [2 / 3, 2.0])
    assert len(samples["noisy"]["ratio"]) == 7  # its spread exceeds NOISY_SPREAD
    assert len(samples["reference"]["ratio"]) == 7
    summary = benchmarks.summarize(samples)
    assert summary["reference"][1] == 1.0 and summary["fast"][1:4] == (2.0, 0.0, 2.0)


def test_markdown_table():
    table = benchmarks.markdown_table(["a", "b"], [("x", 1.23456), ("y", 1234.5)])
    assert table.splitlines() == ["| a | b |", "|---|---:|", "| x | 1.235 |", "| y | 1234.5 |"]


def test_overhead_runs_on_a_tiny_mlp_and_reports_ratios():
    rows = overhead.run(models=("mlp",), jit=(False,), weightings=("equal", "uncertainty"),
                        examples=64, batch_size=16, rounds=1, extra_rounds=0, log=None)
    assert [r[2] for r in rows] == ["plain keras", "keras_mtl equal", "keras_mtl uncertainty",
                                    "keras_mtl equal, separate task optimizer",
                                    "keras_mtl equal, on_nonfinite='ignore'",
                                    "keras_mtl equal, fast_dispatch=True"]
    for row in rows:
        assert row[3] > 0 and np.isfinite(row[4]) and row[4] > 0
    assert rows[0][4] == 1.0
    assert "keras_mtl uncertainty" in overhead.report(rows)


@pytest.mark.slow
def test_backends_times_both_backends_in_one_run():
    rows = backends.run(quick=True, models=("mlp",), methods=("equal",), rounds=1, log=None)
    assert sorted(r[1] for r in rows) == ["jax, equal", "tensorflow, XLA, equal", "tensorflow, equal"]
    for row in rows:
        assert row[2] > 0 and np.isfinite(row[3]) and row[3] > 0 and row[5] > 0
    assert dict((r[1], r[3]) for r in rows)["tensorflow, equal"] == 1.0
    assert "jax, equal" in backends.report(rows)


def test_scaling_runs_for_two_task_counts():
    rows = scaling.run(tasks=(2, 3), modes=("plain keras", "equal", "MGDA rep-grad"), steps=2,
                       batch_size=8, rounds=1, extra_rounds=0, log=None)
    assert [(r[0], r[1]) for r in rows] == [(k, m) for k in (2, 3)
                                            for m in ("plain keras", "equal", "MGDA rep-grad")]
    for k, mode, sps, ms, vs_first, vs_equal, peak, n, note in rows:
        assert note == "" and sps > 0 and ms == pytest.approx(1000 / sps) and vs_equal > 0
    assert rows[1][4] == 1.0  # equal at K=2 is the reference
    assert "MGDA rep-grad" in scaling.report(rows)


def test_min_norm_point_reference():
    # Two gradients: the closed form gamma = (g2 - g1).g2 / ||g1 - g2||^2.
    g = np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.5]])
    gamma = (g[1] - g[0]) @ g[1] / np.sum((g[0] - g[1]) ** 2)
    np.testing.assert_allclose(libmtl_compare.min_norm_point(g), gamma * g[0] + (1 - gamma) * g[1])
    # A gradient inside the others' hull's direction: the point is the shortest vertex.
    g = np.array([[1.0, 0.0], [3.0, 1.0], [3.0, -1.0]])
    np.testing.assert_allclose(libmtl_compare.min_norm_point(g), [1.0, 0.0])
