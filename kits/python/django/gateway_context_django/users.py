"""The `request.user` of a request the gateway vouched for: a GatewayUser built from the
context, or (GATEWAY_CONTEXT_LOCAL_USER) the service's own Django user linked to it by the
gateway's user id, found or created."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q

from gateway.context import Context
from gateway_context_django.verify import Settings


class NoLocalUser(Exception):
    """GATEWAY_CONTEXT_LOCAL_USER is `find` and no local user has the caller's id."""


class GatewayUser:
    """The caller as the gateway vouched for it, with no database row behind it. Its roles
    are the gateway's (`has_role`, HasRole); Django's model permissions it has none of."""

    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True

    def __init__(self, context: Context) -> None:
        self.gateway = context
        self.id = self.pk = context.user_id
        self.email = context.email or ""
        self.email_verified = context.email_verified
        self.roles = frozenset(context.roles)
        self.tenant_id = context.tenant_id
        self.auth_method = context.auth_method
        self.credential_id = context.credential_id

    def get_username(self) -> str:
        return self.email or self.id or self.credential_id or ""

    @property
    def username(self) -> str:
        return self.get_username()

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perms: object, obj: object = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def __str__(self) -> str:
        return self.get_username()

    def __repr__(self) -> str:
        return f"<GatewayUser {self.get_username()!r} via {self.auth_method}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GatewayUser) and other.gateway == self.gateway

    def __hash__(self) -> int:
        return hash(self.gateway)


def user_for(context: Context, config: Settings) -> Any:
    """The request.user for `context`: AnonymousUser on a public route (auth: none), the
    local Django user where configured and the caller is a user, else a GatewayUser.

    The local user is the one whose GATEWAY_CONTEXT_LOCAL_USER_FIELD holds the caller's id;
    with GATEWAY_CONTEXT_LINK_BY_EMAIL, else one not linked yet whose e-mail address is the
    caller's verified one (then linked); with `create`, else a new one."""
    if context.auth_method == "none":
        return AnonymousUser()
    if config.local_user == "off" or context.user_id is None:
        return GatewayUser(context)
    model = get_user_model()
    field = config.local_user_field
    manager = model._default_manager
    user = manager.filter(**{field: context.user_id}).first()
    if user is None and config.link_by_email and context.email and context.email_verified:
        # A user of this service from before the gateway (moved over by export_gateway_users),
        # linked once by the address the gateway verified; an unverified address could be
        # anyone's, and links nothing.
        email_field = model.get_email_field_name()
        unlinked = Q(**{field: ""}) | Q(**{f"{field}__isnull": True})
        user = manager.filter(unlinked, **{f"{email_field}__iexact": context.email}).first()
        if user is not None:
            setattr(user, field, context.user_id)
            user.save(update_fields=[field])
    if user is None and config.local_user == "find":
        raise NoLocalUser(f"no local account for gateway user {context.user_id}")
    if user is None:
        defaults: dict[str, Any] = {}
        if field != model.USERNAME_FIELD:
            defaults[model.USERNAME_FIELD] = context.user_id
        email_field = model.get_email_field_name()
        if context.email and email_field != field:
            defaults[email_field] = context.email
        user, created = manager.get_or_create(defaults=defaults, **{field: context.user_id})
        if created:
            # It signs in at the gateway, never here.
            user.set_unusable_password()
            user.save(update_fields=["password"])
    if not getattr(user, "is_active", True):
        # Deactivated by this service: the gateway's word does not bring them back.
        raise NoLocalUser(f"the local account of gateway user {context.user_id} is inactive")
    user.gateway = context
    return user
