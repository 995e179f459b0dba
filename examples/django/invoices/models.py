"""An invoice belongs to a user of the gateway, by the gateway's user id."""

from __future__ import annotations

from django.db import models


class Invoice(models.Model):
    owner_id = models.CharField(max_length=64, db_index=True)  # X-User-Id
    customer = models.CharField(max_length=200)
    amount_cents = models.PositiveIntegerField()
