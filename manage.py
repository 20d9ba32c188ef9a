#!/usr/bin/env python
"""Django's command-line utility for Samverkan."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.embedded_db import EmbeddedDatabaseError

    try:
        execute_from_command_line(sys.argv)
    except EmbeddedDatabaseError as exc:
        sys.stderr.write(f"samverkan: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
