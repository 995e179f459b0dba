"""manage.py of the test site (run with the repository root on PYTHONPATH)."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.kits.python.django_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
