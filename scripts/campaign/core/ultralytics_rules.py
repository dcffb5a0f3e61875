"""Ultralytics' own rules for its training arguments, applied when the config is read.

Ultralytics checks `args` only once a training starts (`check_cfg`: numbers,
fractions between 0 and 1, integers with their minimum, booleans, strings;
the optimizer when the trainer builds it), which may be hours into a queued
campaign. Importing it to ask would load torch in every `snakemake -n`, so
its lists are read from its installed source instead (the key sets of
`ultralytics/cfg/__init__.py`, the optimizer set of `engine/trainer.py`): the
rules are the installed version's, never a copy that could age.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

KEY_SETS = ("CFG_FLOAT_KEYS", "CFG_FRACTION_KEYS", "CFG_INT_KEYS", "CFG_BOOL_KEYS", "CFG_STR_KEYS", "CFG_INT_MIN")


@dataclass(frozen=True)
class ArgumentRules:
    numbers: frozenset[str]
    fractions: frozenset[str]
    integers: frozenset[str]
    integer_minimum: dict[str, int]
    booleans: frozenset[str]
    strings: frozenset[str]
    optimizers: frozenset[str]

    def problem(self, key: str, value: Any) -> str | None:
        """What is wrong with `key: value` by Ultralytics' rules, said for the config; None where it passes."""
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (
            key in self.numbers | self.fractions
            and not is_number
            and not (key == "fraction" and isinstance(value, list))
        ):
            return f"{value!r} is not a number; Ultralytics takes a number for {key}"
        if key == "fraction" and is_number and not (0 < value <= 1 or (isinstance(value, int) and value > 1)):
            return f"{value!r} is out of range; Ultralytics takes a share in (0, 1] or a count of images above 1"
        if key in self.fractions and key != "fraction" and is_number and not 0 <= value <= 1:
            return f"{value!r} is out of range; Ultralytics takes {key} between 0.0 and 1.0"
        if key in self.integers:
            if not (is_number and float(value).is_integer()):
                return f"{value!r} is not a whole number; Ultralytics takes one for {key}"
            if value < self.integer_minimum.get(key, value):
                return f"{value!r} is too small; Ultralytics takes {key} of at least {self.integer_minimum[key]}"
        if key in self.booleans and not isinstance(value, bool):
            return f"{value!r} is not true or false; Ultralytics takes a boolean for {key}"
        if key in self.strings and not isinstance(value, str):
            return f"{value!r} is not text; Ultralytics takes a string for {key}"
        by_lower = {name.lower(): name for name in self.optimizers}  # Ultralytics ignores the case
        if key == "optimizer" and by_lower and str(value).lower() not in by_lower:
            close = difflib.get_close_matches(str(value).lower(), sorted(by_lower), n=1, cutoff=0.5)
            hint = f"did you mean {by_lower[close[0]]}? " if close else ""
            known = ", ".join(sorted(self.optimizers))
            return f"{value!r} is not an optimizer Ultralytics builds ({hint}it builds {known})"
        return None


def _source(relative: str) -> Path | None:
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / relative
    return path if path.is_file() else None


def _literal(node: ast.expr) -> Any:
    """The value of `{...}`, `frozenset({...})` or `{k: v}` as written in the source."""
    if isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    return ast.literal_eval(node)


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in names:
                found[node.targets[0].id] = _literal(node.value)
    return found


def _optimizers(path: Path) -> frozenset[str]:
    """The set the trainer builds its optimizer from (`optimizers = {...}` in build_optimizer)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "optimizers" for t in node.targets):
            if isinstance(node.value, ast.Set):
                return frozenset(ast.literal_eval(node.value))
    return frozenset()


@cache
def argument_rules() -> ArgumentRules | None:
    """The installed Ultralytics' rules; None where it is not installed here (the training job reports that)."""
    config_source, trainer_source = _source("cfg/__init__.py"), _source("engine/trainer.py")
    if config_source is None or trainer_source is None:
        return None
    sets = _module_constants(config_source, KEY_SETS)
    return ArgumentRules(
        numbers=frozenset(sets.get("CFG_FLOAT_KEYS", ())),
        fractions=frozenset(sets.get("CFG_FRACTION_KEYS", ())),
        integers=frozenset(sets.get("CFG_INT_KEYS", ())),
        integer_minimum=dict(sets.get("CFG_INT_MIN", {})),
        booleans=frozenset(sets.get("CFG_BOOL_KEYS", ())),
        strings=frozenset(sets.get("CFG_STR_KEYS", ())),
        optimizers=_optimizers(trainer_source),
    )
