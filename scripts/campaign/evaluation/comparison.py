"""Configurations compared with their uncertainty: seed replicates pooled, paired findings.

A configuration trained with several seeds (`replicates`) is one *group*:
its value is the mean over its seeds, and its bootstrap distribution draws
both the images (the same draws for every group: bootstrap.py) and, for each
draw, its seeds with replacement, so that the interval carries the seed's
randomness as well as the test set's.

A *finding* answers one question of the campaign: two groups that differ in
exactly one argument (freeze 0 against 10 at the same model, batch and image
size; batch 64 against 96; size n against s ...). Its interval is that of
the difference, resample by resample on the same images: far narrower than
the two intervals side by side when both models find the same images hard.

A campaign asks many such questions at once (the course about 40), and at
95 % one in twenty differences that are not there would still be "shown".
Each finding therefore also has its bootstrap p-value and Holm's adjustment
over all the findings of the table; `answer_adjusted` is the answer that
holds for all of them together. With one seed per configuration the
intervals cover the sampling of the test images only, not the training's
own randomness (a second seed can differ by more): the report says so.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from campaign.core.configurations import model_order
from campaign.core.records import read_json_record
from campaign.evaluation.bootstrap import METRICS, load_bootstrap, percentile_interval


@dataclass
class Group:
    """One configuration with all its seed replicates."""

    name: str
    key: dict[str, Any]  # the arguments that define it, seed excepted
    runs: list[str]
    values: np.ndarray  # (runs, 4): each run's metrics on the split
    resampled: np.ndarray  # (runs, resamples, 4): each run's metrics on each resample

    @property
    def value(self) -> np.ndarray:
        return self.values.mean(axis=0)

    @property
    def seed_sd(self) -> np.ndarray:
        """Spread of the metrics over seeds (NaN with one seed)."""
        if len(self.runs) < 2:
            return np.full(len(METRICS), np.nan)
        return self.values.std(axis=0, ddof=1)

    def pooled(self, seed: int) -> np.ndarray:
        """(resamples, 4): the seed-mean on each image resample, the seeds drawn with replacement."""
        runs, resamples, _ = self.resampled.shape
        if runs == 1:
            return self.resampled[0]
        rng = np.random.default_rng((seed, zlib.crc32(self.name.encode())))
        drawn = rng.integers(0, runs, size=(resamples, runs))
        return self.resampled[drawn, np.arange(resamples)[:, None]].mean(axis=1)


def load_groups(runs: list[dict[str, Any]], intervals: dict[str, Path], resampled: dict[str, Path]) -> list[Group]:
    """Groups from each run's key and group name, its intervals.json and its bootstrap.npz (by run).

    Raises ValueError when runs were resampled over different images: their
    draws would not be paired.
    """
    groups: dict[str, Group] = {}
    hashes = {}
    for run in runs:
        draws, images_hash = load_bootstrap(resampled[run["config"]])
        hashes[run["config"]] = images_hash
        point = _point(intervals[run["config"]])
        group = groups.setdefault(
            run["group"],
            Group(run["group"], run["key"], [], np.zeros((0, len(METRICS))), np.zeros((0, *draws.shape))),
        )
        if group.resampled.shape[1:] != draws.shape:
            raise ValueError(
                f"{run['config']}: {draws.shape[0]} bootstrap resamples, others of its group "
                f"{group.resampled.shape[1]}; rerun its bootstrap rule"
            )
        group.runs.append(run["config"])
        group.values = np.vstack([group.values, point])
        group.resampled = np.concatenate([group.resampled, draws[None]])
    if len(set(hashes.values())) > 1:
        raise ValueError(
            "the configurations were evaluated on different images, so their bootstrap draws are not paired: "
            f"{hashes}; rerun their evaluation on the current dataset"
        )
    return list(groups.values())


def _point(intervals_json: Path) -> np.ndarray:
    summary = read_json_record(intervals_json)
    return np.array([summary[metric]["value"] for metric in METRICS])


def group_rows(groups: list[Group], seed: int, level: float, prefix: str) -> list[dict[str, Any]]:
    """One row per group: its arguments, runs, and each metric's mean, interval and seed spread."""
    rows = []
    for group in groups:
        row: dict[str, Any] = {"group": group.name, **group.key, "runs": len(group.runs)}
        pooled = group.pooled(seed)
        for index, metric in enumerate(METRICS):
            low, high = percentile_interval(pooled[:, index], level)
            row[f"{prefix}{metric}"] = round(float(group.value[index]), 4)
            row[f"{prefix}{metric}_low"] = round(low, 4)
            row[f"{prefix}{metric}_high"] = round(high, 4)
            row[f"{prefix}{metric}_seed_sd"] = round(float(group.seed_sd[index]), 4)
        rows.append(row)
    return rows


def single_differences(groups: list[Group]) -> list[tuple[str, Group, Group]]:
    """Pairs of groups whose keys differ in exactly one argument, as (argument, lower, higher value)."""
    pairs = []
    for index, first in enumerate(groups):
        for second in groups[index + 1 :]:
            differing = [key for key in first.key if first.key[key] != second.key.get(key)]
            if len(differing) == 1 and set(first.key) == set(second.key):
                argument = differing[0]
                low, high = sorted((first, second), key=lambda g: _order(argument, g.key[argument]))
                pairs.append((argument, low, high))
    return sorted(pairs, key=lambda pair: (pair[0], pair[1].name, pair[2].name))


def _order(argument: str, value: Any) -> Any:
    """Natural order of an argument's values: model sizes n < s < m < l < x within a family."""
    return model_order(value) if argument == "model" else value


def _shared(key: dict[str, Any], argument: str) -> str:
    return " ".join(f"{name}={value}" for name, value in key.items() if name != argument)


def bootstrap_p_value(difference: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from the paired resampled differences (with the +1 correction)."""
    count = len(difference)
    below, above = int(np.sum(difference <= 0)), int(np.sum(difference >= 0))
    return min(1.0, 2 * (min(below, above) + 1) / (count + 1))


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values: below alpha, a finding holds with all the others at level alpha."""
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def findings(
    groups: list[Group],
    metric: str,
    split: str,
    seed: int,
    level: float,
    batch_notes: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every single-argument comparison: the difference (second minus first) with its paired interval.

    `answer` reads the interval alone; `answer_adjusted` holds after Holm's adjustment over every
    comparison of the table. `batch_notes` (by group): where a side trained partly at another batch
    than configured, the row says so in `batch_caveat` and both answers start with it.
    """
    column = METRICS.index(metric)
    pooled = {group.name: group.pooled(seed)[:, column] for group in groups}
    notes = batch_notes or {}
    rows = []
    for argument, first, second in single_differences(groups):
        difference = pooled[second.name] - pooled[first.name]
        low, high = percentile_interval(difference, level)
        point = float(second.value[column] - first.value[column])
        if low > 0:
            answer = f"{argument}={second.key[argument]} higher"
        elif high < 0:
            answer = f"{argument}={first.key[argument]} higher"
        else:
            answer = "no difference shown"
        caveat = "; ".join(
            f"{argument}={group.key[argument]}: {notes[group.name]}"
            for group in (first, second)
            if notes.get(group.name)
        )
        rows.append(
            {
                "argument": argument,
                "first": first.key[argument],
                "second": second.key[argument],
                "shared": _shared(first.key, argument),
                "split": split,
                "metric": metric,
                "first_value": round(float(first.value[column]), 4),
                "second_value": round(float(second.value[column]), 4),
                "difference": round(point, 4),
                "low": round(low, 4),
                "high": round(high, 4),
                "excludes_zero": bool(low > 0 or high < 0),
                "answer": answer,
                "p_value": bootstrap_p_value(difference),
                "batch_caveat": caveat,
                "first_runs": len(first.runs),
                "second_runs": len(second.runs),
                "first_group": first.name,
                "second_group": second.name,
            }
        )
    alpha = 1 - level
    for row, adjusted in zip(rows, holm_adjusted([row["p_value"] for row in rows])):
        row["p_value"] = round(row["p_value"], 4)
        row["holm_p"] = round(adjusted, 4)
        shown = row["excludes_zero"] and adjusted <= alpha
        row["answer_adjusted"] = row["answer"] if shown else "no difference shown"
        if row["batch_caveat"]:  # never answered silently on a batch that was not the one configured
            for key in ("answer", "answer_adjusted"):
                row[key] = f"not as configured ({row['batch_caveat']}): {row[key]}"
    return rows


def run_entries(run_rows: list[dict[str, Any]], keys: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"config": row["config"], "group": row["group"], "key": keys[row["config"]]} for row in run_rows]


def group_table(
    run_rows: list[dict[str, Any]],
    keys: dict[str, dict[str, Any]],
    splits: list[str],
    intervals: dict[tuple[str, str], Path],
    resampled: dict[tuple[str, str], Path],
    seed: int,
    level: float,
) -> list[dict[str, Any]]:
    """The summary table's runs pooled by group: each split's metrics with intervals, mean latency, notes.

    `intervals` and `resampled`: each run's intervals.json and bootstrap.npz by (run, split).
    """
    by_group: dict[str, dict[str, Any]] = {}
    for split in splits:
        of_split = {run: path for (run, on), path in intervals.items() if on == split}
        draws = {run: path for (run, on), path in resampled.items() if on == split}
        for row in group_rows(load_groups(run_entries(run_rows, keys), of_split, draws), seed, level, f"{split}_"):
            by_group.setdefault(row["group"], {}).update(row)
    for row in by_group.values():
        members = [run for run in run_rows if run["group"] == row["group"]]
        # A group's runs share their network's timing (timing.py); the spread spans every member's.
        pooled = {"latency_ms": np.mean, "latency_ms_p10": np.min, "latency_ms_p90": np.max, "end_to_end_ms": np.mean}
        for column, pool in pooled.items():
            values = [float(run[column]) for run in members if column in run]
            row[column] = round(float(pool(values)), 3) if values else np.nan
        row["speed_device"] = members[0].get("speed_device", "")
        row["batch_note"] = "; ".join(sorted({run["batch_note"] for run in members if run["batch_note"]}))
        row["configs"] = " ".join(run["config"] for run in members)
    return list(by_group.values())
