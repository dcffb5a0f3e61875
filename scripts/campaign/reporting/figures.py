"""Summary and dataset figures. Each function reads data files and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from campaign.core.configurations import SIZE_ORDER
from campaign.core.epoch_table import read_epoch_table  # noqa: E402
from campaign.core.io import atomic_write_bytes  # noqa: E402


def save_figure(figure, path: str | Path) -> None:
    """Render to memory first, so an interrupted job never leaves half a PNG."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Families, then sizes n to x, then frozen layers, batch and image size."""
    family, size = table["model"].str[:-1], table["model"].str[-1].map(SIZE_ORDER.index)
    table = table.assign(_family=family, _size=size)
    return table.sort_values(["_family", "_size", "freeze", "batch", "imgsz", "group"])


def _error_bars(table: pd.DataFrame, column: str) -> np.ndarray:
    """(2, n) distances from each value down to its interval's low end and up to its high end."""
    values = table[column].to_numpy(float)
    return np.vstack(
        [values - table[f"{column}_low"].to_numpy(float), table[f"{column}_high"].to_numpy(float) - values]
    )


def _runs_note(table: pd.DataFrame) -> str:
    runs = sorted(set(table["runs"]))
    return "one seed each" if runs == [1] else f"mean of {'/'.join(map(str, runs))} seeds"


REDUCED_MARK = "*"
REDUCED_FOOTNOTE = "* trained, at least partly, with a smaller batch than its name says (see batch_note)"


def _reduced(row) -> str:
    """The mark of a configuration whose batch was reduced after running out of memory."""
    note = getattr(row, "batch_note", "")
    return REDUCED_MARK if isinstance(note, str) and note else ""


def _footnote(figure, table: pd.DataFrame) -> None:
    if any(_reduced(row) for row in table.itertuples()):
        figure.text(0.01, 0.005, REDUCED_FOOTNOTE, fontsize=7, ha="left", va="bottom")


def map_by_config(groups_csv: Path, out: Path) -> None:
    """Bars of mAP50 and mAP50-95 on each split, with their bootstrap intervals as error bars."""
    table = _ordered(pd.read_csv(groups_csv))
    splits = [s for s in ("val", "test") if f"{s}_mAP50-95" in table]
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(table) + 2), 4.5))
    x = np.arange(len(table))
    width = 0.8 / (2 * len(splits))
    for index, (split, metric) in enumerate((s, m) for s in splits for m in ("mAP50", "mAP50-95")):
        column = f"{split}_{metric}"
        bars = axis.bar(
            x + (index - (2 * len(splits) - 1) / 2) * width,
            table[column],
            width,
            yerr=_error_bars(table, column),
            error_kw={"elinewidth": 0.8, "capsize": 2},
            label=f"{split} {metric}",
        )
        axis.bar_label(bars, fmt="%.2f", fontsize=6, rotation=90, padding=2)
    labels = [f"{r.model}\nfreeze {r.freeze}\nb{r.batch}{_reduced(r)} img{r.imgsz}" for r in table.itertuples()]
    axis.set_xticks(x, labels, fontsize=8)
    axis.set_ylim(0, 1.15)
    axis.set_ylabel("mAP")
    axis.set_title(f"Accuracy by configuration ({_runs_note(table)}; bars: bootstrap intervals)")
    axis.legend(fontsize=8, ncol=len(splits) * 2, loc="upper left")
    axis.grid(axis="y", alpha=0.3)
    _footnote(figure, table)
    save_figure(figure, out)


def pareto_front(
    latency: np.ndarray, accuracy: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> list[int]:
    """Indices of points no other beats, fastest first.

    One point beats another when it is at least as accurate and at least as
    fast, and better in one of the two. With a latency spread (`low`, `high`:
    each timing's 10th and 90th percentile), a latency counts as faster only
    where the two spreads do not overlap: latencies within each other's
    spread are equal, and the more accurate point wins, however their
    medians fall.
    """
    low = latency if low is None else low
    high = latency if high is None else high

    def beats(j: int, i: int) -> bool:
        as_fast = low[j] <= high[i]  # not clearly slower
        faster = high[j] < low[i]  # clearly faster
        return accuracy[j] >= accuracy[i] and as_fast and (accuracy[j] > accuracy[i] or faster)

    points = range(len(latency))
    unbeaten = [i for i in points if not any(beats(j, i) for j in points if j != i)]
    return sorted(unbeaten, key=lambda i: (latency[i], -accuracy[i]))


def accuracy_vs_latency(groups_csv: Path, out: Path) -> None:
    """Test mAP50-95 (with its interval) against latency at batch 1 (with its spread), and the Pareto front."""
    table = pd.read_csv(groups_csv)
    split = "test" if "test_mAP50-95" in table else "val"
    latency = table["latency_ms"].to_numpy(float)
    low = table["latency_ms_p10"].to_numpy(float) if "latency_ms_p10" in table else latency
    high = table["latency_ms_p90"].to_numpy(float) if "latency_ms_p90" in table else latency
    accuracy = table[f"{split}_mAP50-95"].to_numpy(float)
    errors = _error_bars(table, f"{split}_mAP50-95")
    spread = np.vstack([latency - low, high - latency])
    figure, axis = plt.subplots(figsize=(7, 5))
    for freeze, marker in zip(sorted(table["freeze"].unique()), "os^Dv"):
        rows = (table["freeze"] == freeze).to_numpy()
        axis.errorbar(
            latency[rows],
            accuracy[rows],
            xerr=spread[:, rows],
            yerr=errors[:, rows],
            fmt=marker,
            ms=7,
            capsize=3,
            label=f"freeze {freeze}",
        )
    for row, x, y in zip(table.itertuples(), latency, accuracy):
        axis.annotate(row.group + _reduced(row), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    _footnote(figure, table)
    front = pareto_front(latency, accuracy, low, high)
    axis.plot(latency[front], accuracy[front], "k--", lw=1, label="Pareto front (latencies within spread equal)")
    device = table["speed_device"].iloc[0] if "speed_device" in table else ""
    axis.set_xlabel(f"latency per image at batch 1, fp32 (ms; bars: 10th-90th percentile) on {device}")
    axis.set_ylabel(f"{split} mAP50-95 ({_runs_note(table)}; bars: bootstrap interval)")
    axis.margins(0.15)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    save_figure(figure, out)


def training_curves(results_csvs: dict[str, Path], out: Path) -> None:
    """Validation mAP and losses per epoch, one line per configuration."""
    panels = [
        ("metrics/mAP50-95(B)", "val mAP50-95"),
        ("train/box_loss", "train box loss"),
        ("val/box_loss", "val box loss"),
        ("train/cls_loss", "train cls loss"),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for name, path in results_csvs.items():
        table = pd.DataFrame(read_epoch_table(path))  # a damaged table stops the figure, naming its line
        for axis, (column, title) in zip(axes.flat, panels):
            axis.plot(table["epoch"], table[column], label=name, lw=1.4)
            axis.set_title(title)
    for axis in axes[1]:
        axis.set_xlabel("epoch")
    for axis in axes.flat:
        axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    save_figure(figure, out)


def per_class_ap(per_class_csvs: dict[str, Path], split: str, out: Path) -> None:
    """AP50-95 of every class (columns) for every configuration (rows) on one split."""
    frames = []
    for name, path in per_class_csvs.items():
        table = pd.read_csv(path)
        table["config"] = name
        frames.append(table)
    grid = pd.concat(frames).pivot(index="config", columns="class", values="mAP50-95")
    figure, axis = plt.subplots(figsize=(1.2 * len(grid.columns) + 4, 0.45 * len(grid) + 2))
    image = axis.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axis.set_xticks(range(len(grid.columns)), grid.columns, rotation=30, ha="right")
    axis.set_yticks(range(len(grid)), grid.index, fontsize=8)
    for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
        if not np.isnan(value):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k")
    figure.colorbar(image, label=f"{split} AP50-95")
    axis.set_title("Per-class AP by configuration")
    save_figure(figure, out)


def dataset_tables(manifest_csv: Path, split_lists: dict[str, Path], classes: list[str]):
    """Per-box table (split, class, box) and the overview of images/instances per class and split."""
    manifest = pd.read_csv(manifest_csv, dtype=str, keep_default_na=False)
    split_of = {}
    for split, path in split_lists.items():
        for line in Path(path).read_text().splitlines():
            split_of[line.strip().removeprefix("./")] = split
    root = Path(manifest_csv).parent
    boxes = []
    for row in manifest.itertuples():
        for line in (root / row.label).read_text().splitlines():
            cls, xc, yc, w, h = line.split()
            boxes.append((split_of[row.image], row.image, classes[int(cls)], *map(float, (xc, yc, w, h))))
    boxes = pd.DataFrame(boxes, columns=["split", "image", "class", "xc", "yc", "w", "h"])
    splits = list(split_lists)
    overview = []
    for name in classes + ["all"]:
        picked = boxes if name == "all" else boxes[boxes["class"] == name]
        entry = {"class": name}
        for split in splits:
            in_split = picked[picked["split"] == split]
            images = sum(1 for s in split_of.values() if s == split) if name == "all" else in_split["image"].nunique()
            entry[f"{split}_images"] = images
            entry[f"{split}_instances"] = len(in_split)
        overview.append(entry)
    return boxes, pd.DataFrame(overview)


def dataset_overview(overview: pd.DataFrame, out: Path) -> None:
    figure, axis = plt.subplots(figsize=(1.3 * len(overview.columns) + 1, 0.4 * len(overview) + 1.2))
    axis.axis("off")
    table = axis.table(
        cellText=overview.values, colLabels=[c.replace("_", "\n") for c in overview.columns], loc="center"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.6)
    axis.set_title("Images and instances per class and split")
    save_figure(figure, out)


def label_analysis(boxes: pd.DataFrame, classes: list[str], out: Path) -> None:
    splits = list(dict.fromkeys(["train", "val", "test"]))
    figure, axes = plt.subplots(len(classes) + 1, 3, figsize=(12, 3.2 * (len(classes) + 1)))
    counts = (
        boxes.groupby(["class", "split"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=classes, columns=splits, fill_value=0)
    )
    counts.plot.bar(ax=axes[0, 0], rot=0)
    axes[0, 0].set_title("instances per class and split")
    axes[0, 1].hist(boxes["w"], bins=30, alpha=0.6, label="width")
    axes[0, 1].hist(boxes["h"], bins=30, alpha=0.6, label="height")
    axes[0, 1].set_title("box size (all classes, fraction of image)")
    axes[0, 1].legend()
    axes[0, 2].axis("off")
    for row, name in enumerate(classes, start=1):
        picked = boxes[boxes["class"] == name]
        axes[row, 0].hist2d(picked["xc"], picked["yc"], bins=20, range=[[0, 1], [0, 1]], cmap="Blues")
        axes[row, 0].invert_yaxis()
        axes[row, 0].set_title(f"{name}: box centres (all splits)")
        for split in splits:
            chosen = picked[picked["split"] == split]
            axes[row, 1].scatter(chosen["w"], chosen["h"], s=6, alpha=0.5, label=split)
        axes[row, 1].set_title(f"{name}: width vs height")
        axes[row, 1].set_xlim(0, 1)
        axes[row, 1].set_ylim(0, 1)
        axes[row, 1].legend(fontsize=7)
        for split in splits:
            chosen = picked[picked["split"] == split]
            axes[row, 2].hist(chosen["w"] * chosen["h"], bins=20, range=(0, 0.3), alpha=0.5, label=split)
        axes[row, 2].set_title(f"{name}: box area per split")
        axes[row, 2].legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, out)


def device_intervals(monitor_csvs: dict[str, Path], gap_seconds: float = 30.0) -> pd.DataFrame:
    """Busy intervals per configuration and device, from the monitor samples.

    A device is named with its host ("server-a gpu0"): two servers each have
    a gpu0. A pause longer than `gap_seconds` between samples (a job
    interrupted and resumed later) splits a training into separate intervals.
    """
    rows = []
    for name, path in monitor_csvs.items():
        if not Path(path).is_file():
            continue
        samples = pd.read_csv(path, dtype={"host": str})
        if "host" not in samples:  # written before hosts were recorded
            samples["host"] = ""
        samples["host"] = samples["host"].fillna("")
        for (host, device), group in samples.groupby(["host", "device"]):
            times = group["time"].to_numpy(float)
            breaks = np.flatnonzero(np.diff(times) > gap_seconds)
            for start, end in zip(np.r_[0, breaks + 1], np.r_[breaks, len(times) - 1]):
                chunk = group.iloc[start : end + 1]
                rows.append(
                    {
                        "config": name,
                        "host": host,
                        "device": f"{host} {device}".strip(),
                        "start": times[start],
                        "end": max(times[end], times[start] + 1.0),
                        "utilization": chunk["utilization"].astype(float).mean(),
                    }
                )
    return pd.DataFrame(rows, columns=["config", "host", "device", "start", "end", "utilization"])


def busy_fractions(intervals: pd.DataFrame) -> pd.DataFrame:
    """Per host and device: the share of the campaign's span during which some job held it."""
    columns = ["host", "device", "busy_seconds", "campaign_seconds", "busy_fraction"]
    if intervals.empty:
        return pd.DataFrame(columns=columns)
    span = intervals["end"].max() - intervals["start"].min()
    rows = []
    for (host, device), group in intervals.groupby(["host", "device"]):
        busy, reach = 0.0, -np.inf
        for start, end in sorted(zip(group["start"], group["end"])):
            busy += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        rows.append(
            {
                "host": host,
                "device": device,
                "busy_seconds": busy,
                "campaign_seconds": span,
                "busy_fraction": busy / span,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def campaign_timeline(intervals: pd.DataFrame, fractions: pd.DataFrame, out: Path) -> None:
    """Which configuration ran on which device when, coloured by its mean utilisation."""
    # Jobs that overlap on one device (several CPU jobs) get a lane each.
    lanes: dict[str, list[float]] = {}  # lane name -> end of its last bar
    placed = []
    for row in intervals.sort_values("start").itertuples():
        number = 0
        while lanes.get(name := row.device if number == 0 else f"{row.device} #{number + 1}", -np.inf) > row.start:
            number += 1
        lanes[name] = row.end
        placed.append((name, row))
    devices = sorted(lanes) or ["cpu"]
    figure, axis = plt.subplots(figsize=(11, 1.2 + 0.9 * len(devices)))
    origin = intervals["start"].min() if not intervals.empty else 0.0
    colours = plt.get_cmap("viridis")
    for name, row in placed:
        lane = devices.index(name)
        axis.broken_barh(
            [((row.start - origin) / 60, (row.end - row.start) / 60)],
            (lane - 0.4, 0.8),
            facecolors=colours(min(row.utilization, 100) / 100),
            edgecolor="k",
            linewidth=0.5,
        )
        axis.text((row.start + row.end) / 2 / 60 - origin / 60, lane, row.config, ha="center", va="center", fontsize=6)
    share = dict(zip(fractions["device"], fractions["busy_fraction"])) if not fractions.empty else {}
    labels = [f"{d}\n{share[d]:.0%} busy" if d in share else d for d in devices]  # "cpu #2": a second lane
    axis.set_yticks(range(len(devices)), labels)
    axis.set_xlabel("minutes since the first training started")
    axis.set_title("Campaign timeline (colour: mean utilisation, 0% dark to 100% yellow)")
    axis.grid(axis="x", alpha=0.3)
    save_figure(figure, out)


def imgsz_study(study_csvs: list[Path], out: Path) -> None:
    """mAP50-95 against image size and against latency, one line per configuration."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for path in study_csvs:
        table = pd.read_csv(path).sort_values("imgsz")
        name = Path(path).stem
        left.plot(table["imgsz"], table["mAP50-95"], "o-", label=name, lw=1.4, ms=4)
        latency = table["preprocess_ms"] + table["inference_ms"] + table["postprocess_ms"]
        right.plot(latency, table["mAP50-95"], "o-", label=name, lw=1.4, ms=4)
        for size, x, y in zip(table["imgsz"], latency, table["mAP50-95"]):
            right.annotate(str(size), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    split = pd.read_csv(study_csvs[0])["split"].iloc[0] if study_csvs else "val"
    left.set_xlabel("image size (px)")
    # Measured by the validation passes themselves, beside other jobs: the curve's shape, not a timing.
    right.set_xlabel("latency per image in validation, pre + inference + post (ms; not exclusive)")
    for axis in (left, right):
        axis.set_ylabel(f"{split} mAP50-95")
        axis.margins(0.08)
        axis.grid(alpha=0.3)
    left.legend(fontsize=7)
    figure.suptitle("Image-size study (points on the right are labelled with their image size)")
    save_figure(figure, out)
