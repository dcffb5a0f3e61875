"""Where each configuration's pretrained checkpoint comes from.

Nothing is downloaded: a checkpoint is either a local file named under
`weights:` in the config, or made by the workflow's own `pretrain` rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from campaign.core.configurations import ConfigError, RunConfig
from campaign.core.layout import pretrained_checkpoint
from campaign.training.checkpoints import official_name


def resolve_pretrained_weights(
    configs: Iterable[RunConfig], weights: dict[str, str], pretrain_models: list[str], configfile: str = "config.yaml"
) -> dict[str, str]:
    """Map each configuration that starts from pretrained weights to its checkpoint path.

    Raises ConfigError before any job runs when a named file is missing or a
    configuration has no source of weights at all.
    """
    for model, path in sorted(weights.items()):
        if not Path(path).is_file():
            raise ConfigError(
                f"weights.{model}: checkpoint file {path!r} does not exist. Nothing is downloaded "
                f"at run time: on a machine with internet run `campaign fetch-weights "
                f"--configfile {configfile}` (it fetches {official_name(model)}, Ultralytics' COCO "
                f"checkpoint, and records its SHA-256), or copy the file there and add --record; "
                f"or remove the entry and add {model} to pretrain.models"
            )
    resolved = {}
    for config in configs:
        if not config.pretrained:
            continue
        if config.model in weights:
            resolved[config.name] = weights[config.model]
        elif config.model in pretrain_models:
            resolved[config.name] = pretrained_checkpoint(config.model)
        else:
            raise ConfigError(
                f"campaign configuration {config.name!r} starts from pretrained weights, but "
                f"there are none for {config.model}: name a local checkpoint under "
                f"weights.{config.model}, add {config.model} to pretrain.models, or set "
                "pretrained: false (with freeze: 0)"
            )
    return resolved
