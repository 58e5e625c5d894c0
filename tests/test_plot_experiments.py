"""keras_mtl.plot.delta_m and metric_changes draw the summary's numbers into PNG files."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from keras_mtl import experiments, plot  # noqa: E402

HIGHER = {"miou": True, "abs_error": False}
TABLE = {"single": [(0.41, 0.73), (0.46, 0.69), (0.40, 0.76)],
         "equal": [(0.40, 0.70), (0.47, 0.70), (0.38, 0.70)],
         "famo": [(0.46, 0.61), (0.49, 0.62), (0.44, 0.66)]}


def _summary():
    configurations = {name: (lambda seed, name=name: dict(zip(("miou", "abs_error"), TABLE[name][seed])))
                      for name in TABLE}
    return experiments.run(configurations, 3, baseline="single", higher_is_better=HIGHER, log=None)["summary"]


def _bars(axes):
    from matplotlib.container import BarContainer

    return [c for c in axes.containers if isinstance(c, BarContainer)]


def _error_bar_ends(container):
    segments = container.errorbar.lines[2][0].get_segments()
    return np.array([[s[0][1], s[1][1]] for s in segments])


def test_delta_m_bars_and_error_bars_are_the_summary_values(tmp_path):
    summary = _summary()
    path = tmp_path / "delta_m.png"
    figure = plot.delta_m(summary, path=str(path))
    axes = figure.axes[0]
    [bars] = _bars(axes)
    assert [t.get_text() for t in axes.get_xticklabels()] == ["equal", "famo"]  # no baseline bar
    heights = [bar.get_height() for bar in bars]
    means = [summary[n]["delta_m"]["mean"] for n in ("equal", "famo")]
    stds = [summary[n]["delta_m"]["std"] for n in ("equal", "famo")]
    np.testing.assert_allclose(heights, means, rtol=1e-12)
    np.testing.assert_allclose(_error_bar_ends(bars), np.column_stack(
        [np.subtract(means, stds), np.add(means, stds)]), rtol=1e-12)
    # FAMO beats the baseline on every seed by more than the noise: a solid bar.
    assert summary["famo"]["delta_m"]["exceeds_noise"] and bars[1].get_hatch() is None
    assert not summary["equal"]["delta_m"]["exceeds_noise"] and bars[0].get_hatch() == "//"
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_metric_changes_draws_one_bar_per_metric_and_configuration(tmp_path):
    summary = _summary()
    path = tmp_path / "changes.png"
    figure = plot.metric_changes(summary, path=str(path))
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["miou", "abs_error"]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["equal", "famo"]
    for container, name in zip(_bars(axes), ("equal", "famo"), strict=True):
        base = np.array(TABLE["single"])
        own = np.array(TABLE[name])
        changes = np.column_stack([-(own[:, 0] - base[:, 0]) / base[:, 0],
                                   (own[:, 1] - base[:, 1]) / base[:, 1]]) * 100
        np.testing.assert_allclose([bar.get_height() for bar in container], changes.mean(0), rtol=1e-12)
        means, stds = changes.mean(0), changes.std(0, ddof=1)
        np.testing.assert_allclose(_error_bar_ends(container), np.column_stack([means - stds, means + stds]),
                                   rtol=1e-12, atol=1e-12)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_rejects_a_summary_without_a_baseline():
    configurations = {"a": lambda seed: {"miou": 0.5}}
    summary = experiments.run(configurations, 2, log=None)["summary"]
    with pytest.raises(ValueError, match="no configuration with 'delta_m'"):
        plot.delta_m(summary)
    with pytest.raises(TypeError, match="summarize"):
        plot.metric_changes([1, 2])


def test_delta_m_trend_draws_each_series_mean_and_std_against_x(tmp_path):
    from matplotlib.container import ErrorbarContainer

    # Per size, a baseline and a model; seeds 0-2. Size 100: the model is better on every
    # seed by a similar margin (beyond the noise); size 400: mixed (within it).
    values = {("single", 100): [(0.30, 1.00), (0.32, 1.10), (0.28, 0.90)],
              ("multi", 100): [(0.36, 0.80), (0.37, 0.95), (0.33, 0.70)],
              ("single", 400): [(0.40, 0.80), (0.41, 0.82), (0.39, 0.79)],
              ("multi", 400): [(0.44, 0.85), (0.37, 0.70), (0.40, 0.90)]}
    configurations = {f"{kind} n={n}": (lambda seed, key=(kind, n): dict(zip(("miou", "abs_error"), values[key][seed])))
                      for kind, n in values}
    summary = experiments.run(configurations, 3, baseline={f"{k} n={n}": f"single n={n}" for k, n in values},
                              higher_is_better=HIGHER, log=None)["summary"]
    path = tmp_path / "trend.png"
    figure = plot.delta_m_trend(summary, {"hard sharing": {400: "multi n=400", 100: "multi n=100"}}, path=str(path))
    axes = figure.axes[0]
    [container] = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    expected = {}
    for n in (100, 400):
        model, base = np.array(values[("multi", n)]), np.array(values[("single", n)])
        per_seed = 100 * ((base[:, 0] - model[:, 0]) / base[:, 0] + (model[:, 1] - base[:, 1]) / base[:, 1]) / 2
        expected[n] = (per_seed.mean(), per_seed.std(ddof=1))
    data_line = container.lines[0]
    np.testing.assert_array_equal(data_line.get_xdata(), [100, 400])  # sorted by x
    np.testing.assert_allclose(np.asarray(data_line.get_ydata(), float), [expected[100][0], expected[400][0]], rtol=1e-10)
    ends = np.array([[s[0][1], s[1][1]] for s in container.lines[2][0].get_segments()])
    np.testing.assert_allclose(ends, [[m - s, m + s] for m, s in (expected[100], expected[400])], rtol=1e-10)
    assert summary["multi n=100"]["delta_m"]["exceeds_noise"] and not summary["multi n=400"]["delta_m"]["exceeds_noise"]
    markers = {line.get_xdata()[0]: line.get_markerfacecolor() for line in axes.lines if line.get_marker() == "o"}
    assert markers[400] == "white" and markers[100] != "white"  # hollow: within the seed noise
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["hard sharing"]
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="No configuration"):
        plot.delta_m_trend(summary, {"x": {1: "unknown"}})
