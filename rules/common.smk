import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# Scripts import their logic from the library in scripts/campaign, installed
# with the workflow (README: setup); so does the Snakefile.
from campaign.core import layout
from campaign.core.clock import FutureDatedError, check_no_future_files
from campaign.core.config_file import check_one_campaign, read_config_file, retype_command_line_values
from campaign.core.configurations import MODELS, ConfigError, stable_hash
from campaign.core.layout import COMPARISON_SECTION, DATASET_SECTION, DETECTIONS_SECTION, EVALUATION_SECTION
from campaign.core.records import set_aside_damaged_records
from campaign.dataset.upload_checks import CleaningError
from campaign.planning.resolved import resolve_campaign
from campaign.adapters.workflow_run import (
    all_cores,
    cores_per_gpu,
    end_campaign_run,
    given_resource,
    record_campaign_run,
    say_other_live_runs,
)

# config.yaml is the demo's campaign. A file given with --configfile is a
# whole campaign of its own, not a patch on top of the demo: no key of
# config.yaml leaks into it, and a second file is refused rather than merged.
# Each file is read strictly first (YAML 1.2 numbers, no repeated key), so that
# what Snakemake reads is what was written (campaign/core/config_file.py).
CONFIGFILE = ([str(path) for path in workflow.overwrite_configfiles] or ["config.yaml"])[0]


def invalid_configuration(problem):
    """The error that stops the plan on a config problem, naming the campaign's config file."""
    return WorkflowError(f"Invalid configuration: {problem}\n(the campaign's config file: {CONFIGFILE})")


try:
    check_one_campaign(workflow.overwrite_configfiles)
    read_config_file(CONFIGFILE)
except ConfigError as error:
    raise invalid_configuration(error) from None

if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# A damaged record would count as done while every reader of it fails (the
# resolution below reads the shard split and the probes).
if workflow.is_main_process:
    for _said in set_aside_damaged_records(layout.record_globs()):
        print(_said, file=sys.stderr, flush=True)

# The campaign, resolved as every `campaign` command resolves it
# (campaign/planning/resolved.py): the config checked (one line per problem,
# key path first), its defaults filled, its configurations, shards and jobs.
retype_command_line_values(config, workflow.config_settings.config)
try:
    CAMPAIGN = resolve_campaign(
        config,
        CONFIGFILE,
        record_shards=workflow.is_main_process and not workflow.dryrun,
        gpu_resource=given_resource(workflow, "gpu"),
    )
except ConfigError as error:
    raise invalid_configuration(error) from None
CONFIGS = CAMPAIGN.configs
SPLITS = CAMPAIGN.splits
COMPARISON_SPLIT = CAMPAIGN.comparison_split
EXPORT_FORMATS = CAMPAIGN.export_formats

# A bad upload stops here, before any job and on top of the screen. With
# dataset.freeze the cleaned dataset stays as it is: rules/dataset.smk then has
# no cleaning rule, and campaign plan says what waits.
try:
    if not CAMPAIGN.dataset_frozen:
        CAMPAIGN.check_upload()
except (CleaningError, ValueError) as error:
    raise WorkflowError(f"Invalid upload: {error}\n(the campaign's config file: {CONFIGFILE})") from None

# Files dated in the future would make Snakemake delete finished outputs
# ("clock skew"): stop first, naming them (campaign/core/clock.py). Job processes
# skip the look: their main process has made it.
if workflow.is_main_process:
    try:
        check_no_future_files(CAMPAIGN.given_paths())
    except FutureDatedError as error:
        raise WorkflowError(f"Clock: {error}") from None

say_other_live_runs(workflow)


def raw_upload_files():
    """Every file of the raw upload: editing, adding or removing one reruns cleaning."""
    root = Path(config["dataset"]["raw"])
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def for_each_job(method):
    """An input or params function: `method` of CAMPAIGN called with the job's wildcards by name."""

    def of_job(wildcards):
        return method(**wildcards)

    return of_job


# Each job's inputs, params and resources from its wildcards (ResolvedCampaign).
config_dataset = for_each_job(CAMPAIGN.dataset_for)
train_input = for_each_job(CAMPAIGN.train_input)
study_input = for_each_job(CAMPAIGN.study_input)
probe_dataset = for_each_job(CAMPAIGN.probe_dataset)
detect_source_files = for_each_job(CAMPAIGN.detect_source_files)
config_imgsz = for_each_job(CAMPAIGN.imgsz)
config_model = for_each_job(CAMPAIGN.model)
training_args = for_each_job(CAMPAIGN.training_args)
training_args_hash = for_each_job(CAMPAIGN.training_args_hash)
probe_args = for_each_job(CAMPAIGN.probe_args)
evaluation_args = for_each_job(CAMPAIGN.evaluation_args)
export_args = for_each_job(CAMPAIGN.export_args)
latency_args = for_each_job(CAMPAIGN.latency_args)
timing_of = for_each_job(CAMPAIGN.timing_of)
resized_size = for_each_job(CAMPAIGN.resized_size)
detect_source = for_each_job(CAMPAIGN.detect_source)
detection_labels = for_each_job(CAMPAIGN.labels)
figure_input = for_each_job(CAMPAIGN.figure_input)
training_priority = for_each_job(CAMPAIGN.training_priority)
training_gpus = for_each_job(CAMPAIGN.training_gpus)
training_gpu_mb = for_each_job(CAMPAIGN.training_gpu_mb)
evaluation_gpus = for_each_job(CAMPAIGN.evaluation_gpus)
probe_gpus = for_each_job(CAMPAIGN.probe_gpus)


def in_report(path, caption, section, labels):
    """`path` in the HTML report: its caption (report/<caption>.rst), section and labels to filter by."""
    return report(path, caption=f"../report/{caption}.rst", category=section, labels=labels)


def table_in_report(path, caption, section, table):
    """A table in the HTML report, labelled `table` (in_report)."""
    return in_report(path, caption, section, {"table": table})


def figure_in_report(name, section, figure):
    """The figure results/figures/<name>.png in the HTML report, captioned by report/<name>.rst."""
    return in_report(layout.figure(name), name, section, {"figure": figure})


def figure_labels(wildcards):
    return {"figure": layout.SUMMARY_FIGURES[wildcards.figure]}


def evaluation_plot(path, caption, plot):
    """A plot of each evaluation in the report, with its caption (report/<caption>.rst) and labels."""

    def labels(wildcards):
        return CAMPAIGN.labels(**wildcards) | {"plot": plot}

    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=EVALUATION_SECTION,
        subcategory="{split}",
        labels=labels,
    )


# Threads, from the cores the run was given.
def training_threads(wildcards):
    """A training's cores, per GPU it uses; its dataloader workers default to them."""
    return cores_per_gpu(workflow) * max(CONFIGS[wildcards.cfg].gpus, 1)


def probe_threads(wildcards):
    """A probe's cores: as many as a one-GPU training of the campaign gets."""
    return cores_per_gpu(workflow)


def all_outputs():
    """Targets of the default run: the summary table, every figure, the detection sheets.

    With --config shard=I/N or only: that part's per-configuration work, after
    checking that the shared data it reads exists (it must not be built by
    two servers at once).
    """
    if CAMPAIGN.shard or CAMPAIGN.only:
        missing = [path for path in CAMPAIGN.shared_inputs() if not Path(path).exists()]
        if missing:
            part = "shard={}/{}".format(*CAMPAIGN.shard) if CAMPAIGN.shard else "only"
            raise WorkflowError(
                f"{part}: the data every shard reads is not there yet ({', '.join(missing)}); "
                f"run `snakemake --cores N --configfile {CONFIGFILE} prepare` once, then the shards"
            )
        return CAMPAIGN.configuration_outputs(CAMPAIGN.selected)
    return CAMPAIGN.default_targets()
