"""The test site's users: Django's, with the link to the gateway's user id that a service
moving its users to the gateway adds (`auth_user_id`)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    auth_user_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
