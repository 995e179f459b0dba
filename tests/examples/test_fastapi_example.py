"""examples/fastapi/README.md run as written (tests/examples/readme_script.py): the gateway
from its CLI, the example's app.py under uvicorn, and the README's curl commands; the caller
reaches the service through the gateway, and the service refuses the made-up headers sent to
it directly."""

from __future__ import annotations

import json
from pathlib import Path

from tests.examples.readme_script import ROOT, run_readme


def test_the_fastapi_example_as_its_readme_says(tmp_path: Path) -> None:
    run = run_readme(ROOT / "examples" / "fastapi", tmp_path, ports=("8001", "8080"))
    assert run.output.returncode == 0, run.explain()
    # The three curl answers, in order: the invoice made, the caller's invoices, and the
    # service's own refusal (status line, headers, body).
    out = run.output.stdout
    created, listed, refused = out[out.index("{") :].split("\n", 2)
    assert json.loads(created)["customer"] == "Acme", run.explain()
    mine = json.loads(listed)
    assert mine["caller"]["email"] == "ada@example.com"
    assert mine["caller"]["roles"] == ["billing"]
    assert [invoice["amount_cents"] for invoice in mine["invoices"]] == [1200]
    assert refused.startswith("HTTP/1.1 401"), run.explain()
    assert "content-type: application/problem+json" in refused.lower()
    assert '"error": "invalid_context"' in refused
