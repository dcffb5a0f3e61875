import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# Scripts import their logic from the library in scripts/campaign, installed
# with the workflow (README: setup); so does the Snakefile.
from campaign.core import layout
from campaign.core.clock import FutureDatedError, check_no_future_files
from campaign.core.config_file import (
    check_one_campaign,
    read_config_file,
    retype_command_line_values,
)
from campaign.core.config_schema import check_config
from campaign.core.configurations import (
    ConfigError,
    canonical_order,
    expand_campaign,
    stable_hash,
)
from campaign.core.layout import probes_table
from campaign.core.records import set_aside_damaged_records
from campaign.dataset.upload_checks import CleaningError, check_upload
from campaign.evaluation.video import detect_source_names
from campaign.planning.packing import shares_per_gpu, training_needs_mb
from campaign.planning.probe import probe_settings
from campaign.planning.runs import (
    end_run,
    explain_stop,
    notice_stop_requests,
    other_live_runs_notice,
    start_run,
)
from campaign.planning.shards import campaign_shards, parse_shard
from campaign.planning.workload import recorded_shards, timed_by
from campaign.training.checkpoints import verify_checkpoints
from campaign.training.weights import resolve_pretrained_weights

# config.yaml is the demo's campaign. A file given with --configfile is a
# whole campaign of its own, not a patch on top of the demo: no key of
# config.yaml leaks into it, and a second file is refused rather than merged.
# Each file is read strictly first (YAML 1.2 numbers, no repeated key), so that
# what Snakemake reads is what was written (campaign/core/config_file.py).
CONFIGFILES = [str(path) for path in workflow.overwrite_configfiles] or ["config.yaml"]


def invalid_configuration(problem):
    """The error that stops the plan on a config problem, naming the campaign's config file."""
    return WorkflowError(
        f"Invalid configuration: {problem}\n(the campaign's config file: {CONFIGFILES[0]})"
    )


try:
    check_one_campaign(CONFIGFILES)
    read_config_file(CONFIGFILES[0])
except ConfigError as error:
    raise invalid_configuration(error) from None

if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# One line per problem, key path first; then Snakemake's own validation fills
# in the schema's defaults.
retype_command_line_values(config, workflow.config_settings.config)
try:
    check_config(config)
except ConfigError as error:
    raise invalid_configuration(error) from None
validate(config, "../schemas/config.schema.yaml")

# Key order in config.yaml means nothing; sorted, it cannot change any params.
_ordered = canonical_order(config)
config.clear()
config.update(_ordered)

# The campaign's config file, for messages that tell what command to run.
CONFIGFILE = CONFIGFILES[0]

try:
    CONFIGS = expand_campaign(config["campaign"])
    PRETRAINED = resolve_pretrained_weights(
        CONFIGS.values(), config["weights"], config["pretrain"]["models"], CONFIGFILE
    )
    verify_checkpoints(config["weights"], Path(config["weights_checksums"]), CONFIGFILE)
except ConfigError as error:
    raise invalid_configuration(error) from None


def named_configs(key):
    """Configuration names listed under a config key, each checked to exist."""
    section, option = key.split(".")
    for index, name in enumerate(config[section][option] or []):
        try:
            CONFIGS[name]
        except ConfigError as error:
            raise invalid_configuration(f"{key}[{index}]: {error}") from None
    return list(config[section][option] or [])


named_configs("detect.configs")
# The image-size study covers study.configs, or every configuration.
STUDY_CONFIGS = (
    named_configs("study.configs") if config["study"]["configs"] else list(CONFIGS)
)
# Detection sources by their name (the file or folder name without extension).
try:
    DETECT_SOURCES = detect_source_names(config["detect"]["sources"])
except ConfigError as error:
    raise invalid_configuration(error) from None
for index, source in enumerate(config["detect"]["sources"]):
    if not Path(source).exists():
        raise invalid_configuration(
            f"detect.sources[{index}]: {source!r} does not exist; "
            "give a video file, a folder of videos or a folder of images"
        )

if not Path(config["dataset"]["raw"]).is_dir():
    raise invalid_configuration(
        f"dataset.raw: folder {config['dataset']['raw']!r} does not "
        "exist; point it at the raw upload folder (one sub-folder per group)"
    )
# dataset.freeze: the cleaned dataset stays as it is; later uploads wait
# (rules/dataset.smk then has no cleaning rule; campaign plan says what waits).
DATASET_FROZEN = config["dataset"]["freeze"]
if DATASET_FROZEN and not Path(layout.MANIFEST).is_file():
    raise invalid_configuration(
        f"dataset.freeze: there is no cleaned dataset to keep ({layout.MANIFEST} "
        "is missing); run once with dataset.freeze: false to clean the upload"
    )
# A bad upload (an empty group, one without labels, class names that match
# none of dataset.classes) stops here, before any job and on top of the screen.
try:
    if not DATASET_FROZEN:
        check_upload(
            Path(config["dataset"]["raw"]),
            config["dataset"]["classes"],
            config["dataset"]["class_map"],
            config["dataset"]["background_groups"],
            config["dataset"]["prefer_groups"],
        )
except (CleaningError, ValueError) as error:
    raise WorkflowError(
        f"Invalid upload: {error}\n(the campaign's config file: {CONFIGFILE})"
    ) from None

# Files dated in the future would make Snakemake delete finished outputs
# ("clock skew"): stop first, naming them (campaign/core/clock.py). Job processes
# skip the look: their main process has made it.
if workflow.is_main_process:
    try:
        check_no_future_files(
            [
                config["dataset"]["raw"],
                "results",
                CONFIGFILE,
                config["weights_checksums"],
                *config["weights"].values(),
                *config["detect"]["sources"],
                *filter(None, [config["splits"]["lock"]]),
            ]
        )
    except FutureDatedError as error:
        raise WorkflowError(f"Clock: {error}") from None
    # A damaged record would count as done while every reader of it fails.
    for _said in set_aside_damaged_records(layout.record_globs()):
        print(_said, file=sys.stderr, flush=True)

# Packing (gpu.pack): each training's memory need, and Snakemake's `gpu`
# resource counted in shares of a GPU (campaign/planning/packing.py).
SHARES_PER_GPU = shares_per_gpu(config["gpu"])
try:
    TRAINING_NEEDS = training_needs_mb(CONFIGS, config["gpu"], probes_table())
except ConfigError as error:
    raise invalid_configuration(error) from None

SPLITS = config["evaluation"]["splits"]
# The split configurations are compared on (findings, per-class AP, exported models): test where evaluated.
COMPARISON_SPLIT = next(split for split in ("test", "val", "train") if split in SPLITS)

# One server's part of a campaign that several run in one shared folder (shards.py).
try:
    SHARD = parse_shard(config["shard"])
except ConfigError as error:
    raise invalid_configuration(error) from None
# The split is recorded by the first run of a shard, so that every server and
# takeover uses the same one, however the probes and timings change later.
SHARD_OF = (
    campaign_shards(
        CONFIGS,
        SHARD[1],
        config,
        record=workflow.is_main_process and not workflow.dryrun,
    )[0]
    if SHARD
    else recorded_shards()
)
SHARD_CONFIGS = (
    [name for name, shard in SHARD_OF.items() if shard == SHARD[0]]
    if SHARD
    else list(CONFIGS)
)
# Named configurations only (a takeover of unfinished trainings, campaign takeover).
ONLY = config["only"]
if ONLY:
    _unknown = [name for name in ONLY if name not in CONFIGS]
    if _unknown:
        raise invalid_configuration(
            f"only: {', '.join(_unknown)} are not configurations "
            f"of this campaign (campaign status lists them)"
        )
    SHARD_CONFIGS = [name for name in SHARD_CONFIGS if name in ONLY]


# Before Snakemake locks the folder: where another live run holds it, the
# advice to `--unlock` that Snakemake gives on refusing this one would break it.
if workflow.is_main_process and not workflow.dryrun:
    _notice = other_live_runs_notice()
    if _notice:
        print(_notice, file=sys.stderr, flush=True)


def record_campaign_run():
    """onstart: say who runs what here, with the locks it holds (campaign/planning/runs.py)."""
    locks = getattr(workflow.persistence, "_lockfile", {}).values()
    if SHARD:
        what = f"shard {SHARD[0]}/{SHARD[1]}"
    elif ONLY:
        what = f"configurations {', '.join(ONLY)}"
    else:
        what = "the whole campaign"
    gpu_slots = workflow.global_resources.get("gpu")
    gpus = int(getattr(gpu_slots, "value", gpu_slots) or 0) // SHARES_PER_GPU
    start_run(
        [os.path.relpath(lock) for lock in locks],
        SHARD_CONFIGS,
        what,
        all_cores(),
        gpus,
    )
    notice_stop_requests()


def end_campaign_run(failed):
    """onsuccess and onerror: this run's record goes; a run stopped on request says so."""
    end_run()
    explained = explain_stop() if failed else None
    if explained:
        print(explained, file=sys.stderr, flush=True)


def raw_upload_files():
    """Every file of the raw upload: editing, adding or removing one reruns cleaning."""
    root = Path(config["dataset"]["raw"])
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


# How every validation pass is made (evaluations, speed and image-size studies).
VALIDATION_ARGS = {key: config["evaluation"][key] for key in ("batch", "conf", "iou")}

# Deployment formats the speed study times besides PyTorch (each exported once per configuration).
EXPORT_FORMATS = [fmt for fmt in config["speed"]["formats"] if fmt != "pytorch"]

# Configurations with the same network, size and kind of device share one timing (timing.py):
# TIMED_BY names, for each, the configuration whose weights are timed (on each server, its own;
# one already timed where there is one, so that adding a configuration never moves a timing).
TIMED_BY = timed_by(CONFIGS, shard_of=SHARD_OF)


# The cleaned dataset as the trainer sees it. The split lists and the manifest
# (content hashes of every image and label) are inputs too, so that any change
# of data reaches the trainings even when dataset.yaml itself stays the same.
def split_lists():
    """The cleaned dataset's split lists, by split."""
    return {
        split: layout.SPLIT_LIST.format(split=split)
        for split in ("train", "val", "test")
    }


DATASET = {
    "dataset": layout.DATASET_YAML,
    "manifest": layout.MANIFEST,
    **split_lists(),
}


# The image sizes the campaign trains at: the cleaned dataset is copied once
# per size, shrunk to it (resizing.py), unless dataset.resize is off.
RESIZED_SIZES = (
    sorted({run.imgsz for run in CONFIGS.values()})
    if config["dataset"]["resize"]
    else []
)


def dataset_at(imgsz):
    """The cleaned dataset as a job at this image size reads it: `dataset` is the copy shrunk to it.

    The manifest and split lists stay the cleaned dataset's: they say which
    data it is (provenance), and the copy changes whenever they do.
    """
    inputs = dict(DATASET)
    if imgsz in RESIZED_SIZES:
        inputs["dataset"] = layout.RESIZED_DATASET_YAML.format(imgsz=imgsz)
    return inputs


def config_dataset(wildcards):
    """The dataset at the configuration's image size."""
    return dataset_at(CONFIGS[wildcards.cfg].imgsz)


def study_input(wildcards):
    """The dataset at the configuration's size, and at full size for the study's larger sizes."""
    return {
        **config_dataset(wildcards),
        "full_size": DATASET["dataset"],
        "weights": layout.TRAINED_WEIGHTS.format(cfg=wildcards.cfg),
    }


def train_input(wildcards):
    """The dataset, plus the pretrained checkpoint where the configuration has one."""
    inputs = config_dataset(wildcards)
    weights = PRETRAINED.get(wildcards.cfg)
    if weights:
        inputs["weights"] = weights
    return inputs


def pretrain_args():
    """Training arguments for pretraining, from the `pretrain` section of the config."""
    options = config["pretrain"]
    return {
        "epochs": options["epochs"],
        "imgsz": options["imgsz"],
        "batch": options["batch"],
        "seed": options["seed"],
        "deterministic": True,
        "workers": 2,
        "plots": False,
    }


def all_cores():
    """Every core given with --cores, so that a timing job runs alone on the machine.

    Commands without --cores (e.g. --report) still parse the workflow: 1 there.
    """
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def cores_per_gpu():
    """--cores divided by --resources gpu: what one GPU's job gets of the machine."""
    given = workflow.global_resources.get("gpu")
    return max(1, all_cores() // int(getattr(given, "value", given) or 1))


def training_threads(wildcards):
    """A training's cores, per GPU it uses; its dataloader workers default to them."""
    return cores_per_gpu() * max(CONFIGS[wildcards.cfg].gpus, 1)


# The distinct training steps of the campaign, each probed once (campaign plan --probe).
PROBES = dict(probe_settings(run) for run in CONFIGS.values())


def probe_threads(name):
    """A probe's cores: as many as a one-GPU training of the campaign gets."""
    return cores_per_gpu()


def training_priority(name):
    """0..100, by expected training cost relative to the costliest configuration."""
    return round(100 * CONFIGS[name].expected_cost() / CONFIGS.costliest)


def evaluation_gpus(wildcards):
    """Evaluating and timing a configuration takes one GPU, or none if it trained on the CPU."""
    return min(CONFIGS[wildcards.cfg].gpus, 1) * SHARES_PER_GPU


def training_gpus(wildcards):
    """A training's `gpu` resource: one share where it packs, else its GPUs (in shares, with packing)."""
    if wildcards.cfg in TRAINING_NEEDS:
        return 1
    return CONFIGS[wildcards.cfg].gpus * SHARES_PER_GPU


def training_gpu_mb(wildcards):
    """A training's `gpu_mb` resource: the memory it packs with (0: unknown or not packing, a whole GPU)."""
    return TRAINING_NEEDS.get(wildcards.cfg, 0)


def config_labels(name):
    """Report labels of a configuration, to filter by in the HTML report."""
    run = CONFIGS[name]
    return {
        "model": run.model,
        "freeze": str(run.freeze),
        "batch": str(run.batch),
        "imgsz": str(run.imgsz),
    }


def evaluation_labels(wildcards, plot):
    """Report labels of one plot of one configuration's evaluation."""
    return {**config_labels(wildcards.cfg), "split": wildcards.split, "plot": plot}


def detect_source_files(wildcards):
    """The video file, or every file of an image folder."""
    source = Path(DETECT_SOURCES[wildcards.source])
    if source.is_dir():
        return sorted(str(p) for p in source.rglob("*") if p.is_file())
    return [str(source)]


def shared_inputs():
    """What every training reads: the cleaned dataset and the workflow's own pretrained checkpoints."""
    pretrained = sorted(
        {path for path in PRETRAINED.values() if path.startswith(f"{layout.RESULTS}/")}
    )
    copies = [dataset_at(size)["dataset"] for size in RESIZED_SIZES]
    return list(DATASET.values()) + copies + pretrained


def configuration_outputs(names):
    """Everything made per configuration: training, evaluations with intervals, speed, study, videos."""
    outputs = []
    for name in names:
        outputs.append(layout.TRAINED_WEIGHTS.format(cfg=name))
        outputs += expand(
            layout.EVALUATION_FILE,
            cfg=name,
            split=SPLITS,
            file=["metrics.json", "intervals.json"],
        )
        outputs.append(layout.SPEED_TABLE.format(cfg=name))
        if name in STUDY_CONFIGS:
            outputs.append(layout.STUDY_TABLE.format(cfg=name))
        if name in config["detect"]["configs"]:
            outputs += expand(
                layout.DETECTION,
                cfg=name,
                source=DETECT_SOURCES,
                ending=["mp4", "png"],
            )
    return outputs


# The figures of the default run (results/figures/<name>.png), each made by its own rule.
FIGURES = [
    "dataset_overview",
    "label_analysis",
    "map_by_config",
    "accuracy_vs_latency",
    "training_curves",
    "per_class_ap",
    "campaign_timeline",
    "imgsz_study",
]


def all_outputs():
    """Targets of the default run: the summary table, every figure, the detection sheets.

    With --config shard=I/N: only that shard's per-configuration work, after
    checking that the shared data it reads exists (it must not be built by
    two servers at once).
    """
    if SHARD or ONLY:
        missing = [path for path in shared_inputs() if not Path(path).exists()]
        if missing:
            part = f"shard={SHARD[0]}/{SHARD[1]}" if SHARD else "only"
            raise WorkflowError(
                f"{part}: the data every shard reads is not there yet ({', '.join(missing)}); "
                f"run `snakemake --cores N --configfile {CONFIGFILE} prepare` once, then the shards"
            )
        return configuration_outputs(SHARD_CONFIGS)
    detections = [
        layout.DETECTION.format(cfg=name, source=source, ending=ending)
        for name in config["detect"]["configs"]
        for source in DETECT_SOURCES
        for ending in ("mp4", "png")
    ]
    return detections + [
        layout.METRICS_CSV,
        layout.METRICS_MD,
        layout.FINDINGS_HTML,
        *map(layout.figure, FIGURES),
    ]
