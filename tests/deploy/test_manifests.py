"""deploy/compose.yaml against the compose-spec JSON schema, every manifest of deploy/kubernetes/
against the Kubernetes JSON schemas (strict: an unknown field is an error), both with
`jsonschema`; then what the schemas cannot know (probes on the gateway's endpoints, selectors
that select, the ConfigMap holding deploy/routes.yaml).

The schemas come from packages of the test extra: compose-spec's own schema as vendored by
check-jsonschema (Apache-2.0, check_jsonschema/builtin_schemas/vendor/licenses/), and the
Kubernetes API's schemas (from its OpenAPI document) as bundled by kubernetes-validate.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
import yaml

from gateway.routing.loader import load_route_table
from tests.support import cases

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(text.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def schema_errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found.append((f"{path.name}:{document['kind']}", document))
    return found


def newest_kubernetes() -> str:
    """The newest Kubernetes version whose schemas the installed kubernetes-validate bundles
    (1.37 with kubernetes-validate 1.37.0)."""
    bundle = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    versions = [
        entry.name.removeprefix("v").removesuffix("-local-strict")
        for entry in bundle.iterdir()
        if entry.name.endswith("-local-strict")
    ]
    return max(versions, key=lambda v: tuple(int(part) for part in v.split(".")))


@cache
def kubernetes_validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """The strict schema of one kind, its $refs resolved in the bundle's _definitions.json."""
    group = api_version.split("/")[0].split(".")[0] + "-" if "/" in api_version else ""
    version = api_version.split("/")[-1]
    folder = resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{newest_kubernetes()}-local-strict"
    )
    schema = json.loads(folder.joinpath(f"{kind.lower()}-{group}{version}.json").read_text())
    definitions = json.loads(folder.joinpath("_definitions.json").read_text())
    registry: referencing.jsonschema.SchemaRegistry = referencing.Registry().with_resources(
        [
            ("", referencing.Resource.from_contents(schema)),
            ("_definitions.json", referencing.Resource.from_contents(definitions)),
        ]
    )
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry)  # type: ignore[no-any-return]


def k8s_errors(document: dict[str, Any]) -> list[str]:
    validator = kubernetes_validator(document["kind"], document["apiVersion"])
    return schema_errors(validator, document)


# -- compose -----------------------------------------------------------------------------------


def test_compose_file_is_valid_compose_spec() -> None:
    assert schema_errors(compose_validator(), compose()) == []


def broken_depends_on(document: dict[str, Any]) -> None:
    document["services"]["lb"]["depends_on"]["gateway-1"]["condition"] = "service_up"


def broken_healthcheck(document: dict[str, Any]) -> None:
    document["services"]["echo"]["healthcheck"]["intervall"] = "2s"


def misspelt_field(document: dict[str, Any]) -> None:
    document["services"]["lb"]["env_files"] = document["services"]["gateway-1"].pop("env_file")


@pytest.mark.parametrize(
    "damage",
    cases(
        [
            ("an unknown depends_on condition", broken_depends_on),
            ("a misspelt health check field", broken_healthcheck),
            ("a misspelt service field", misspelt_field),
        ]
    ),
)
def test_the_compose_schema_refuses_a_damaged_copy(damage: Any) -> None:
    """The check above is no formality: the same schema finds each of these."""
    document = copy.deepcopy(compose())
    damage(document)
    assert schema_errors(compose_validator(), document) != []


def test_compose_runs_two_replicas_behind_a_load_balancer_in_order() -> None:
    services = compose()["services"]
    replicas = [
        name for name, s in services.items() if s.get("command", [None])[:2] == ["gateway", "serve"]
    ]
    assert replicas == ["gateway-1", "gateway-2"]
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    for replica in replicas:
        service = services[replica]
        assert f"server {replica} {replica}:8080 check" in config
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert "/ready" in service["healthcheck"]["test"][-1]
        assert service["env_file"] == ["secrets/gateway.env"]
        assert "GATEWAY_JWT_SECRET" not in service["environment"]  # secrets only in the file
        assert services["lb"]["depends_on"][replica] == {"condition": "service_healthy"}
    assert services["migrate"]["command"] == ["gateway", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "option httpchk GET /ready" in config


def test_compose_mounts_the_routes_it_was_written_for() -> None:
    table = load_route_table(str(DEPLOY / "routes.yaml"))
    [target] = table.upstreams["echo"].targets
    echo = compose()["services"]["echo"]["command"]
    assert (target.host, target.port) == ("echo", int(echo[echo.index("--port") + 1]))


# -- kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("document"), [pytest.param(d, id=name) for name, d in manifests()])
def test_each_manifest_is_valid_against_the_kubernetes_schema(document: dict[str, Any]) -> None:
    assert tuple(int(part) for part in newest_kubernetes().split(".")[:2]) >= (1, 33)
    assert k8s_errors(document) == []


def test_the_kubernetes_schema_refuses_a_damaged_copy() -> None:
    deployment = copy.deepcopy(manifest("Deployment", "gateway"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # misspelt: would be ignored
    assert any("readinesProbe" in error for error in k8s_errors(deployment))
    deployment = copy.deepcopy(manifest("Deployment", "gateway"))
    deployment["spec"]["replicas"] = "two"
    assert k8s_errors(deployment) != []


def manifest(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def gateway_container() -> dict[str, Any]:
    [container] = manifest("Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def test_the_deployment_probes_drains_and_asks_for_resources() -> None:
    spec = manifest("Deployment", "gateway")["spec"]
    assert spec["replicas"] == 2
    container = gateway_container()
    [port] = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", 8080)
    command = container["command"]
    assert command[:2] == ["gateway", "serve"]
    assert command[command.index("--port") + 1] == "8080"
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = next(e["value"] for e in container["env"] if e["name"] == "GATEWAY_DRAIN_TIMEOUT")
    assert drain == "20s"
    # The grace period covers the preStop sleep, the drain and the supervisor's 5 s.
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 20 + 5
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    [migrate] = spec["template"]["spec"]["initContainers"]
    assert migrate["command"] == ["gateway", "migrate"]
    assert migrate["image"] == container["image"]


def test_secrets_come_from_the_secret_and_routes_from_the_config_map() -> None:
    container = gateway_container()
    secret = manifest("Secret", "gateway-secrets")
    assert container["envFrom"] == [{"secretRef": {"name": "gateway-secrets"}}]
    assert sorted(secret["stringData"]) == [
        "GATEWAY_DATABASE_URL",
        "GATEWAY_JWT_SECRET",
        "GATEWAY_SERVICE_SECRET",
    ]
    assert not any(e["name"] in secret["stringData"] for e in container["env"])
    volumes = {
        v["name"]: v
        for v in manifest("Deployment", "gateway")["spec"]["template"]["spec"]["volumes"]
    }
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/gateway"]
    config_map = manifest("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    command = container["command"]
    assert command[command.index("--config") + 1] == "/etc/gateway/routes.yaml"
    assert config_map["data"]["routes.yaml"] == (DEPLOY / "routes.yaml").read_text()


def test_service_and_budget_select_the_gateway_pods() -> None:
    labels = manifest("Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    service = manifest("Service", "gateway")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
    budget = manifest("PodDisruptionBudget", "gateway")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["minAvailable"] == 1
    echo = manifest("Service", "echo")["spec"]
    assert echo["ports"][0]["port"] == 9001  # routes.yaml: http://echo:9001
