"""How a started auth core is put together: each service is given what it uses, none holds the
core (docs/authentication.md), and the ones that work together share one of each."""

from __future__ import annotations

from auth_core.service import AuthCore


def services(core: AuthCore) -> dict[str, object]:
    return {
        "accounts": core.accounts,
        "sessions": core.sessions,
        "sdk": core.sdk,
        "tenants": core.tenants,
        "keys": core.keys,
        "pats": core.pats,
        "service_tokens": core.service_tokens,
        "bans": core.bans,
    }


async def test_no_service_holds_the_core(core: AuthCore) -> None:
    for name, service in services(core).items():
        held = [key for key, value in vars(service).items() if isinstance(value, AuthCore)]
        assert held == [], f"{name} holds the core as {held}"


async def test_the_services_share_the_cores_store_audit_trail_and_revoker(core: AuthCore) -> None:
    for name, service in services(core).items():
        given = vars(service)
        if "_store" in given:
            assert given["_store"] is core.store, name
        if "_audit" in given:
            assert given["_audit"] is core.audit_trail, name
        if "_revoker" in given:
            assert given["_revoker"] is core.revoker, name
    # The collaborators are the core's own, not copies: a revocation through one is seen by all.
    assert vars(core.keys)["_tenants"] is core.tenants
    assert vars(core.accounts)["_sessions"] is core.sessions
    assert vars(core.sdk)["_sessions"] is core.sessions
