"""Moving a Django service's users to the gateway: `manage.py export_gateway_users` on a real
Django database (SQLite) writes the CSV that the real `gateway users import` takes, on SQLite
and on PostgreSQL; the users then log in through the gateway's API with the passwords they had
in Django (Django's pbkdf2_sha256 hashes as they are, its argon2 ones rewritten)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from aiohttp import ClientSession

from tests.kits.python.support import django_environment, manage
from tests.support import (
    auth_settings,
    command_environment,
    fetch,
    gateway_command,
    quiet_settings,
    routes,
    running_gateway,
)

CREATE_USERS = """
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
User = get_user_model()
User.objects.create_superuser("ada", "Ada@Example.com", "ada's old password")
User.objects.create_user("bob", "bob@example.com", password=None).__class__.objects.filter(
    username="bob").update(password=make_password("bob's old password", hasher="argon2"))
User.objects.create_user("carol", "", "carol's old password")
User.objects.create_user("dave", "dave@example.com", None)
User.objects.create_user("erin", "erin@example.com", "erin's old password", is_active=False)
frank = User.objects.create_user("frank", "frank@example.com", "frank's old password")
frank.groups.add(Group.objects.create(name="billing"), Group.objects.create(name="Sales Team"))
User.objects.create_user("ada2", "ADA@example.com", "another")
User.objects.create_user("gus", "gus@example.com", None).__class__.objects.filter(
    username="gus").update(password="md5$salt$0123456789abcdef0123456789abcdef")
User.objects.create_user("hal", "hal@example.com", None).__class__.objects.filter(
    username="hal").update(password="0123456789abcdef0123456789abcdef")
"""


async def test_django_users_log_in_at_the_gateway_with_their_old_passwords(
    client: ClientSession, tmp_path: Path, database_url: str
) -> None:
    environment = django_environment(tmp_path)
    manage(environment, "migrate", "--verbosity", "0")
    manage(environment, "shell", "--verbosity", "0", "-c", CREATE_USERS)
    exported = tmp_path / "users.csv"
    done = manage(environment, "export_gateway_users", "--output", str(exported), "--group-roles")

    rows = list(csv.reader(exported.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["email", "password_hash", "roles"]
    assert [(row[0], row[2]) for row in rows[1:]] == [
        ("ada@example.com", "user;admin"),
        ("bob@example.com", "user"),
        ("frank@example.com", "user;billing"),
    ]
    assert rows[1][1].startswith("pbkdf2_sha256$1000$")
    assert rows[2][1].startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert done.stderr.splitlines() == [
        "skipped user 3 (carol): no e-mail address",
        "skipped user 4 (dave): no usable password (it could not log in here either)",
        "skipped user 5 (erin): inactive",
        "user 6: group 'Sales Team' is not a role name",
        "skipped user 7 (ada2): the e-mail address ada@example.com again",
        "skipped user 8 (gus): a password hash the gateway cannot import (md5)",
        # Django's unsalted MD5 has no algorithm name: none of the hash is shown.
        "skipped user 9 (hal): a password hash the gateway cannot import (unknown)",
        "exported 3 users",
    ]

    gateway_environment = command_environment(
        tmp_path,
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_JWT_SECRET="t1:" + "j" * 48,
        GATEWAY_SERVICE_SECRET="s1:" + "s" * 48,
    )
    migrated = gateway_command(tmp_path, gateway_environment, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    imported = gateway_command(
        tmp_path, gateway_environment, "users", "import", str(exported), "--json"
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {"created": 3, "skipped": []}

    settings = quiet_settings(auth=auth_settings(tmp_path, database_url=database_url))
    table = routes(
        {"unused": ["http://127.0.0.1:9"]},
        "{name: me, path: /api/v1/auth/me, upstream: auth_core, auth: jwt}",
        "{name: auth, path: /api/v1/auth, upstream: auth_core, auth: none}",
    )
    async with running_gateway(table, tmp_path, settings) as gw:
        login = gw.url + "/api/v1/auth/login"
        for email, password, roles in (
            ("ada@example.com", "ada's old password", ["user", "admin"]),
            ("bob@example.com", "bob's old password", ["user"]),
            ("frank@example.com", "frank's old password", ["user", "billing"]),
        ):
            answer = await fetch(client, "POST", login, json={"email": email, "password": password})
            assert answer.status == 200, answer.body
            token = answer.json()["access_token"]
            me = await fetch(
                client,
                "GET",
                gw.url + "/api/v1/auth/me",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert me.status == 200, me.body
            assert (me.json()["user"]["email"], me.json()["user"]["roles"]) == (email, roles)
        answer = await fetch(
            client, "POST", login, json={"email": "ada@example.com", "password": "not hers"}
        )
        assert answer.status == 401, answer.body
