"""Authenticators, one module a kind of credential (as ORY Oathkeeper's `pipeline/authn`):
jwt.py, api_key.py, pat.py, service.py, and first_match.py for `auth: any`; base.py holds what
they share. Each either answers for a request (proves who it is, or refuses it) or says it is
not responsible, the request carrying no credential of its kind (docs/routes.md)."""
