"""examples/traefik/, as far as it can be checked without Traefik (not installable on these
machines: docs/operations/proxies.md says so): both files against Traefik's own configuration
schemas (SchemaStore's, vendored in tests/examples/schemas/), made strict here: an object
schema that lists its properties refuses any other, so a misspelt option is an error instead
of being ignored as Traefik would ignore it. Then what the schema cannot know: the middleware
asks the gateway's forwardAuth endpoint with an `aud`, copies every context header, and the
router uses it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.context import SIGNED

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = ROOT / "examples" / "traefik"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
CONTEXT_HEADERS = [name.title() for name in SIGNED] + ["X-Gateway-Timestamp", "X-Gateway-Signature"]


def strict(node: Any) -> Any:
    """Every object schema with `properties` and no say on others: others refused."""
    if isinstance(node, dict):
        tightened = {key: strict(value) for key, value in node.items()}
        if "properties" in tightened and "additionalProperties" not in tightened:
            tightened["additionalProperties"] = False
        return tightened
    if isinstance(node, list):
        return [strict(item) for item in node]
    return node


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    schema = strict(json.loads((SCHEMAS / name).read_text()))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def errors(name: str, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator(name).iter_errors(document)]


def static() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((TRAEFIK / "traefik.yml").read_text())
    return document


def dynamic() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((TRAEFIK / "dynamic.yml").read_text())
    return document


def test_the_static_configuration_is_valid() -> None:
    assert errors("traefik-v2.json", static()) == []


def test_the_dynamic_configuration_is_valid() -> None:
    assert errors("traefik-v2-file-provider.json", dynamic()) == []


def misspelt_option(document: dict[str, Any]) -> None:
    forward = document["http"]["middlewares"]["gateway-auth"]["forwardAuth"]
    forward["trustForwardHeaders"] = forward.pop("trustForwardHeader")


def wrong_type(document: dict[str, Any]) -> None:
    forward = document["http"]["middlewares"]["gateway-auth"]["forwardAuth"]
    forward["authResponseHeaders"] = ",".join(forward["authResponseHeaders"])


@pytest.mark.parametrize("damage", [misspelt_option, wrong_type], ids=["misspelt", "type"])
def test_the_schema_refuses_a_damaged_copy(damage: Any) -> None:
    document = copy.deepcopy(dynamic())
    damage(document)
    assert errors("traefik-v2-file-provider.json", document) != []


def test_the_middleware_asks_the_gateway_with_an_audience_and_copies_every_header() -> None:
    http = dynamic()["http"]
    [(name, middleware)] = http["middlewares"].items()
    forward = middleware["forwardAuth"]
    assert forward["address"] == "http://gateway:8080/api/v1/auth/validate?aud=orders"
    assert forward["trustForwardHeader"] is True
    assert sorted(forward["authResponseHeaders"]) == sorted(CONTEXT_HEADERS)
    [router] = http["routers"].values()
    assert router["middlewares"] == [name]
    assert router["service"] in http["services"]
    assert router["entryPoints"] == list(static()["entryPoints"])
    assert static()["providers"]["file"]["filename"] == "/etc/traefik/dynamic.yml"
