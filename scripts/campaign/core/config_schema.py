"""Check a config against schemas/config.schema.yaml, with one line per problem a teacher can act on.

jsonschema's own message puts the key path eight lines down, after a dump of
the schema. Here the first thing said is where (`campaign.matrix.batch[2]`),
then the value, what is allowed, and the key's own description.

Integers are strict: JSON Schema counts 16.0 as an integer, but 16.0 would
name a configuration `b16.0` and reach the trainer as a float.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from campaign.core.configurations import SCHEMA, ConfigError

# A full stop followed by a capital: "seed, seed+1, ... (one seed" is one sentence.
_SENTENCE_END = re.compile(r"(?<!\.)\. (?=[A-Z])")
_TYPE_NAMES = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys",
    "null": "null",
}


def _is_strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)


@cache
def _validator() -> Any:
    return _StrictValidator(yaml.safe_load(SCHEMA.read_text()))


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError with one line (key path, value, what is allowed) for the config's most telling problem."""
    error = best_match(_validator().iter_errors(config))
    if error is not None:
        raise ConfigError(describe(error))
    devices = (config.get("gpu") or {}).get("devices")
    if isinstance(devices, list):
        first: dict[int, int] = {}
        for position, device in enumerate(devices):
            earlier = first.setdefault(device["index"], position)
            if earlier != position:
                raise ConfigError(
                    f"gpu.devices[{position}].index: device {device['index']} is already declared as "
                    f"gpu.devices[{earlier}]; declare each device once"
                )


def key_path(parts: Any) -> str:
    """campaign.matrix.batch[2] from ("campaign", "matrix", "batch", 2)."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "the config"


def describe(error: ValidationError) -> str:
    """One line for one schema error: key path, value, what is allowed, and what the key is for."""
    where, value, rule, schema = key_path(error.absolute_path), error.instance, error.validator, error.schema
    allowed = error.validator_value
    if isinstance(schema, dict) and "description" not in schema and error.parent is not None:
        schema = {**schema, "description": error.parent.schema.get("description", "")}  # an alternative's key
    if rule == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        unknown = sorted(key for key in value if key not in known)[0]
        return f"{_join(where, unknown)}: not a key here ({_closest(unknown, known)})"
    if error.parent is None and error.relative_schema_path and "propertyNames" in error.relative_schema_path:
        return f"{_join(where, value)}: not a key here ({_closest(str(value), allowed)})"
    if rule == "required":
        missing = error.message.split("'")[1]
        return f"{_join(where, missing)}: required, and missing{_purpose(schema.get('properties', {}).get(missing))}"
    if rule == "anyOf":
        # best_match already answers with the alternative of the value's own kind (a number below the
        # minimum); here the value is of no allowed kind, and the line lists the kinds.
        if isinstance(value, float) and value.is_integer() and any(alt.get("type") == "integer" for alt in allowed):
            return f"{where}: {value!r} is written as a decimal; write {int(value)}{_purpose(schema)}"
        options = [repr(alt["const"]) if "const" in alt else _TYPE_NAMES[alt["type"]] for alt in allowed]
        return f"{where}: {value!r} is {_kind(value)}, not {' or '.join(options)}{_purpose(schema)}"
    if rule == "type" and allowed == "integer" and isinstance(value, float) and value.is_integer():
        return f"{where}: {value!r} is written as a decimal; write {int(value)}{_purpose(schema)}"
    if rule == "type":
        expected = " or ".join(_TYPE_NAMES[name] for name in ([allowed] if isinstance(allowed, str) else allowed))
        return f"{where}: {value!r} is {_kind(value)}, not {expected}{_purpose(schema)}"
    if rule == "enum":
        return f"{where}: {value!r} is not allowed ({_closest(str(value), allowed)}){_purpose(schema)}"
    if rule == "const":
        return f"{where}: {value!r} is not allowed (only {allowed!r}){_purpose(schema)}"
    if rule in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = {
            "minimum": f"at least {allowed}",
            "exclusiveMinimum": f"more than {allowed}",
            "maximum": f"at most {allowed}",
            "exclusiveMaximum": f"less than {allowed}",
        }[rule]
        return f"{where}: {value!r} is out of range (must be {bound}){_purpose(schema)}"
    if rule == "multipleOf":
        below, above = int(value // allowed * allowed), int((value // allowed + 1) * allowed)
        nearest = f"{above}" if below < allowed else f"{below} or {above}"
        return f"{where}: {value!r} is not a multiple of {allowed} (the nearest: {nearest}){_purpose(schema)}"
    if rule == "pattern":
        return f"{where}: {value!r} does not have the form {allowed}{_purpose(schema)}"
    if rule == "uniqueItems":
        twice = next(item for index, item in enumerate(value) if item in value[:index])
        return f"{where}: {twice!r} is listed twice; list each value once"
    if rule in ("minItems", "minProperties"):
        return f"{where}: needs at least {allowed} {'entry' if allowed == 1 else 'entries'}{_purpose(schema)}"
    return f"{where}: {error.message}{_purpose(schema)}"


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where != "the config" else str(key)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return "a whole number written as a decimal" if value.is_integer() else "a decimal number"
    for name, kind in (("integer", int), ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, kind):
            return _TYPE_NAMES[name]
    return "null" if value is None else type(value).__name__


def _closest(value: str, allowed: Any) -> str:
    names = [str(option) for option in allowed]
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(value.lower(), names, n=3, cutoff=0.5)
    listing = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:12])}, ..."
    return f"did you mean {' or '.join(close)}? allowed: {listing}" if close else f"allowed: {listing}"


def _purpose(schema: Any) -> str:
    """' - <the key's description, first sentence>' where the schema describes the key."""
    text = " ".join(str((schema or {}).get("description", "")).split())
    first_sentence = _SENTENCE_END.split(text)[0].rstrip(".")
    return f" - {first_sentence}" if text else ""
