"""Health checks: Django system checks tagged ``readiness`` or ``liveness``.

A project adds a check the way it adds any Django system check, with one of our tags::

    from django.core.checks import Error
    from hurricane_runtime.checks import readiness_check

    @readiness_check
    def cache_reachable(app_configs=None, **kwargs):
        if not cache_is_up():
            return [Error("cache does not answer", id="myapp.E001")]
        return []

A check fails the probe when it returns a message of level ERROR or worse.

Why the decorators instead of plain ``django.core.checks.register(fn, "readiness")``: Django
runs every registered check on ``manage.py check``, ``migrate`` and ``runserver`` unless the
caller asks for specific tags. A readiness check that queries the database would make those
commands fail while the database is down, which is exactly when an operator needs them. The
decorators register the check with its tag and make it do nothing unless the probe runner asks
for it. (A plain ``register(fn, "readiness")`` also drives the probe; it just runs on
``manage.py check`` too.)

Checks run on a dedicated thread per tag, never on the IOLoop or the request pool, and the
probes only read the last result: a slow check can make a probe fail, never make it slow.
"""

import contextlib
import contextvars
import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from functools import wraps

from django.core import checks
from django.db import connections

logger = logging.getLogger("hurricane_runtime")

READINESS = "readiness"
LIVENESS = "liveness"

# True only while the probe runner runs checks; guarded checks do nothing otherwise.
_probe_run: contextvars.ContextVar[bool] = contextvars.ContextVar("probe_run", default=False)


def _register(tag: str, check: Callable) -> Callable:
    @wraps(check)
    def guarded(app_configs=None, **kwargs):
        if not _probe_run.get():
            return []
        return check(app_configs=app_configs, **kwargs)

    checks.register(guarded, tag)
    return guarded


def readiness_check(check: Callable) -> Callable:
    """Register ``check`` for the readiness probe only (not for ``manage.py check``)."""
    return _register(READINESS, check)


def liveness_check(check: Callable) -> Callable:
    """Register ``check`` for the liveness probe only. Never touch the database here."""
    return _register(LIVENESS, check)


@contextlib.contextmanager
def running_probes():
    """Inside this block the guarded checks run (the probe runner, and the audit's dry run)."""
    token = _probe_run.set(True)
    try:
        yield
    finally:
        _probe_run.reset(token)


def run_tagged(tag: str) -> list[str]:
    """Run every check with ``tag``; return the reasons of failing ones (empty: healthy)."""
    try:
        with running_probes():
            messages = checks.run_checks(tags=[tag])
    except Exception as error:  # a crashing check is a failing check
        logger.exception("%s checks crashed", tag)
        return [f"{tag} checks crashed: {error!r}"]
    return [
        f"{message.id or 'check'}: {message.msg}" for message in messages if message.is_serious()
    ]


# -- the database check ----------------------------------------------------------------------

# Connections of the readiness thread, apart from the request threads' ones so that their
# timeouts can be short and a broken one can be dropped without touching request traffic.
_check_connections = threading.local()
database_timeout = 2.0  # set from config.check_timeout by the runner


def _probe_connection(alias: str):
    cache = _check_connections.__dict__.setdefault("by_alias", {})
    connection = cache.get(alias)
    if connection is None:
        connection = connections.create_connection(alias)
        settings_dict = copy.deepcopy(connection.settings_dict)
        options = settings_dict.setdefault("OPTIONS", {})
        seconds = max(1, math.ceil(database_timeout))
        if connection.vendor == "postgresql":
            options["connect_timeout"] = seconds
            statement = f"-c statement_timeout={int(database_timeout * 1000)}"
            options["options"] = f"{options.get('options', '')} {statement}".strip()
        elif connection.vendor == "mysql":
            options["connect_timeout"] = seconds
            options["read_timeout"] = seconds
        connection.settings_dict = settings_dict
        cache[alias] = connection
    return connection


def database_answers(app_configs=None, databases=None, **kwargs):
    """Every configured database answers ``SELECT 1`` within ``check_timeout``."""
    errors = []
    for alias in connections:
        if connections.settings[alias]["ENGINE"] == "django.db.backends.dummy":
            continue  # a project without a database
        connection = _probe_connection(alias)
        started = time.monotonic()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as error:
            with contextlib.suppress(Exception):
                connection.close()
            _check_connections.by_alias.pop(alias, None)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            errors.append(
                checks.Error(
                    f"database {alias!r} cannot answer a query: {reason}",
                    id="hurricane_runtime.E001",
                )
            )
            continue
        if time.monotonic() - started > database_timeout:
            errors.append(
                checks.Error(
                    f"database {alias!r} took longer than {database_timeout:g}s to answer",
                    id="hurricane_runtime.E002",
                )
            )
    return errors


# -- running checks off the loop -------------------------------------------------------------


class CheckRunner:
    """Runs the checks of one tag on its own thread and keeps the last result.

    ``refresh`` (on the loop) starts a run when the last one is older than ``interval`` and
    none is running; ``reasons`` (on the loop or a probe thread) answers at once from the last
    result. A run that takes longer than ``timeout`` counts as failed until it returns.
    """

    def __init__(
        self,
        tag: str,
        timeout: float,
        interval: float,
        on_result: Callable,
        healthy_before_first_run: bool = False,
    ):
        self.tag = tag
        # Liveness assumes health until told otherwise (a restart is expensive); readiness
        # assumes nothing (traffic must wait for a first good answer).
        self.healthy_before_first_run = healthy_before_first_run
        self.timeout = timeout
        self.interval = interval
        self.on_result = on_result
        self.result: list[str] | None = None  # None: never finished a run
        self.running_since: float | None = None
        self.finished_at = -math.inf
        self._loop = None
        self._thread: threading.Thread | None = None
        self._wakeup = threading.Event()
        self._stopped = False

    def start(self, asyncio_loop) -> None:
        self._loop = asyncio_loop
        self._thread = threading.Thread(
            target=self._work, name=f"hurricane-{self.tag}-checks", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._wakeup.set()

    def refresh(self) -> None:
        now = time.monotonic()
        if self.running_since is not None or now - self.finished_at < self.interval:
            return
        self.running_since = now
        self._wakeup.set()

    def reasons(self) -> list[str]:
        # Read once: a probe thread may ask while the loop marks the run finished.
        running_since = self.running_since
        if running_since is not None and time.monotonic() - running_since > self.timeout:
            return [f"{self.tag} checks did not finish within {self.timeout:g}s"]
        if self.result is None:
            if self.healthy_before_first_run:
                return []
            return [f"{self.tag} checks have not finished a first run yet"]
        return self.result

    def _work(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            if self._stopped:
                connections.close_all()
                return
            result = run_tagged(self.tag)
            try:
                self._loop.call_soon_threadsafe(self._finished, result)
            except RuntimeError:  # loop closed: we are shutting down
                return

    def _finished(self, result: list[str]) -> None:
        self.result = result
        self.running_since = None
        self.finished_at = time.monotonic()
        self.on_result()
