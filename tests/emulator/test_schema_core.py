"""emulator/core/schema.py: how a jsonschema violation becomes one line that names the property."""
from __future__ import annotations

import jsonschema
import pytest

from emulator.core.schema import ENUM, RANGE, REQUIRED, TYPE, SchemaChecker, property_path, without_nulls

DEFINITIONS = {
    "Thing": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "description": "what the thing is called"},
        "count": {"type": "integer", "minimum": 1, "maximum": 9},
        "floor": {"type": "integer", "minimum": 0},
        "size": {"type": "string", "anyCaseEnum": ["small", "large"]},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "parts": {"type": "array", "items": {"$ref": "#/$defs/Part"}},
        "label": {"type": "string", "minLength": 1}}},
    "Part": {"type": "object", "properties": {"id": {"type": "string"}}},
}


class Refused(Exception):
    def __init__(self, violation):
        super().__init__(violation.message)
        self.violation = violation


CHECKER = SchemaChecker(DEFINITIONS, Refused)


def violation(body):
    with pytest.raises(Refused) as caught:
        CHECKER.check(body, "Thing")
    return caught.value.violation


def test_property_paths_read_as_in_the_body():
    assert property_path(["properties", "inputDirectories", 0, "id"]) == "properties.inputDirectories[0].id"
    assert property_path([]) == ""


@pytest.mark.parametrize("body, kind, message", [
    ({}, REQUIRED, "The property 'name' is required: what the thing is called."),
    ({"name": 5}, TYPE, "The property 'name' must be a string; got 5."),
    ({"name": "x", "parts": "y"}, TYPE, "The property 'parts' must be a list; got a string."),
    ({"name": "x", "parts": [["y"]]}, TYPE, "The property 'parts[0]' must be a JSON object; got a list."),
    ({"name": "x", "parts": [{"id": {}}]}, TYPE, "The property 'parts[0].id' must be a string; got a JSON object."),
    ({"name": "x", "count": 0}, RANGE, "The property 'count' must be an integer from 1 to 9; got 0."),
    ({"name": "x", "floor": -1}, RANGE, "The property 'floor' must be an integer at least 0; got -1."),
    ({"name": "x", "count": True}, TYPE, "The property 'count' must be an integer; got true."),
    ({"name": "x", "kind": "c"}, ENUM, "The property 'kind' must be one of a, b; got 'c'."),
    ({"name": "x", "size": "medium"}, ENUM, "The property 'size' must be one of small, large; got 'medium'."),
    ({"name": "x", "label": ""}, RANGE, "The property 'label' must not be empty."),
])
def test_the_first_violation_names_the_property(body, kind, message):
    found = violation(body)
    assert (found.kind, found.message) == (kind, message)


def test_a_body_that_is_not_an_object_is_named_as_the_body():
    assert violation(["x"]).message == "The request body must be a JSON object; got a list."


def test_enums_may_match_in_any_case_and_nulls_count_as_absent():
    body = {"name": "x", "size": "LARGE", "count": None, "parts": [{"id": None}]}
    assert CHECKER.check(body, "Thing") == {"name": "x", "size": "LARGE", "parts": [{}]}


def test_without_nulls_keeps_list_items():
    assert without_nulls({"a": None, "b": [None, {"c": None}]}) == {"b": [None, {}]}


def test_a_broken_schema_fails_when_the_service_loads_it():
    with pytest.raises(jsonschema.SchemaError):
        SchemaChecker({"Bad": {"type": "nonsense"}}, Refused)


def test_both_services_schemas_load():
    from emulator.azureml import schemas as azureml_schemas
    from emulator.batchai import schemas as batchai_schemas

    assert "JobCreateParameters" in batchai_schemas.DEFINITIONS and "JobBase" in azureml_schemas.DEFINITIONS
