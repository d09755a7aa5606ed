#!/usr/bin/env python
"""manage.py of the runtime's test project."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    # The runtime under test lives at the repository root; prefer it over an installed copy.
    sys.path[:0] = [str(here), str(here.parents[2])]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
