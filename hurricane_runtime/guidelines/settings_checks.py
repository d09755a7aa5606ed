"""Guidelines about the Django settings a production pod runs with.

Each function reads ``django.conf.settings`` (and, for the runtime's own options, the same
``ServeConfig`` that ``manage.py serve`` builds) and yields a ``Finding`` per problem. They run
as deployment system checks, so the settings under test are the ones the command was started
with: run ``check --deploy`` or the audit with the production settings module and environment.
"""

import re
from collections.abc import Iterator

from django.conf import settings
from django.utils.module_loading import import_string

from ..config import ConfigError, ServeConfig
from . import introspection
from .registry import Finding, guideline

SETTINGS_DOC = "docs/settings.md"
RUNTIME_DOC = "docs/runtime.md"

# Apps and middleware that serve HTML sessions; a JSON service behind an ingress needs none.
HTML_APPS = {
    "django.contrib.admin": "the admin site",
    "django.contrib.sessions": "server-side sessions",
    "django.contrib.messages": "flash messages for HTML pages",
}
HTML_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware": "a session lookup",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "a user lookup from the session",
    "django.contrib.messages.middleware.MessageMiddleware": "a message storage",
}

# Words that mark a value as a placeholder when they make up a whole part of it
# ("change-me", "django-insecure-..."); random keys practically never hold one as a part.
PLACEHOLDER_WORDS = {
    "change",
    "changeme",
    "default",
    "dev",
    "development",
    "dummy",
    "example",
    "insecure",
    "local",
    "notsecret",
    "placeholder",
    "replace",
    "replaceme",
    "sample",
    "secret",
    "test",
    "tests",
    "todo",
    "unsafe",
}
MIN_SECRET_LENGTH = 50  # Django's own minimum for a key it calls strong
MIN_SECRET_CHARACTERS = 5


def looks_like_placeholder(value: str) -> bool:
    parts = {part for part in re.split(r"[^a-z0-9]+", value.lower()) if part}
    return bool(parts & PLACEHOLDER_WORDS)


def runtime_config() -> ServeConfig | None:
    """The options ``manage.py serve`` would run with here; None when they are invalid."""
    try:
        return ServeConfig.load(settings=settings)
    except ConfigError:
        return None  # hurricane.E004 reports it


# -- a service carries what it uses --------------------------------------------------------


@guideline(
    "hurricane.W001",
    "An app for HTML pages is installed in a JSON service",
    "Remove it from INSTALLED_APPS if the service answers JSON only (or silence this id).",
    f"{SETTINGS_DOC}#apps-and-middleware-a-service-does-not-need",
)
def html_apps() -> Iterator[Finding]:
    for app, purpose in HTML_APPS.items():
        if app in settings.INSTALLED_APPS:
            yield Finding(f"{app} ({purpose}) is installed", obj="INSTALLED_APPS")


@guideline(
    "hurricane.W002",
    "Middleware for HTML sessions runs on every request of a JSON service",
    "Remove it from MIDDLEWARE if the service answers JSON only (or silence this id).",
    f"{SETTINGS_DOC}#apps-and-middleware-a-service-does-not-need",
)
def html_middleware() -> Iterator[Finding]:
    for path, cost in HTML_MIDDLEWARE.items():
        if path in settings.MIDDLEWARE:
            yield Finding(f"{path} costs {cost} on every request", obj="MIDDLEWARE")


# -- secrets and hosts ---------------------------------------------------------------------


@guideline(
    "hurricane.E001",
    "DEBUG is on in production settings",
    "Set DEBUG = False in the production settings; never read it from a default of True.",
    f"{SETTINGS_DOC}#production",
)
def debug_on() -> Iterator[Finding]:
    if settings.DEBUG:
        yield Finding("DEBUG is True", obj="DEBUG")


@guideline(
    "hurricane.E002",
    "SECRET_KEY is weak or a placeholder",
    "Generate one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'` and give "
    "it to the pod from a Secret.",
    f"{SETTINGS_DOC}#secrets-and-hosts-come-from-the-environment",
)
def weak_secret() -> Iterator[Finding]:
    key = str(getattr(settings, "SECRET_KEY", "") or "")
    reasons = []
    if len(key) < MIN_SECRET_LENGTH:
        reasons.append(f"{len(key)} characters (at least {MIN_SECRET_LENGTH})")
    if len(set(key)) < MIN_SECRET_CHARACTERS:
        reasons.append(f"{len(set(key))} different characters")
    if looks_like_placeholder(key):
        reasons.append("it reads like a placeholder")
    if reasons:
        yield Finding("SECRET_KEY is weak: " + ", ".join(reasons), obj="SECRET_KEY")


@guideline(
    "hurricane.W003",
    "SECRET_KEY is written in the source code",
    "Read it from the environment (DJANGO_SECRET_KEY) and refuse to start without it.",
    f"{SETTINGS_DOC}#secrets-and-hosts-come-from-the-environment",
)
def secret_in_source() -> Iterator[Finding]:
    key = str(getattr(settings, "SECRET_KEY", "") or "")
    path = introspection.source_file_containing(key)
    if path is not None:
        yield Finding(f"the SECRET_KEY in use is written in {path}", obj="SECRET_KEY")


@guideline(
    "hurricane.W004",
    "A setting falls back to a built-in value when its environment variable is missing",
    "Raise ImproperlyConfigured when the variable is missing, so a forgotten Secret or "
    "ConfigMap stops the pod instead of running it with a default.",
    f"{SETTINGS_DOC}#secrets-and-hosts-come-from-the-environment",
)
def unsafe_fallbacks() -> Iterator[Finding]:
    for fallback in introspection.fallbacks():
        yield Finding(fallback.describe(), obj=fallback.setting)


@guideline(
    "hurricane.W005",
    "ALLOWED_HOSTS accepts any host",
    "List the service's host names; probes use the probe port, which needs no host entry.",
    f"{SETTINGS_DOC}#secrets-and-hosts-come-from-the-environment",
)
def any_host() -> Iterator[Finding]:
    if "*" in settings.ALLOWED_HOSTS:
        yield Finding("ALLOWED_HOSTS contains '*'", obj="ALLOWED_HOSTS")


# -- databases and other clients -----------------------------------------------------------


def _network_databases() -> Iterator[tuple[str, dict, str]]:
    """(alias, settings dict, vendor) of every database reached over the network."""
    for alias, database in settings.DATABASES.items():
        engine = database.get("ENGINE", "")
        for vendor in ("postgresql", "postgis", "mysql", "oracle"):
            if vendor in engine:
                yield alias, database, "postgresql" if vendor == "postgis" else vendor
                break


@guideline(
    "hurricane.W006",
    "Database connections are opened and closed for every request",
    "Set CONN_MAX_AGE (for example 60) so each worker thread reuses its connection.",
    f"{SETTINGS_DOC}#database-connections-and-timeouts",
)
def no_connection_reuse() -> Iterator[Finding]:
    for alias, database, _vendor in _network_databases():
        if database.get("CONN_MAX_AGE", 0) == 0:
            yield Finding(f"database {alias!r} has CONN_MAX_AGE 0", obj="DATABASES")


@guideline(
    "hurricane.W007",
    "Reused database connections are not checked before use",
    "Set CONN_HEALTH_CHECKS = True so a connection the database dropped is replaced, not used.",
    f"{SETTINGS_DOC}#database-connections-and-timeouts",
)
def no_connection_health_checks() -> Iterator[Finding]:
    for alias, database, _vendor in _network_databases():
        if database.get("CONN_MAX_AGE", 0) != 0 and not database.get("CONN_HEALTH_CHECKS"):
            yield Finding(
                f"database {alias!r} reuses connections without CONN_HEALTH_CHECKS",
                obj="DATABASES",
            )


@guideline(
    "hurricane.W008",
    "The database connection has no connect timeout",
    "Add connect_timeout to the database OPTIONS (`?connect_timeout=5` in DATABASE_URL).",
    f"{SETTINGS_DOC}#database-connections-and-timeouts",
)
def no_connect_timeout() -> Iterator[Finding]:
    for alias, database, vendor in _network_databases():
        options = database.get("OPTIONS") or {}
        if vendor == "postgresql" and introspection.libpq_setting(options, "connect_timeout"):
            continue
        if vendor == "mysql" and options.get("connect_timeout"):
            continue
        if vendor == "oracle":
            continue  # set in the DSN or sqlnet.ora, not visible here
        yield Finding(f"database {alias!r} sets no connect_timeout", obj="DATABASES")


@guideline(
    "hurricane.W009",
    "Database queries have no time limit",
    "Give PostgreSQL a statement_timeout (`options=-c statement_timeout=5000` in OPTIONS or "
    "DATABASE_URL; read_timeout for MySQL), so a stuck query frees its worker.",
    f"{SETTINGS_DOC}#database-connections-and-timeouts",
)
def no_statement_timeout() -> Iterator[Finding]:
    for alias, database, vendor in _network_databases():
        options = database.get("OPTIONS") or {}
        if vendor == "postgresql":
            if "statement_timeout" in str(introspection.libpq_setting(options, "options") or ""):
                continue
            yield Finding(f"database {alias!r} sets no statement_timeout", obj="DATABASES")
        elif vendor == "mysql" and not options.get("read_timeout"):
            yield Finding(f"database {alias!r} sets no read_timeout", obj="DATABASES")


# Cache backends that talk to a server, and the OPTIONS keys of their two timeouts.
CACHE_TIMEOUT_OPTIONS = {
    "django.core.cache.backends.redis.RedisCache": ("socket_connect_timeout", "socket_timeout"),
    "django_redis.cache.RedisCache": ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"),
    "django.core.cache.backends.memcached.PyMemcacheCache": ("connect_timeout", "timeout"),
}


@guideline(
    "hurricane.W010",
    "A cache client waits without a time limit",
    "Set both timeouts in the cache's OPTIONS (for Redis: socket_connect_timeout and "
    "socket_timeout), so a stuck cache cannot hold every worker.",
    f"{SETTINGS_DOC}#timeouts-of-other-clients",
)
def cache_without_timeouts() -> Iterator[Finding]:
    for alias, cache in getattr(settings, "CACHES", {}).items():
        keys = CACHE_TIMEOUT_OPTIONS.get(cache.get("BACKEND", ""))
        if keys is None:
            continue
        options = cache.get("OPTIONS") or {}
        missing = [key for key in keys if options.get(key) is None]
        if missing:
            yield Finding(f"cache {alias!r} sets no {' and no '.join(missing)}", obj="CACHES")


# -- logs ----------------------------------------------------------------------------------


@guideline(
    "hurricane.W011",
    "Logs are written to a file inside the container",
    "Log to stdout with a StreamHandler: the container's file system is read-only and the "
    "cluster collects stdout.",
    f"{SETTINGS_DOC}#logging",
)
def file_logging() -> Iterator[Finding]:
    handlers = (getattr(settings, "LOGGING", None) or {}).get("handlers", {})
    for name, handler in handlers.items():
        handler_class = str(handler.get("class", ""))
        if "filename" in handler or handler_class.endswith("FileHandler"):
            yield Finding(f"logging handler {name!r} ({handler_class}) writes a file", "LOGGING")


# -- the runtime's own options -------------------------------------------------------------


@guideline(
    "hurricane.E003",
    "The runtime's options are invalid",
    "Fix the HURRICANE_ setting or environment variable the message names.",
    f"{RUNTIME_DOC}#options",
)
def invalid_runtime_options() -> Iterator[Finding]:
    try:
        ServeConfig.load(settings=settings)
    except ConfigError as error:
        yield Finding(str(error))


@guideline(
    "hurricane.W012",
    "The probe port is switched off",
    "Unset HURRICANE_NO_PROBE in production: Kubernetes needs the probes.",
    f"{RUNTIME_DOC}#probes",
)
def probes_off() -> Iterator[Finding]:
    config = runtime_config()
    if config is not None and config.no_probe:
        yield Finding(f"no_probe is on (from {config.sources['no_probe']})", "HURRICANE_NO_PROBE")


@guideline(
    "hurricane.E004",
    "A liveness check touches the database",
    "Move the check to readiness (@readiness_check): a database outage must take pods out "
    "of the Service, not restart every pod at once.",
    f"{RUNTIME_DOC}#liveness-never-touches-the-database",
)
def liveness_uses_database() -> Iterator[Finding]:
    for name in introspection.liveness_checks_touching_database():
        yield Finding(f"liveness check {name} opened a database connection", obj=name)


@guideline(
    "hurricane.W013",
    "Middleware without async support runs on the async path",
    "Use middleware that supports async (async_capable = True, or MiddlewareMixin), or "
    "Django switches threads for every request around it.",
    f"{RUNTIME_DOC}#middleware-on-the-async-path",
)
def sync_middleware_on_async_path() -> Iterator[Finding]:
    why = introspection.async_in_use()
    if not why:
        return
    for path in settings.MIDDLEWARE:
        try:
            middleware = import_string(path)
        except ImportError:
            continue  # Django's own checks report middleware that cannot be imported
        if not getattr(middleware, "async_capable", False):
            yield Finding(f"{path} is synchronous only, and {why}", obj="MIDDLEWARE")


@guideline(
    "hurricane.W014",
    "A development flag of the runtime is on",
    "Set autoreload and debug in the local settings only; production must not inherit them.",
    f"{RUNTIME_DOC}#development-flags-stay-out-of-production",
)
def development_flags() -> Iterator[Finding]:
    config = runtime_config()
    if config is None:
        return
    for name in ("autoreload", "debug"):
        if getattr(config, name):
            setting = "HURRICANE_" + name.upper()
            yield Finding(f"{name} is on (from {config.sources[name]} {setting})", setting)
