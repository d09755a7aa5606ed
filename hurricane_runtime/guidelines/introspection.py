"""What the settings checks learn by looking at the project rather than at one setting.

- Which source file holds a value (a secret written into the settings).
- What the settings would be without an environment variable (an unsafe fallback): the
  settings module is imported again in a child process whose environment lacks it, because
  a module's values are fixed once it is imported.
- Which liveness checks open a database connection: they run once with the database access
  of every connection class replaced by a tripwire.
- Whether anything runs on the async path (async views, an ASGI application).
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# Printed by the child process: does the settings module still load, and with what values.
_SETTINGS_PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
hosts = getattr(module, "ALLOWED_HOSTS", [])
print(json.dumps({
    "secret_key": bool(getattr(module, "SECRET_KEY", "")),
    "allowed_hosts": [str(host) for host in hosts] if isinstance(hosts, (list, tuple)) else [],
}))
"""
SETTINGS_PROBE_TIMEOUT = 60


def settings_file() -> Path | None:
    """The file of the settings module (None for ``settings.configure()``)."""
    module = sys.modules.get(settings.SETTINGS_MODULE or "")
    path = getattr(module, "__file__", None)
    return Path(path).resolve() if path else None


def settings_directory() -> Path | None:
    """The folder of the settings module: its siblings are settings source too."""
    path = settings_file()
    return path.parent if path else None


def source_file_containing(value: str) -> Path | None:
    """The settings source file (the settings module's folder) where ``value`` is written."""
    folder = settings_directory()
    if folder is None or len(value) < 8:
        return None
    for path in sorted(folder.glob("*.py")):
        try:
            if value in path.read_text(encoding="utf-8", errors="replace"):
                return _relative(path)
        except OSError:
            continue
    return None


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def libpq_setting(options: dict, key: str):
    """A libpq connection parameter from OPTIONS, or from its PG* environment variable."""
    environment_names = {"connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS"}
    return options.get(key) or os.environ.get(environment_names[key])


# -- fallbacks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fallback:
    setting: str
    variables: tuple[str, ...]
    value: str  # what the setting becomes, secrets hidden

    def describe(self) -> str:
        names = " and ".join(self.variables)
        return f"{self.setting} falls back to {self.value} when {names} is unset"


def _variables_holding_secret() -> tuple[str, ...]:
    key = str(getattr(settings, "SECRET_KEY", "") or "")
    return tuple(sorted(name for name, value in os.environ.items() if key and value == key))


def _variables_holding_hosts() -> tuple[str, ...]:
    hosts = set(settings.ALLOWED_HOSTS)
    found = []
    for name, value in os.environ.items():
        words = {word for word in value.replace(",", " ").split() if word}
        if "HOST" in name.upper() and words and words <= hosts:
            found.append(name)
    return tuple(sorted(found))


def _load_settings_without(variables: tuple[str, ...]) -> dict | None:
    """The settings module's values in a process without ``variables``; None if it refuses."""
    environ = {name: value for name, value in os.environ.items() if name not in variables}
    paths = [entry or os.getcwd() for entry in sys.path]
    environ["PYTHONPATH"] = os.pathsep.join(paths)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _SETTINGS_PROBE, settings.SETTINGS_MODULE],
            env=environ,
            capture_output=True,
            text=True,
            timeout=SETTINGS_PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def fallbacks() -> Iterator[Fallback]:
    """Settings that keep a value when the environment variable they come from is missing."""
    if not settings.SETTINGS_MODULE:
        return
    secret_variables = _variables_holding_secret()
    if secret_variables:
        values = _load_settings_without(secret_variables)
        if values is not None and values["secret_key"]:
            yield Fallback("SECRET_KEY", secret_variables, "a key written in the settings")
    host_variables = _variables_holding_hosts()
    if host_variables:
        values = _load_settings_without(host_variables)
        if values is not None and values["allowed_hosts"]:
            yield Fallback("ALLOWED_HOSTS", host_variables, repr(values["allowed_hosts"]))


# -- liveness checks and the database ------------------------------------------------------


class DatabaseAccessInLiveness(RuntimeError):
    """Raised by the tripwire when a liveness check tries to reach a database."""


def liveness_checks_touching_database() -> list[str]:
    """Names of the liveness-tagged checks that try to open a database connection."""
    from django.core import checks
    from django.db import connections

    from ..checks import LIVENESS, running_probes

    touched: list[str] = []
    current: list[str] = []

    def tripwire(self, *args, **kwargs):
        if current and current[-1] not in touched:
            touched.append(current[-1])
        raise DatabaseAccessInLiveness(f"liveness check touched database {self.alias!r}")

    patched = {}
    for alias in connections:
        for klass in type(connections[alias]).__mro__:
            if "ensure_connection" in vars(klass):
                patched.setdefault(klass, vars(klass)["ensure_connection"])
                break
    liveness = [
        check
        for check in checks.registry.registry.get_checks(include_deployment_checks=True)
        if LIVENESS in getattr(check, "tags", ())
    ]
    try:
        for klass in patched:
            klass.ensure_connection = tripwire
        for check in liveness:
            current.append(f"{check.__module__}.{check.__qualname__}")
            try:
                with running_probes():
                    check(app_configs=None, databases=None)
            except Exception:  # noqa: S110 - the check's own failure is not ours to judge
                pass
    finally:
        for klass, original in patched.items():
            klass.ensure_connection = original
    return touched


# -- the async path ------------------------------------------------------------------------


def async_in_use() -> str:
    """Why requests may run on the async path ("" when nothing does)."""
    from asgiref.sync import iscoroutinefunction
    from django.urls import URLPattern, URLResolver, get_resolver

    def views(patterns) -> Iterator:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.callback

    try:
        for view in views(get_resolver().url_patterns):
            if iscoroutinefunction(view):
                name = getattr(view, "__qualname__", repr(view))
                return f"the async view {view.__module__}.{name} uses it"
    except Exception:  # noqa: S110 - a broken URLconf is reported by Django's own checks
        pass
    if getattr(settings, "ASGI_APPLICATION", None):
        return f"ASGI_APPLICATION is {settings.ASGI_APPLICATION}"
    return ""
