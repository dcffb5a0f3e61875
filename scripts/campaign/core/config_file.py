"""Read a campaign's config file so that what Snakemake reads is what the teacher wrote.

Snakemake reads config files with PyYAML, which follows YAML 1.1: `0640` is
the octal number 416, `yes` is true, `1e-3` is the string "1e-3", and a key
written twice silently keeps its last value (a second `matrix:` drops the
first). Each file is therefore read a second time with ruamel.yaml under
YAML 1.2 rules and with duplicate keys refused; any value the two readings
disagree on stops the workflow with its file, line and an unambiguous way to
write it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from campaign.core.configurations import ConfigError


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The config in `path` as Snakemake reads it, or ConfigError naming the line that is ambiguous or broken."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    try:  # Snakemake reads JSON first, and JSON has no ambiguous values
        config = json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(config, dict):
            return config
    strict = _read_yaml_1_2(path, text)
    try:
        as_snakemake_reads = yaml.safe_load(text)
    except yaml.YAMLError as error:  # ruamel accepted it: a construct only YAML 1.1 rejects
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(as_snakemake_reads, dict):
        raise ConfigError(f"{path}: a config file is a mapping of keys (dataset:, campaign:, ...) at the top level")
    _compare(path, text.splitlines(), strict, as_snakemake_reads, "")
    return as_snakemake_reads


def _read_yaml_1_2(path: Path, text: str) -> Any:
    reader = YAML(typ="rt")  # round trip: keeps the line of every value
    try:
        return reader.load(text)
    except DuplicateKeyError as error:
        line = error.problem_mark.line + 1
        key = error.problem.split('"')[1] if '"' in error.problem else "a key"
        raise ConfigError(
            f"{path} line {line}: key {key!r} appears a second time in the same mapping, and the last one "
            "would silently replace the first; merge the two into one"
        ) from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        hint = "indent with spaces, not tabs" if "\t" in _line(text, mark) else "fix the YAML there"
        raise ConfigError(f"{path}{where}: {error.problem or error.context}; {hint}") from None
    except YAMLError as error:
        raise ConfigError(f"{path}: {error}") from None


def _line(text: str, mark: Any) -> str:
    lines = text.splitlines()
    return lines[mark.line] if mark and mark.line < len(lines) else ""


def _compare(path: Path, lines: list[str], strict: Any, loose: Any, key_path: str, line: int | None = None) -> None:
    """Walk both readings side by side; the first value they disagree on is an error with its line."""
    if isinstance(strict, dict) and isinstance(loose, dict):
        for key in strict:
            value_line = strict.lc.value(key)[0] + 1 if hasattr(strict, "lc") else line
            child = f"{key_path}.{key}" if key_path else str(key)
            if key not in loose:
                _disagree(path, lines, child, value_line, key, next(iter(set(loose) - set(strict)), key))
            _compare(path, lines, strict[key], loose[key], child, value_line)
        return
    if isinstance(strict, list) and isinstance(loose, list) and len(strict) == len(loose):
        for index, (item_strict, item_loose) in enumerate(zip(strict, loose)):
            item_line = strict.lc.item(index)[0] + 1 if hasattr(strict, "lc") else line
            _compare(path, lines, item_strict, item_loose, f"{key_path}[{index}]", item_line)
        return
    strict = _plain(strict)
    if type(strict) is not type(loose) or strict != loose:
        _disagree(path, lines, key_path, line, strict, loose)


def _plain(value: Any) -> Any:
    """ruamel's round-trip scalars (ScalarFloat, ScalarInt, ...) as the built-in types PyYAML gives."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _disagree(path: Path, lines: list[str], key_path: str, line: int | None, strict: Any, loose: Any) -> None:
    written = lines[line - 1].strip() if line and line <= len(lines) else ""
    if isinstance(loose, bool) or isinstance(strict, bool):
        fix = "write true or false for a yes/no value, or quote it for text"
    elif isinstance(strict, (int, float)) and not isinstance(strict, bool):
        fix = f"write {strict!r} (a number without leading zeros, with a decimal point before any exponent)"
    else:
        fix = "quote it if it is text, or write the number plainly (0.001, 640)"
    raise ConfigError(
        f"{path} line {line}: {key_path} (`{written}`) is read by Snakemake (YAML 1.1) as {loose!r} "
        f"but by YAML 1.2 as {strict!r}; {fix}, so that both read the same"
    )


def retype_command_line_values(config: dict[str, Any], command_line: Any) -> None:
    """Give nested `--config` values their types (Snakemake keeps them as text) in place.

    Snakemake parses `--config 'campaign={defaults: {epochs: 3}}'` without types
    below the top level, so the epochs would be the text "3". Each such text is
    read as a YAML 1.2 scalar and written into `config` at the same key path.
    """
    for key, value in dict(command_line or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _retype(config[key], value)


def _retype(config: Any, given: Any) -> None:
    items = given.items() if isinstance(given, dict) else enumerate(given)
    for key, value in items:
        if isinstance(value, str):
            config[key] = _scalar(value)
        elif isinstance(value, (dict, list)):
            _retype(config[key], value)


def _scalar(text: str) -> Any:
    try:
        value = YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else text


def check_one_campaign(configfiles: list[str]) -> None:
    """A config file is a whole campaign: two would be merged key by key into a campaign nobody wrote."""
    if len(configfiles) > 1:
        raise ConfigError(
            f"--configfile was given {len(configfiles)} files ({', '.join(map(str, configfiles))}); a config file "
            "is a whole campaign, and Snakemake would merge them key by key (one's matrix with another's "
            "batches). Give one file; for a variant, copy it and edit the copy"
        )
