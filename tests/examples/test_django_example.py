"""examples/django/README.md run as written (tests/examples/readme_script.py): the gateway
from its CLI, the example's Django + DRF project under uvicorn, the README's curl commands, and
its export of users to the gateway; the caller reaches the service through the gateway, and
the service refuses the made-up headers sent to it directly."""

from __future__ import annotations

import json
from pathlib import Path

from tests.examples.readme_script import ROOT, run_readme


def test_the_django_example_as_its_readme_says(tmp_path: Path) -> None:
    run = run_readme(ROOT / "examples" / "django", tmp_path, ports=("8002", "8080"))
    assert run.output.returncode == 0, run.explain()
    out = run.output.stdout
    # The curl answers, in order: the invoice made, the caller's invoices, the service's own
    # refusal (status line, headers, body); then the users' import.
    created, listed, rest = out[out.index("{") :].split("\n", 2)
    assert json.loads(created) == {"id": 1, "customer": "Acme", "amount_cents": 1200}
    mine = json.loads(listed)
    assert mine["caller"]["email"] == "ada@example.com"
    assert mine["caller"]["roles"] == ["billing"]
    assert mine["invoices"] == [{"id": 1, "customer": "Acme", "amount_cents": 1200}]
    assert rest.startswith("HTTP/1.1 401"), run.explain()
    assert "content-type: application/problem+json" in rest.lower()
    assert '"error": "invalid_context"' in rest
    assert rest.rstrip().endswith("imported 0 users"), run.explain()
    assert "exported 0 users" in run.output.stderr
