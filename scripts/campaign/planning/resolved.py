"""One campaign, resolved once: the config checked and expanded into its configurations, their jobs and paths.

The workflow (rules/common.smk) and every `campaign` command (plan, status,
takeover) resolve the campaign here, from the same config file by the same
steps: schema check and defaults, canonical key order, the configurations,
their pretrained weights, the shard split, which network each timing serves
and the jobs that follow each training. A command thus never sees other
configurations, shards or jobs than Snakemake does.

What only a workflow run checks at its start (the upload, files dated in the
future, damaged records) stays in common.smk: a command must still work where
those would stop the run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from campaign.core import layout
from campaign.core.config_file import read_config_file
from campaign.core.config_schema import check_config
from campaign.core.configurations import SCHEMA, Campaign, ConfigError, canonical_order, expand_campaign
from campaign.dataset.upload_checks import check_upload
from campaign.evaluation.video import detect_source_names
from campaign.planning.packing import shares_per_gpu, training_needs_mb
from campaign.planning.probe import probe_settings
from campaign.planning.shards import campaign_shards, parse_shard
from campaign.planning.workload import recorded_shards, timed_by
from campaign.training.checkpoints import verify_checkpoints
from campaign.training.weights import resolve_pretrained_weights

# The files that stand for a job in the default targets, per rule after a training
# (export and latency are reached through speed, which reads them).
TARGETS_OF_RULE = {
    "evaluate": [layout.EVAL_METRICS],
    "bootstrap": [layout.EVAL_INTERVALS],
    "speed": [layout.SPEED_TABLE],
    "imgsz_study": [layout.STUDY_TABLE],
    "detect": [layout.DETECTION_VIDEO, layout.DETECTION_SHEET],
}


@dataclass(frozen=True)
class ResolvedCampaign:
    """A checked campaign: its config (defaults filled, keys in canonical order) and what follows from it."""

    config: dict[str, Any]
    configfile: str
    configs: Campaign
    # Configuration name -> the checkpoint its training starts from (those that start from one).
    pretrained: dict[str, str]
    study_configs: list[str]
    detect_configs: list[str]
    # Detection source name -> its file or folder.
    detect_sources: dict[str, str]
    # Snakemake's `gpu` resource for one whole GPU, and each packed training's memory need in MB.
    shares_per_gpu: int
    training_needs: dict[str, int]
    # This run's shard (index, count), None for the whole campaign, and every configuration's shard.
    shard: tuple[int, int] | None
    shard_of: dict[str, int] | None
    # The configurations this run trains and evaluates (its shard's, or `only`'s; else all).
    selected: list[str]
    # Configuration -> the one whose network timing it shares (timing.py).
    timed_by: dict[str, str] = field(repr=False)

    @property
    def splits(self) -> list[str]:
        return self.config["evaluation"]["splits"]

    @property
    def comparison_split(self) -> str:
        """The split configurations are compared on (findings, per-class AP, exports): test where evaluated."""
        return next(split for split in ("test", "val", "train") if split in self.splits)

    @property
    def only(self) -> list[str]:
        """The configurations named with --config only=[...] (a takeover of unfinished trainings); else none."""
        return self.config["only"] or []

    @property
    def dataset_frozen(self) -> bool:
        return self.config["dataset"]["freeze"]

    @property
    def validation_args(self) -> dict[str, Any]:
        """How every validation pass is made (evaluations, speed and image-size studies)."""
        return {key: self.config["evaluation"][key] for key in ("batch", "conf", "iou")}

    @property
    def export_formats(self) -> list[str]:
        """The deployment formats timed besides PyTorch, each exported once per configuration."""
        return [fmt for fmt in self.config["speed"]["formats"] if fmt != "pytorch"]

    # Cached: input functions ask for these once per job while Snakemake builds the DAG.
    @cached_property
    def resized_sizes(self) -> list[int]:
        """The image sizes the cleaned dataset is copied at, shrunk (none where dataset.resize is off)."""
        if not self.config["dataset"]["resize"]:
            return []
        return sorted({run.imgsz for run in self.configs.values()})

    @property
    def cleaning_params(self) -> dict[str, Any]:
        """What the cleaning is given of the config's `dataset` section."""
        keys = ("classes", "class_map", "min_box_px", "background_groups", "prefer_groups", "max_pixels")
        return {key: self.config["dataset"][key] for key in keys}

    @property
    def parameters(self) -> list[dict[str, Any]]:
        """Every configuration's parameters, as the summary table shows them."""
        return [run.parameters() for run in self.configs.values()]

    @property
    def comparison_keys(self) -> dict[str, dict[str, Any]]:
        """What makes configurations comparable, by configuration: seeds of one key are pooled."""
        return {name: run.comparison_key() for name, run in self.configs.items()}

    @property
    def findings_runs(self) -> list[dict[str, Any]]:
        """Each run as the findings compare it: its group, comparison key and the batch it was configured with."""
        return [
            {"config": name, "group": run.group, "key": run.comparison_key(), "batch": run.batch}
            for name, run in self.configs.items()
        ]

    @cached_property
    def timed_configs(self) -> frozenset[str]:
        """The configurations whose weights are timed, one per network (`timed_by`'s values)."""
        return frozenset(self.timed_by.values())

    @cached_property
    def probes(self) -> dict[str, dict[str, Any]]:
        """The campaign's distinct training steps by probe name, each probed once (campaign plan --probe)."""
        return dict(probe_settings(run) for run in self.configs.values())

    @property
    def split_lists(self) -> dict[str, str]:
        return {split: layout.SPLIT_LIST.format(split=split) for split in ("train", "val", "test")}

    @property
    def cleaned_dataset(self) -> dict[str, str]:
        """The cleaned dataset as the trainer sees it, with its split lists and manifest (content hashes).

        Those are inputs too, so that any change of data reaches the trainings
        even when dataset.yaml itself stays the same.
        """
        return {"dataset": layout.DATASET_YAML, "manifest": layout.MANIFEST, **self.split_lists}

    @property
    def pretrain_args(self) -> dict[str, Any]:
        """Training arguments of the workflow's own pretrainings, from the config's `pretrain` section."""
        options = self.config["pretrain"]
        fixed = {"deterministic": True, "workers": 2, "plots": False}
        return {**{key: options[key] for key in ("epochs", "imgsz", "batch", "seed")}, **fixed}

    @property
    def study_args(self) -> dict[str, Any]:
        return {key: self.config["study"][key] for key in ("imgsz", "split")} | self.validation_args

    def dataset_at(self, imgsz: int) -> dict[str, str]:
        """The cleaned dataset as a job at this image size reads it: `dataset` is the copy shrunk to it.

        The manifest and split lists stay the cleaned dataset's: they say which
        data it is (provenance), and the copy changes whenever they do.
        """
        inputs = self.cleaned_dataset
        if imgsz in self.resized_sizes:
            inputs["dataset"] = layout.RESIZED_DATASET_YAML.format(imgsz=imgsz)
        return inputs

    @property
    def part(self) -> str:
        """What of the campaign this run does, in words (its record of live runs)."""
        if self.shard:
            return "shard {}/{}".format(*self.shard)
        if self.only:
            return f"configurations {', '.join(self.only)}"
        return "the whole campaign"

    def given_paths(self) -> list[str]:
        """Every file and folder the config names (the upload, weights, videos, the split lock) and results/."""
        config = self.config
        named = [config["dataset"]["raw"], self.configfile, config["weights_checksums"], config["splits"]["lock"]]
        named += [*config["weights"].values(), *config["detect"]["sources"]]
        return [str(layout.RESULTS), *filter(None, named)]

    def check_upload(self) -> None:
        """CleaningError (or ValueError) naming the group where the raw upload cannot give a dataset.

        An empty group, one without labels, class names that match none of
        dataset.classes: what would otherwise stop the cleaning job, said before any job.
        """
        dataset = self.config["dataset"]
        options = [dataset[key] for key in ("classes", "class_map", "background_groups", "prefer_groups")]
        check_upload(Path(dataset["raw"]), *options)

    # Each job's inputs and params, from its wildcards by name (common.smk: for_each_job).
    def dataset_for(self, cfg: str, **_other_wildcards: str) -> dict[str, str]:
        """The dataset at the configuration's image size."""
        return self.dataset_at(self.configs[cfg].imgsz)

    def train_input(self, cfg: str) -> dict[str, str]:
        """The dataset, plus the pretrained checkpoint where the configuration starts from one."""
        weights = {"weights": self.pretrained[cfg]} if cfg in self.pretrained else {}
        return self.dataset_for(cfg) | weights

    def study_input(self, cfg: str) -> dict[str, str]:
        """The dataset at the configuration's size, and at full size for the study's larger sizes."""
        weights = layout.TRAINED_WEIGHTS.format(cfg=cfg)
        return self.dataset_for(cfg) | {"full_size": layout.DATASET_YAML, "weights": weights}

    def probe_dataset(self, probe: str) -> dict[str, str]:
        return self.dataset_at(self.probes[probe]["imgsz"])

    def evaluation_args(self, cfg: str, split: str) -> dict[str, Any]:
        return {"imgsz": self.configs[cfg].imgsz, **self.validation_args, "split": split}

    def export_args(self, cfg: str, format: str) -> dict[str, Any]:
        return {"imgsz": self.configs[cfg].imgsz, "format": format}

    def latency_args(self, cfg: str) -> dict[str, Any]:
        return {"imgsz": self.configs[cfg].imgsz, **self.config["speed"]}

    def timing_of(self, cfg: str) -> str:
        """The network timing this configuration shares (made on the configuration `timed_by` names)."""
        return layout.LATENCY_TABLE.format(cfg=self.timed_by[cfg])

    def resized_size(self, cfg: str) -> int:
        """The size of the shrunk copy the configuration reads; 0 where it reads the full-size images."""
        imgsz = self.configs[cfg].imgsz
        return imgsz if imgsz in self.resized_sizes else 0

    def detect_source(self, cfg: str, source: str) -> str:
        return self.detect_sources[source]

    def labels(self, cfg: str, **wildcards: str) -> dict[str, str]:
        """A configuration's report labels (with the job's other wildcards), to filter by in the HTML report."""
        run = self.configs[cfg]
        return {key: str(getattr(run, key)) for key in ("model", "freeze", "batch", "imgsz")} | wildcards

    def figure_input(self, figure: str) -> list[str]:
        """What one comparison figure is drawn from (layout.SUMMARY_FIGURES)."""
        names, split = list(self.configs), self.comparison_split
        return {
            "map_by_config": [layout.GROUPS],
            "accuracy_vs_latency": [layout.GROUPS],
            "training_curves": [layout.EPOCH_TABLE.format(cfg=name) for name in names],
            "per_class_ap": [layout.EVAL_PER_CLASS.format(cfg=name, split=split) for name in names],
            "imgsz_study": [layout.STUDY_TABLE.format(cfg=name) for name in self.study_configs],
        }[figure]

    def imgsz(self, cfg: str, **_other_wildcards: str) -> int:
        return self.configs[cfg].imgsz

    def model(self, cfg: str) -> str:
        return self.configs[cfg].model

    def training_args(self, cfg: str) -> dict[str, Any]:
        return self.configs[cfg].train_args()

    def training_args_hash(self, cfg: str) -> str:
        return self.configs[cfg].args_hash()

    def probe_args(self, probe: str) -> dict[str, Any]:
        return self.probes[probe]

    def detect_source_files(self, cfg: str, source: str) -> list[str]:
        """The video file, or every file of an image folder."""
        path = Path(self.detect_sources[source])
        if path.is_dir():
            return sorted(str(file) for file in path.rglob("*") if file.is_file())
        return [str(path)]

    # Each job's resources (Snakemake's `gpu` counts shares of a GPU where trainings pack).
    def training_priority(self, cfg: str) -> int:
        """0..100, by expected training cost relative to the costliest configuration: the longest start first."""
        return round(100 * self.configs[cfg].expected_cost() / self.configs.costliest)

    def training_gpus(self, cfg: str) -> int:
        """A training's `gpu` resource: one share where it packs, else its GPUs (in shares, with packing)."""
        return 1 if cfg in self.training_needs else self.configs[cfg].gpus * self.shares_per_gpu

    def training_gpu_mb(self, cfg: str) -> int:
        """A training's `gpu_mb` resource: the memory it packs with (0: unknown or not packing, a whole GPU)."""
        return self.training_needs.get(cfg, 0)

    def evaluation_gpus(self, cfg: str, **_other_wildcards: str) -> int:
        """Evaluating and timing a configuration takes one GPU, or none if it trained on the CPU."""
        return min(self.configs[cfg].gpus, 1) * self.shares_per_gpu

    def probe_gpus(self, probe: str) -> int:
        """A probe takes one GPU, or none for a training step on the CPU."""
        return min(self.probes[probe]["gpus"], 1) * self.shares_per_gpu

    def default_targets(self) -> list[str]:
        """What a plain `snakemake` makes: the summary tables, every figure, the detection sheets."""
        detections = [
            layout.DETECTION.format(cfg=name, source=source, ending=ending)
            for name in self.detect_configs
            for source in self.detect_sources
            for ending in ("mp4", "png")
        ]
        summary = [layout.METRICS_CSV, layout.METRICS_MD, layout.FINDINGS_HTML]
        return detections + summary + [layout.figure(name) for name in layout.FIGURES]

    def shared_inputs(self) -> list[str]:
        """What every training reads: the cleaned dataset, its shrunk copies, the workflow's own pretrained weights."""
        own_weights = {path for path in self.pretrained.values() if path.startswith(f"{layout.RESULTS}/")}
        copies = [layout.RESIZED_DATASET_YAML.format(imgsz=size) for size in self.resized_sizes]
        return list(self.cleaned_dataset.values()) + copies + sorted(own_weights)

    def jobs_after_training(self, name: str) -> dict[str, list[dict[str, str]]]:
        """The jobs that follow this configuration's training, by rule, each as its wildcards.

        A network is timed once, on the configuration `timed_by` names.
        """
        one = [{"cfg": name}]
        detected = name in self.detect_configs
        return {
            "evaluate": [{"cfg": name, "split": split} for split in self.splits],
            "bootstrap": [{"cfg": name, "split": split} for split in self.splits],
            "export": [{"cfg": name, "format": fmt} for fmt in self.export_formats],
            "latency": one if name in self.timed_configs else [],
            "speed": one,
            "imgsz_study": one if name in self.study_configs else [],
            "detect": [{"cfg": name, "source": source} for source in self.detect_sources] if detected else [],
        }

    def benchmark_stems(self) -> dict[str, dict[str, list[str]]]:
        """jobs_after_training of every configuration, each job as its benchmark file's stem (logs/<rule>/<stem>)."""
        return {
            name: {
                rule: ["_".join(wildcards.values()) for wildcards in jobs]
                for rule, jobs in self.jobs_after_training(name).items()
            }
            for name in self.configs
        }

    def configuration_outputs(self, names: list[str]) -> list[str]:
        """Everything made per configuration: its training, then each job after it, by the files that stand for it."""
        outputs = []
        for name in names:
            outputs.append(layout.TRAINED_WEIGHTS.format(cfg=name))
            for rule, jobs in self.jobs_after_training(name).items():
                for wildcards in jobs:
                    outputs += [pattern.format(**wildcards) for pattern in TARGETS_OF_RULE.get(rule, [])]
        return outputs


def resolve_campaign(
    config: dict[str, Any],
    configfile: str,
    results: Path = layout.RESULTS,
    record_shards: bool = False,
    gpu_resource: int | None = None,
) -> ResolvedCampaign:
    """The campaign of `config` (as read from `configfile`), or ConfigError naming the key and what to do.

    `config` is checked against the schema and completed with its defaults in
    place, then put in canonical key order (the order keys are written in must
    not change any job's params). `record_shards`: a shard's first real run
    records the split, so that every server and takeover uses the same one.
    `gpu_resource`: the run's `--resources gpu` (GPUs, or shares of them with
    gpu.pack), the GPUs of each server the split is made for; one where not given.
    """
    from snakemake.utils import validate  # the schema's defaults exactly as Snakemake fills them

    check_config(config)
    validate(config, str(SCHEMA), set_default=True)
    ordered = canonical_order(config)
    config.clear()
    config.update(ordered)

    configs = expand_campaign(config["campaign"])
    pretrained = resolve_pretrained_weights(
        configs.values(), config["weights"], config["pretrain"]["models"], configfile
    )
    verify_checkpoints(config["weights"], Path(config["weights_checksums"]), configfile)
    detect_configs = _named_configs(config, configs, "detect", "configs")
    study_configs = _named_configs(config, configs, "study", "configs") or list(configs)
    detect_sources = detect_source_names(config["detect"]["sources"])
    _check_folders(config, results)

    shard = parse_shard(config["shard"])
    if shard:
        gpus_per_server = max(1, int(gpu_resource or 0) // shares_per_gpu(config["gpu"]))
        shard_of = campaign_shards(
            configs, shard[1], config, results, record=record_shards, gpus_per_server=gpus_per_server
        )[0]
        selected = [name for name, index in shard_of.items() if index == shard[0]]
    else:
        shard_of = recorded_shards(results)
        selected = list(configs)
    only = config["only"] or []
    unknown = [name for name in only if name not in configs]
    if unknown:
        raise ConfigError(
            f"only: {', '.join(unknown)} are not configurations of this campaign (campaign status lists them)"
        )
    if only:
        selected = [name for name in selected if name in only]
    return ResolvedCampaign(
        config=config,
        configfile=str(configfile),
        configs=configs,
        pretrained=pretrained,
        study_configs=study_configs,
        detect_configs=detect_configs,
        detect_sources=detect_sources,
        shares_per_gpu=shares_per_gpu(config["gpu"]),
        training_needs=training_needs_mb(configs, config["gpu"], layout.probes_table(results)),
        shard=shard,
        shard_of=shard_of,
        selected=selected,
        # On each server its shard's own; one already timed where there is one, so adding never moves a timing.
        timed_by=timed_by(configs, results, shard_of=shard_of),
    )


def load_campaign(path: str | Path, results: Path = layout.RESULTS) -> ResolvedCampaign:
    """The campaign in config file `path`, read strictly (config_file.py) and resolved as the workflow does."""
    return resolve_campaign(read_config_file(path), str(path), results)


def command_campaign(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ResolvedCampaign:
    """A `campaign` command's campaign (its --configfile and --results); a bad config ends it with argparse's error."""
    try:
        return load_campaign(args.configfile, args.results)
    except ConfigError as error:
        parser.error(f"invalid configuration: {error}")


def _named_configs(config: dict[str, Any], configs: Campaign, section: str, option: str) -> list[str]:
    """Configuration names listed under a config key, each checked to exist."""
    names = list(config[section][option] or [])
    for index, name in enumerate(names):
        try:
            configs[name]
        except ConfigError as error:
            raise ConfigError(f"{section}.{option}[{index}]: {error}") from None
    return names


def _check_folders(config: dict[str, Any], results: Path) -> None:
    """The folders the config names exist (the detection sources, the raw upload, a frozen dataset)."""
    for index, source in enumerate(config["detect"]["sources"]):
        if not Path(source).exists():
            raise ConfigError(
                f"detect.sources[{index}]: {source!r} does not exist; "
                "give a video file, a folder of videos or a folder of images"
            )
    if not Path(config["dataset"]["raw"]).is_dir():
        raise ConfigError(
            f"dataset.raw: folder {config['dataset']['raw']!r} does not exist; "
            "point it at the raw upload folder (one sub-folder per group)"
        )
    # dataset.freeze: the cleaned dataset stays as it is; later uploads wait.
    if config["dataset"]["freeze"] and not layout.result_path(layout.MANIFEST, results).is_file():
        raise ConfigError(
            f"dataset.freeze: there is no cleaned dataset to keep ({layout.MANIFEST} is missing); "
            "run once with dataset.freeze: false to clean the upload"
        )
