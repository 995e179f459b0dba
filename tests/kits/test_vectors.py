"""The shared test vectors (kits/vectors/context-v2.json) are what their generator makes from
the reference verifier, and say what the reference does: every verifier of the gateway's
context signatures runs them, so a stale file would let them all drift together."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from multidict import MultiDict

from gateway.context import ContextError, parse_keys, verify

ROOT = Path(__file__).resolve().parent.parent.parent
VECTORS = ROOT / "kits" / "vectors" / "context-v2.json"


def load() -> dict[str, Any]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_the_committed_file_is_the_generators_output() -> None:
    made = subprocess.run(
        [sys.executable, str(ROOT / "kits" / "vectors" / "generate.py"), "--stdout"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert made.stdout.decode("utf-8") == VECTORS.read_text(encoding="utf-8"), (
        "kits/vectors/context-v2.json is stale: run python kits/vectors/generate.py"
    )


def test_the_vectors_cover_the_cases_every_verifier_must_get_right() -> None:
    document = load()
    assert document["audience"] == "billing"
    assert document["now"] == 1767225600
    assert sorted(parse_keys(document["keys"])) == ["k1", "k2"]
    verdicts = {case["description"].split(":")[0] for case in document["cases"]}
    assert verdicts == {"valid", "refused"}
    by_start = {case["description"]: case["valid"] for case in document["cases"]}

    def verdict(start: str) -> bool:
        [found] = [valid for text, valid in by_start.items() if start in text]
        return found

    assert verdict("exactly 60 s old") is True
    assert verdict("61 s old") is False
    assert verdict("5 s in the future") is True
    assert verdict("6 s in the future") is False
    assert verdict("another audience (orders)") is False
    assert verdict("unknown kid") is False
    assert verdict("a v1 signature") is False
    assert verdict("X-Gateway-Signature twice") is False
    assert verdict("signed with the second key (k2)") is True
    methods = {case["context"]["auth_method"] for case in document["cases"] if case["valid"]}
    assert methods == {"jwt", "api_key", "pat", "service", "none"}
    assert len(document["cases"]) >= 40


@pytest.mark.parametrize("case", load()["cases"], ids=lambda case: case["description"][:70])
def test_the_reference_gives_each_vector_its_verdict(case: dict[str, Any]) -> None:
    document = load()
    headers = MultiDict((name, value) for name, value in case["headers"])
    keys = parse_keys(document["keys"])
    arguments = (keys, "billing", case["method"], case["path"], headers)
    if not case["valid"]:
        with pytest.raises(ContextError):
            verify(*arguments, now=document["now"])
        return
    context = verify(*arguments, now=document["now"])
    assert {
        "auth_method": context.auth_method,
        "request_id": context.request_id,
        "user_id": context.user_id,
        "email": context.email,
        "email_verified": context.email_verified,
        "roles": list(context.roles),
        "tenant_id": context.tenant_id,
        "session_id": context.session_id,
        "credential_id": context.credential_id,
        "timestamp": context.timestamp,
    } == case["context"]
