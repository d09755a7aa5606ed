"""The git-ignored `.env` of a developer machine, for the local and test settings only: the
image never has one (.dockerignore) and production reads its environment from Kubernetes."""

import os
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent.parent.parent / ".env"


def read_env_file(path: Path = ENV_FILE) -> None:
    """Put KEY=VALUE lines of ``path`` into the environment; variables already set win."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip())
