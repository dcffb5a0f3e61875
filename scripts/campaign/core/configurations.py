"""Expand the campaign section of the config into named training configurations.

A configuration's name is derived from its own arguments only, never from its
position in the matrix, so adding or removing other configurations never
renames it (and so never invalidates its results).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from campaign.core.layout import WORKFLOW_DIR
from campaign.core.ultralytics_rules import argument_rules

HYPERPARAMETER_FILE = Path(__file__).with_name("hyperparameters.yaml")

# Name parts that every configuration shows, in this order.
NAMED_PARTS = (("model", ""), ("batch", "b"), ("imgsz", "img"), ("freeze", "freeze"))
# Further arguments appear in the name only where they differ from the
# campaign defaults, so that the common case stays short.
OPTIONAL_PARTS = (
    ("epochs", "ep"),
    ("hyp", ""),
    ("pretrained", ""),
    ("gpus", "gpu"),
    ("patience", "pat"),
    ("seed", "seed"),
)
SCHEMA = WORKFLOW_DIR / "schemas" / "config.schema.yaml"
# Ultralytics freezes a model's first `freeze` layers by index. Backbone and
# total layer counts of each family's YAML (the last layer is the Detect head).
BACKBONE_LAYERS = {"yolov5": 10, "yolov8": 10, "yolo11": 11, "yolo26": 11}
TOTAL_LAYERS = {"yolov5": 25, "yolov8": 23, "yolo11": 24, "yolo26": 24}
# Model sizes from the smallest: yolov8n < yolov8s < yolov8m < yolov8l < yolov8x.
SIZE_ORDER = "nsmlx"
# Every model a campaign may name: a family above and a size (the schema's enum lists the same).
MODELS = [f"{family}{size}" for family in BACKBONE_LAYERS for size in SIZE_ORDER]


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who edits config.yaml."""


@dataclass(frozen=True)
class RunConfig:
    """One training configuration of the campaign."""

    name: str
    model: str
    batch: int
    imgsz: int
    freeze: int
    epochs: int
    hyp: str
    pretrained: bool
    gpus: int
    patience: int
    seed: int
    workers: int | None
    args: dict[str, Any] = field(default_factory=dict, hash=False)
    # The configuration this one is a seed replicate of (its own name when it has none).
    group: str = ""

    def __post_init__(self):
        if not self.group:
            object.__setattr__(self, "group", self.name)

    @property
    def family(self) -> str:
        return self.model[:-1]

    @property
    def size(self) -> str:
        return self.model[-1]

    def parameters(self) -> dict[str, Any]:
        """The arguments that define this configuration, for tables and labels."""
        return {
            "config": self.name,
            "group": self.group,
            "model": self.model,
            "size": self.size,
            "batch": self.batch,
            "imgsz": self.imgsz,
            "freeze": self.freeze,
            "epochs": self.epochs,
            "hyp": self.hyp,
            "pretrained": self.pretrained,
            "gpus": self.gpus,
            "seed": self.seed,
        }

    def comparison_key(self) -> dict[str, Any]:
        """Every argument that defines this configuration but its seed: what seed replicates share,
        and what two configurations compared in the findings differ in."""
        key = {
            name: value for name, value in self.parameters().items() if name not in ("config", "group", "size", "seed")
        }
        return {**key, "patience": self.patience, "args": json.dumps(self.args, sort_keys=True)}

    def train_args(self) -> dict[str, Any]:
        """Resolved Ultralytics training arguments (without paths and device).

        This dict goes into the training rule's `params`, so changing any
        argument of this configuration reruns exactly its jobs.
        """
        args = dict(hyperparameter_sets()[self.hyp])
        args.update(
            epochs=self.epochs,
            batch=self.batch,
            imgsz=self.imgsz,
            freeze=self.freeze or None,
            patience=self.patience,
            seed=self.seed,
            workers=self.workers,
            deterministic=True,
        )
        args.update(self.args)
        return args

    def expected_cost(self) -> float:
        """Relative training cost, for scheduling the longest trainings first.

        Forward-pass GFLOPs at 640 px of each size (from the Ultralytics model
        tables), scaled by image area and epochs; a frozen backbone skips its
        backward pass (about a third of the work).
        """
        gflops = {"n": 8.7, "s": 28.6, "m": 78.9, "l": 165.2, "x": 257.8}[self.size]
        cost = gflops * (self.imgsz / 640) ** 2 * self.epochs
        return cost * (0.7 if self.freeze else 1.0) / max(self.gpus, 1)

    def args_hash(self) -> str:
        return stable_hash({"model": self.model, "pretrained": self.pretrained, **self.train_args()})


def model_order(model: str) -> tuple[str, int]:
    """Sort key of a model name: by family, then by size (n, s, m, l, x), never alphabetically (l < m < n < s)."""
    size = model[-1]
    return model[:-1], SIZE_ORDER.index(size) if size in SIZE_ORDER else len(SIZE_ORDER)


def stable_hash(value: Any) -> str:
    """Short content hash of a JSON-serialisable value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@cache
def hyperparameter_sets() -> dict[str, dict[str, Any]]:
    with HYPERPARAMETER_FILE.open() as handle:
        return yaml.safe_load(handle)


@cache
def ultralytics_arguments() -> dict[str, Any]:
    """Every argument Ultralytics' trainer knows, with its default, from its own defaults file.

    Read without importing Ultralytics, which is slow to import.
    """
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return {}  # not installed here: the training job reports it
    defaults = Path(spec.submodule_search_locations[0]) / "cfg" / "default.yaml"
    with defaults.open() as handle:
        return yaml.safe_load(handle)


def _closest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3)
    return f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"


# Arguments `args` may not set: those a configuration's name shows (the name
# would then say one thing while another trains) and those the workflow sets
# for every training itself.
CAMPAIGN_KEYS = ("model", "batch", "imgsz", "freeze", "epochs", "hyp", "pretrained", "patience", "seed", "workers")
WORKFLOW_KEYS = ("data", "project", "name", "exist_ok", "device", "resume")


def _check_args(run: dict[str, Any], origin: dict[str, str]) -> None:
    known = ultralytics_arguments()
    for key, value in (run.get("args") or {}).items():
        where = f"{origin['args']}.{key}"
        if key in CAMPAIGN_KEYS:
            raise ConfigError(
                f"{where}: {key} is part of what a configuration's name says; set it as a campaign key "
                f"(campaign.defaults.{key}, a campaign.matrix list, an override's `set` or an extra's {key}), "
                "not in args"
            )
        if key in WORKFLOW_KEYS:
            raise ConfigError(f"{where}: the workflow sets {key} for every training itself; remove it from args")
        if known and key not in known:
            raise ConfigError(
                f"{where} is not an Ultralytics training argument ({_closest(key, known)}); "
                "every argument is listed in ultralytics/cfg/default.yaml"
            )
        default = known.get(key) if known else None
        numeric_default = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric_default and (isinstance(value, (str, bool)) or value is None):
            raise ConfigError(
                f"{where}: {value!r} is not a number, and Ultralytics expects one (its default is {default!r}); "
                "write it as a number without quotes, e.g. 0.001"
            )
        rules = argument_rules()
        said = rules.problem(key, value) if rules else None
        if said:
            raise ConfigError(f"{where}: {said}")


def _check_pattern_matched(where: str, pattern: dict[str, Any], hits: int, defaults: dict[str, Any]) -> None:
    """An exclude or override that matches no configuration is a typo somewhere: say where."""
    if hits:
        return
    unknown = [key for key in pattern if key not in defaults]
    hint = (
        f"{unknown[0]!r} is not a configuration key ({_closest(unknown[0], defaults)})"
        if unknown
        else "no combination of campaign.defaults and campaign.matrix has these values"
    )
    raise ConfigError(f"{where}: {pattern} matches no configuration: {hint}")


def _matches(run: dict[str, Any], pattern: dict[str, Any]) -> bool:
    return all(run.get(key) == value for key, value in pattern.items())


def _name(run: dict[str, Any], defaults: dict[str, Any]) -> str:
    parts = [f"{prefix}{run[key]}" for key, prefix in NAMED_PARTS]
    for key, prefix in OPTIONAL_PARTS:
        if run[key] == defaults[key]:
            continue
        if key == "pretrained":
            parts.append("pretrained" if run[key] else "scratch")
        else:
            parts.append(f"{prefix}{run[key]}")
    return "_".join(parts)


def _check_run(run: dict[str, Any], where: str, origin: dict[str, str]) -> None:
    family = run["model"][:-1]
    if run["freeze"] and not run["pretrained"]:
        raise ConfigError(
            f"{origin['freeze']}: freeze={run['freeze']} with pretrained=false ({origin['pretrained']}) would "
            f"freeze random weights in {where}; set pretrained: true or freeze: 0"
        )
    elsewhere = sorted(other for other, layers in BACKBONE_LAYERS.items() if layers == run["freeze"])
    if elsewhere and BACKBONE_LAYERS[family] != run["freeze"]:
        raise ConfigError(
            f"{origin['freeze']}: freeze={run['freeze']} is the backbone of {'/'.join(elsewhere)} but not of "
            f"{run['model']} ({origin['model']}), whose backbone is {BACKBONE_LAYERS[family]} layers, in {where}; "
            "write freeze: backbone to freeze each model's own backbone"
        )
    if run["freeze"] >= TOTAL_LAYERS[family]:
        raise ConfigError(
            f"{origin['freeze']}: freeze={run['freeze']} would freeze all {TOTAL_LAYERS[family]} layers "
            f"of {run['model']} ({origin['model']}) in {where}, leaving nothing to train (its backbone is "
            f"{BACKBONE_LAYERS[family]} layers)"
        )


def canonical_order(value: Any) -> Any:
    """The same value with every mapping's keys sorted, at any depth.

    Snakemake compares a rule's params with those of the last run by value,
    and a dict's value includes its key order: without this, reordering keys
    in config.yaml would look like new parameters and rerun the campaign.
    """
    if isinstance(value, dict):
        return {key: canonical_order(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [canonical_order(item) for item in value]
    return value


class Campaign(dict):
    """Configurations by name. An unknown name, a typo in a requested target, is a clear error."""

    def __missing__(self, name: str) -> RunConfig:
        closest = difflib.get_close_matches(name, self, n=5, cutoff=0)
        raise ConfigError(
            f"{name!r} is not one of the campaign's {len(self)} configurations; the closest are "
            f"{closest} (campaign plan lists them all)"
        )

    @cached_property
    def costliest(self) -> float:
        """The largest expected training cost, the scale of the trainings' priorities."""
        return max((run.expected_cost() for run in self.values()), default=1.0)


def run_defaults() -> dict[str, Any]:
    """What a configuration gets for an argument neither the defaults nor the matrix give: the schema's defaults.

    Snakemake fills them in when it validates the config; a config read
    without it (the status and plan commands, tests) gets the same here.
    """
    return copy.deepcopy(_schema_run_defaults())


def _schema_run_defaults() -> dict[str, Any]:
    return _schema_defaults(("campaign", "defaults"))


def section_defaults(*section: str) -> dict[str, Any]:
    """The schema's defaults of one config section (e.g. `gpu`), for code that reads it outside a rule job."""
    return copy.deepcopy(_schema_defaults(section))


@cache
def _schema_defaults(section: tuple[str, ...]) -> dict[str, Any]:
    node = yaml.safe_load(SCHEMA.read_text())
    for key in section:
        node = node["properties"][key]
    return {name: spec["default"] for name, spec in node["properties"].items() if "default" in spec}


def expand_campaign(campaign: dict[str, Any]) -> Campaign:
    """Expand defaults x matrix, apply overrides and exclusions, add extras.

    Returns configurations by name, sorted by name. Raises ConfigError naming
    the config key a wrong value came from (campaign.matrix.freeze[1], ...),
    when two configurations would share a name, and when two would train the
    same arguments under two names.
    """
    given = campaign["defaults"]
    defaults = {**run_defaults(), **given}
    default_origin = {
        key: f"campaign.defaults.{key}" if key in given else f"campaign.defaults.{key} (its default)"
        for key in defaults
    }
    matrix = campaign.get("matrix") or {}
    keys = sorted(matrix)
    runs: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    excludes, overrides = campaign.get("exclude") or [], campaign.get("overrides") or []
    excluded_by, overridden_by = [0] * len(excludes), [0] * len(overrides)  # matches of each entry
    for indices in itertools.product(*(range(len(matrix[key])) for key in keys)):
        values = [matrix[key][index] for key, index in zip(keys, indices)]
        run = {**defaults, **dict(zip(keys, values))}
        origin = {**default_origin, **{key: f"campaign.matrix.{key}[{i}]" for key, i in zip(keys, indices)}}
        excluded = [i for i, pattern in enumerate(excludes) if _matches(run, pattern)]
        for index in excluded:
            excluded_by[index] += 1
        if excluded:
            continue
        for index, override in enumerate(overrides):
            if _matches(run, override["match"]):
                overridden_by[index] += 1
                run.update(override["set"])
                origin.update({key: f"campaign.overrides[{index}].set.{key}" for key in override["set"]})
        runs.append((f"campaign.matrix (combination {dict(zip(keys, values))})", run, origin))
    if excludes and not runs:
        raise ConfigError(
            "campaign.exclude removes every configuration of campaign.defaults x campaign.matrix, so nothing "
            "would train; loosen an exclude pattern or add configurations"
        )
    for index, pattern in enumerate(excludes):
        _check_pattern_matched(f"campaign.exclude[{index}]", pattern, excluded_by[index], defaults)
    for index, override in enumerate(overrides):
        _check_pattern_matched(f"campaign.overrides[{index}]", override["match"], overridden_by[index], defaults)
    for index, extra in enumerate(campaign.get("extra") or []):
        origin = {**default_origin, **{key: f"campaign.extra[{index}].{key}" for key in extra}}
        runs.append((f"campaign.extra[{index}]", {**defaults, **extra}, origin))

    configs: dict[str, RunConfig] = {}
    trained_by: dict[str, tuple[str, str]] = {}  # what trains -> (name, where it was configured)
    for where, run, origin in runs:
        if run["freeze"] == "backbone":  # each model's own backbone; the name shows the number
            run["freeze"] = BACKBONE_LAYERS[run["model"][:-1]]
        _check_run(run, where, origin)
        _check_args(run, origin)
        explicit = run.pop("name", None)
        group = explicit or _name(run, defaults)
        for offset in range(run.pop("replicates")):
            # Seed replicates: the first keeps the configuration's name, so
            # asking for more replicates later never renames (reruns) it.
            seeded = {**run, "seed": run["seed"] + offset}
            name = group if not offset else f"{explicit}_seed{seeded['seed']}" if explicit else _name(seeded, defaults)
            if name in configs:
                raise ConfigError(
                    f"{where}: configuration name {name!r} is used twice; give one of them "
                    "a distinct `name:` or remove the duplicate (seed replicates take the seeds "
                    "after the configuration's own)"
                )
            config = RunConfig(name=name, group=group, **seeded)
            identity = stable_hash({"args": config.args_hash(), "gpus": config.gpus})
            if identity in trained_by:
                other, other_where = trained_by[identity]
                raise ConfigError(
                    f"{where}: configuration {name!r} trains exactly what {other!r} ({other_where}) trains, "
                    "under a second name; remove one of them, or make them differ in an argument"
                )
            trained_by[identity] = (name, where)
            configs[name] = config
    return Campaign(sorted(configs.items()))
