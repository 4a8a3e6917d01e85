"""Request bodies checked against JSON Schema (the ``jsonschema`` library): one mechanism for every service.

A service describes its request models declaratively, as JSON Schema definitions derived from its REST
spec (``<service>/schemas.py``), and calls ``checker.check(body, "Model")`` once, at the handler's entry,
before anything else reads the body. The first violation becomes a ``Violation`` that names the
property by its path in the body (``properties.containerSettings``, ``properties.inputDirectories[0].id``);
the service turns it into its own 400. Null members count as absent (as the services treat them), and the
body handed back has them removed, so a handler only ever sees what was checked.

Besides the standard keywords, a schema may use ``anyCaseEnum``: an enum whose string values match in
any case, as Resource Manager services accept ``Dedicated`` for ``dedicated``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

#: What a ``Violation`` is about: a wrong JSON type, a missing property, a value outside its enum or
#: range, or something else the schema says.
TYPE, REQUIRED, ENUM, RANGE, OTHER = "type", "required", "enum", "range", "other"

_TYPE_NAMES = {"object": "a JSON object", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


@dataclass(frozen=True)
class Violation:
    kind: str      # TYPE, REQUIRED, ENUM, RANGE or OTHER
    path: str      # the property in the body, e.g. 'properties.containerSettings' ('' for the body itself)
    message: str   # one line that names the property and says what it must be


def _any_case_enum(validator, allowed: list, instance: Any, schema: dict) -> Iterable[ValidationError]:
    if isinstance(instance, str) and instance.lower() in (value.lower() for value in allowed):
        return
    yield ValidationError("{!r} is not one of {!r}".format(instance, allowed))


_Validator = jsonschema.validators.extend(Draft202012Validator, {"anyCaseEnum": _any_case_enum})


class SchemaChecker:
    """The request models of one service: ``definitions`` maps a model name to its JSON Schema, whose
    ``$ref`` s point at ``#/$defs/<name>``; ``refuse`` turns a ``Violation`` into the service's error."""

    def __init__(self, definitions: dict, refuse: Callable[[Violation], Exception]) -> None:
        self.definitions = definitions
        self._refuse = refuse
        # A mistake in a service's schemas fails at import, not per request: all of them checked once.
        _Validator.check_schema({"$defs": definitions})
        self._validators = {name: _Validator({"$ref": "#/$defs/" + name, "$defs": definitions})
                            for name in definitions}

    def check(self, body: Any, model: str) -> Any:
        """``body`` without its null members, if it is a valid ``model``; else the service's error for the
        first violation."""
        body = without_nulls(body)
        violation = self.first_violation(body, model)
        if violation is not None:
            raise self._refuse(violation)
        return body

    def first_violation(self, body: Any, model: str):
        error = best_match(self._validators[model].iter_errors(body))
        return None if error is None else describe(error)


def without_nulls(value: Any) -> Any:
    """A copy of ``value`` without the object members that are null (list items stay)."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def property_path(parts: Iterable) -> str:
    """``['properties', 'inputDirectories', 0, 'id']`` -> ``properties.inputDirectories[0].id``."""
    text = ""
    for part in parts:
        text += "[{}]".format(part) if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def describe(error: ValidationError) -> Violation:
    """The ``Violation`` for one jsonschema error, worded for the client."""
    path = property_path(error.absolute_path)
    keyword, value, schema = error.validator, error.validator_value, error.schema
    if keyword == "required":
        missing = next(name for name in value if name not in error.instance)
        full = property_path(list(error.absolute_path) + [missing])
        what = (schema.get("properties", {}).get(missing) or {}).get("description")
        return Violation(REQUIRED, full, "The property '{}' is required{}.".format(full, ": " + what if what else ""))
    if keyword == "type":
        expected = value if isinstance(value, list) else [value]
        return Violation(TYPE, path, "{} must be {}; got {}.".format(
            _subject(path), " or ".join(_TYPE_NAMES[name] for name in expected), _json_kind(error.instance)))
    if keyword in ("enum", "anyCaseEnum", "const"):
        allowed = value if isinstance(value, list) else [value]
        return Violation(ENUM, path, "{} must be one of {}; got {}.".format(
            _subject(path), ", ".join(str(item) for item in allowed), _shown(error.instance)))
    if keyword in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            bounds = "from {} to {}".format(low, high)
        else:
            bounds = "at least {}".format(low) if low is not None else "at most {}".format(high)
        return Violation(RANGE, path, "{} must be an integer {}; got {}.".format(
            _subject(path), bounds, _shown(error.instance)))
    if keyword == "minLength":
        return Violation(RANGE, path, "{} must not be empty.".format(_subject(path)))
    return Violation(OTHER, path, "{} is invalid: {}.".format(_subject(path), error.message))


def _subject(path: str) -> str:
    return "The property '{}'".format(path) if path else "The request body"


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return _shown(value)


def _shown(value: Any) -> str:
    """A value as the client wrote it, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value) if isinstance(value, (int, float)) else \
        _json_kind(value)
    return text if len(text) <= 80 else text[:77] + "..."
