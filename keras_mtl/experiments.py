"""Repeated experiments: named configurations over the same seeds, with seed noise.

Single runs cannot rank methods when the baseline itself moves by several percent
between seeds. `run` trains every configuration with every seed (the same seeds for
all, so runs pair up by seed), keeps each finished run in a JSON file that a later
call extends, and `summarize` reports each metric's mean and standard deviation,
delta_m (`keras_mtl.evaluation.delta_m`, Maninis et al. 2019) against a baseline
configuration trained with the same seed, and Student's paired t-test of the
per-seed delta_m (`keras_mtl.statistics.paired_t_test`, on scipy): whether a configuration
differs from the baseline by more than the seed noise.

    results = keras_mtl.experiments.run(
        {"single_task": lambda seed: train("single_task", seed),   # -> {metric: value}
         "equal": lambda seed: train("equal", seed)},
        seeds=3, baseline="single_task", higher_is_better={"miou": True, "abs_error": False},
        path="results.json")
    print(keras_mtl.experiments.format_table(results["summary"]))
"""

import csv
import json
import math
import os
import time

import keras
import numpy as np

from keras_mtl.evaluation import _flat, delta_m
from keras_mtl.statistics import _scipy_stats, kendall_tau, paired_t_test, spearman

FORMAT_VERSION = 1


def _seed_list(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds. Received: seeds={seeds}")
        return list(range(int(seeds)))
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be a positive count or a list of distinct ints. Received: seeds={seeds}")
    return [int(s) for s in seeds]


def _metrics(configuration, seed, values):
    if not isinstance(values, dict):
        raise TypeError(f"Configuration {configuration!r} (seed {seed}) must return a dict of metrics. "
                        f"Received: {values!r}")
    metrics = {}
    for name, value in _flat(values, f"the metrics of {configuration!r}").items():
        try:
            metrics[str(name)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"Configuration {configuration!r} (seed {seed}) returned a non-numeric "
                            f"metric {name!r}: {value!r}") from None
        if not math.isfinite(metrics[str(name)]):
            # A NaN would pass silently into every mean, delta_m and test.
            raise ValueError(f"Configuration {configuration!r} (seed {seed}) returned the metric "
                             f"{name!r} = {metrics[str(name)]}: a run with a non-finite metric is "
                             "not stored; fix the run (e.g. a lower learning rate) and run again "
                             "(finished runs are kept in the results file).")
    return metrics


def load(path):
    """The stored file of `run`: `{"settings", "runs": [...], "summary"}`. A file that
    is not one (empty, truncated, malformed, a run without its configuration, seed or
    finite metrics, a (configuration, seed) pair twice) is an error naming it."""
    def damaged(what):
        return ValueError(f"{path} is not a usable keras_mtl.experiments results file (format "
                          f"{FORMAT_VERSION}): {what}. Restore it from a copy, or delete it (or "
                          "use another path) to run every configuration again.")

    with open(path) as f:
        try:
            stored = json.load(f)
        except ValueError as error:
            raise damaged(f"not JSON ({error})") from None
    if (not isinstance(stored, dict) or stored.get("format") != FORMAT_VERSION
            or not isinstance(stored.get("runs"), list)):
        raise damaged("no format and runs")
    seen = set()
    for index, r in enumerate(stored["runs"]):
        try:
            pair = (r["configuration"], r["seed"])
            _metrics(*pair, r["metrics"])
        except (TypeError, KeyError, ValueError) as error:
            raise damaged(f"run {index} ({r!r}) is not a finished run ({error!r})") from None
        if pair in seen:
            raise damaged(f"it holds the run {pair} twice (one was added by hand or by a "
                          "merge of two files); keep one of them")
        seen.add(pair)
    return stored


def save(path, stored):
    """Writes `stored` (as `run` returns it) to `path` as JSON, atomically."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(stored, f, indent=1, allow_nan=True)
    os.replace(temporary, path)  # an interrupted write leaves the previous file whole


def _minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run(configurations, seeds, baseline=None, higher_is_better=None, path=None, settings=None,
        confidence=0.95, log=print):
    """Runs every configuration with every seed; resumes from `path`.

    Seed-major order (all configurations with the first seed, then the next seed),
    so that an interrupted run leaves complete pairs. Before each run, Keras' global
    random seed (Python, numpy, backend) is set to the run's seed with
    `keras.utils.set_random_seed`, so configurations with equal seeds start from the
    same random state.

    Args:
        configurations: `{name: function(seed) -> {metric: value}}` (or
            `{task: {metric: value}}`); each metric must convert to float.
        seeds: a count N (seeds 0..N-1) or a list of distinct int seeds.
        baseline: the configuration that delta_m compares with, or a dict from
            configuration to its own baseline configuration (e.g. each data size's
            multi-task model to the single-task networks of that size); None: no
            delta_m.
        higher_is_better: `{metric: bool}`, the metrics delta_m averages over
            (`keras_mtl.evaluation.delta_m`). Needed with `baseline`.
        path: a JSON file that keeps every finished run; finished
            (configuration, seed) pairs found there are not run again.
        settings: a JSON-serialisable dict describing what the runs share (data
            size, epochs, ...); stored in `path`, and a different value there is an
            error (the stored runs would not be comparable).
        confidence: the confidence level of the delta_m intervals.
        log: a function taking one progress line per run (None: silent).

    Returns:
        The stored dict: `"settings"`, `"runs"` (one dict per run: `configuration`,
        `seed`, `metrics`, `seconds`) and `"summary"` (see `summarize`).
    """
    if not isinstance(configurations, dict) or not configurations:
        raise ValueError(f"configurations must be a non-empty dict {{name: function(seed)}}. "
                         f"Received: {configurations!r}")
    for name, function in configurations.items():
        if not callable(function):
            raise TypeError(f"Configuration {name!r} must be a function of the seed. Received: {function!r}")
    for name in _baselines(baseline, configurations).values():
        if name not in configurations:
            raise ValueError(f"baseline {name!r} is not a configuration. Available: {sorted(configurations)}")
    if baseline is not None and not higher_is_better:
        raise ValueError("higher_is_better ({metric: bool}) is needed to compute delta_m against "
                         f"baseline {baseline!r}.")
    if baseline is not None:
        _scipy_stats()  # delta_m's t-test needs scipy: an error before the runs, not after
    seeds = _seed_list(seeds)
    settings = dict(settings or {})
    folder = os.path.dirname(os.path.abspath(path)) if path is not None else None
    if folder is not None and not os.path.isdir(folder):
        # Checked before the first run, whose result would be lost.
        raise ValueError(f"path={path!r}: its folder {folder} does not exist; create it first.")
    stored = {"format": FORMAT_VERSION, "settings": settings, "runs": []}
    if path is not None and os.path.exists(path):
        stored = load(path)
        if stored.get("settings", {}) != json.loads(json.dumps(settings)):
            raise ValueError(f"{path} holds runs with other settings: stored {stored.get('settings')}, "
                             f"given {settings}. Use another path, or the same settings.")
    done = {(r["configuration"], r["seed"]) for r in stored["runs"]}
    todo = [(name, seed) for seed in seeds for name in configurations if (name, seed) not in done]
    if log and done:
        log(f"{path}: {len(done)} finished runs kept, {len(todo)} to run")
    seconds_by_configuration = {}
    for index, (name, seed) in enumerate(todo):
        keras.utils.set_random_seed(seed)
        started = time.perf_counter()
        metrics = _metrics(name, seed, configurations[name](seed))
        seconds = time.perf_counter() - started
        stored["runs"].append({"configuration": name, "seed": seed, "metrics": metrics, "seconds": seconds})
        seconds_by_configuration.setdefault(name, []).append(seconds)
        if path is not None:
            save(path, stored)
        if log:
            log(_progress(index, todo, name, seed, seconds, seconds_by_configuration))
    stored["summary"] = summarize(stored["runs"], baseline, higher_is_better, confidence=confidence,
                                  seeds=seeds, configurations=list(configurations))
    if path is not None:
        save(path, stored)
    return stored


def _progress(index, todo, name, seed, seconds, seconds_by_configuration):
    """`[i/n] name seed s: 12 s; about 3.4 min left` (each remaining run estimated by
    its configuration's mean time so far, else the mean over all runs so far)."""
    every = [s for times in seconds_by_configuration.values() for s in times]
    overall = sum(every) / len(every)
    left = sum(np.mean(seconds_by_configuration[n]) if n in seconds_by_configuration else overall
               for n, _ in todo[index + 1:])
    return (f"[{index + 1}/{len(todo)}] {name} seed {seed}: {_minutes(seconds)}; "
            f"about {_minutes(left)} left")


def _baselines(baseline, names):
    """`{configuration: its baseline}` for the configurations that have one."""
    if baseline is None:
        return {}
    if isinstance(baseline, dict):
        unknown = sorted(set(baseline) - set(names))
        if unknown:
            raise ValueError(f"baseline names configurations that do not exist: {unknown}. Available: {sorted(names)}")
        return dict(baseline)
    return {name: baseline for name in names}


def summarize(runs, baseline=None, higher_is_better=None, confidence=0.95, seeds=None, configurations=None):
    """Per configuration: each metric's mean and standard deviation over seeds, and
    delta_m against the baseline trained with the same seed.

    Args:
        runs: dicts with `configuration`, `seed`, `metrics` (and `seconds`), as
            stored by `run`.
        baseline, higher_is_better, confidence: as for `run`.
        seeds, configurations: restrict the summary to these (default: all in `runs`).

    Returns:
        `{configuration: {...}}` with `seeds` (those finished), `is_baseline`, `metrics`
        (`{metric: {"mean", "std", "values"}}`, std with ddof=1, None for one seed),
        `seconds` (mean per run), and, with a baseline, `baseline` (its name), `delta_m` (`values` per
        paired seed, `mean`, `std`, and with two or more pairs `t`, `p`, `ci_low`,
        `ci_high`, and `exceeds_noise`: whether the interval excludes 0),
        `metric_changes` (`{metric: {"mean", "std"}}` of the per-seed relative change
        in %, delta_m's sign: positive is worse) and `paired_seeds`.
    """
    by_configuration = {}
    for r in runs:
        if (seeds is None or r["seed"] in seeds) and (configurations is None or r["configuration"] in configurations):
            by_configuration.setdefault(r["configuration"], {})[r["seed"]] = r
    order = configurations or list(by_configuration)
    baseline_of = _baselines(baseline, order)
    for name in set(baseline_of.values()):
        if name not in by_configuration:
            raise ValueError(f"No finished run of baseline {name!r}. Finished: {sorted(by_configuration)}")
    summary = {}
    for name in order:
        if name not in by_configuration:
            continue
        per_seed = by_configuration[name]
        finished = sorted(per_seed)
        metric_names = list(dict.fromkeys(m for s in finished for m in per_seed[s]["metrics"]))
        entry = {"seeds": finished, "is_baseline": name in baseline_of.values(), "metrics": {},
                 "seconds": float(np.mean([per_seed[s].get("seconds", math.nan) for s in finished]))}
        for metric in metric_names:
            values = np.array([per_seed[s]["metrics"][metric] for s in finished if metric in per_seed[s]["metrics"]])
            entry["metrics"][metric] = {"mean": float(values.mean()),
                                        "std": float(values.std(ddof=1)) if values.size > 1 else None,
                                        "values": values.tolist()}
        base = by_configuration[baseline_of[name]] if name in baseline_of else {}
        paired = [s for s in finished if s in base]
        if paired:
            entry["baseline"] = baseline_of[name]
            deltas = [delta_m(per_seed[s]["metrics"], base[s]["metrics"], higher_is_better) for s in paired]
            entry["paired_seeds"] = paired
            entry["delta_m"] = {"values": deltas, "mean": float(np.mean(deltas)),
                                "std": float(np.std(deltas, ddof=1)) if len(deltas) > 1 else None}
            if name != baseline_of[name] and len(deltas) > 1:
                test = paired_t_test(deltas, confidence=confidence)
                entry["delta_m"].update({k: test[k] for k in ("t", "p", "ci_low", "ci_high")})
                entry["delta_m"]["exceeds_noise"] = bool(test["ci_low"] > 0 or test["ci_high"] < 0)
            entry["metric_changes"] = {}
            for metric, higher in higher_is_better.items():
                changes = [delta_m(per_seed[s]["metrics"], base[s]["metrics"], {metric: higher}) for s in paired]
                entry["metric_changes"][metric] = {
                    "mean": float(np.mean(changes)),
                    "std": float(np.std(changes, ddof=1)) if len(changes) > 1 else None}
        summary[name] = entry
    return summary


def _mean_std(value, form):
    text = form.format(value["mean"])
    return text if value["std"] is None else f"{text} +- {form.format(value['std']).lstrip('+')}"


def format_table(summary, metrics=None, confidence=0.95):
    """The summary as text: one row per configuration, `mean +- std` per metric,
    delta_m (mean +- std over seeds), the paired test's p-value and verdict."""
    names = list(summary)
    metrics = metrics or list(dict.fromkeys(m for e in summary.values() for m in e["metrics"]))
    has_delta = any("delta_m" in e for e in summary.values())
    header = ["configuration", "seeds"] + list(metrics) + (["delta_m %", "p", "vs noise"] if has_delta else []) + ["s/run"]
    rows = []
    for name in names:
        entry = summary[name]
        row = [name, str(len(entry["seeds"]))]
        for m in metrics:
            value = entry["metrics"].get(m)
            row.append("-" if value is None else _mean_std(value, "{:.4f}"))
        if has_delta:
            d = entry.get("delta_m")
            row.append("-" if d is None else _mean_std(d, "{:+.2f}"))
            row.append(f"{d['p']:.3f}" if d and "p" in d else "-")
            row.append("-" if not d or "exceeds_noise" not in d else
                       ("exceeds" if d["exceeds_noise"] else "within"))
        row.append(f"{entry['seconds']:.0f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    if has_delta:
        lines.append(f"delta_m: lower is better, per seed against the baseline of the same seed; p: paired "
                     f"t-test of the per-seed delta_m; 'exceeds': the {confidence:.0%} interval excludes 0.")
    return "\n".join(lines)


def write_csv(stored, path):
    """Writes one row per run: configuration, seed, seconds, every metric, and
    delta_m against the baseline of the same seed where the summary has it."""
    runs = stored["runs"]
    summary = stored.get("summary", {})
    metric_names = list(dict.fromkeys(m for r in runs for m in r["metrics"]))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["configuration", "seed", "seconds", "delta_m"] + metric_names)
        for r in runs:
            entry = summary.get(r["configuration"], {})
            delta = ""
            if "delta_m" in entry and r["seed"] in entry["paired_seeds"]:
                delta = repr(entry["delta_m"]["values"][entry["paired_seeds"].index(r["seed"])])
            writer.writerow([r["configuration"], r["seed"], repr(r["seconds"]), delta]
                            + [repr(r["metrics"][m]) if m in r["metrics"] else "" for m in metric_names])


def compare_ranking(summary, published, names=None):
    """How the summary's delta_m ranking agrees with a published one.

    Args:
        summary: `summarize`'s result (with a baseline).
        published: `{method: delta_m}` from a paper's table (lower is better).
        names: `{configuration: published name}` where they differ (e.g.
            `{"equal": "LS", "uncertainty": "UW"}`); others are matched by name.

    Returns:
        A dict: `methods` (`[(configuration, our mean delta_m, published delta_m)]`
        for the configurations in both, ours best first), `spearman`, `kendall_tau`,
        and `missing` (configurations without a published value).
    """
    names = dict(names or {})
    methods, missing = [], []
    for configuration, entry in summary.items():
        if entry.get("is_baseline") or "delta_m" not in entry:
            continue
        key = names.get(configuration, configuration)
        if key in published:
            methods.append((configuration, entry["delta_m"]["mean"], float(published[key])))
        else:
            missing.append(configuration)
    if len(methods) < 2:
        raise ValueError(f"Need at least 2 configurations with a published value; matched {methods}. "
                         f"Published: {sorted(published)}")
    methods.sort(key=lambda m: m[1])
    ours, theirs = [m[1] for m in methods], [m[2] for m in methods]
    return {"methods": methods, "spearman": spearman(ours, theirs), "kendall_tau": kendall_tau(ours, theirs),
            "missing": missing}
