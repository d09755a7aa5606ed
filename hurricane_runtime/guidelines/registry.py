"""The table of guidelines: one row per check id, whatever it looks at.

A row says what is wrong in one line (``title``), how to fix it (``hint``) and where the
guideline is explained (``doc``, a section of a page in ``docs/``). Its function yields one
``Finding`` per problem it sees; the registry adds the id, the level, the hint and the link, so
a check is a few lines of looking and nothing else.

Three scopes, one table:

- ``settings``: the function takes no argument and reads ``django.conf.settings``. These rows
  are Django system checks (tag ``hurricane``, deployment only): they run on
  ``manage.py check --deploy`` and in the audit, never on a plain ``manage.py check``.
- ``pod``: the function takes a ``manifests.PodContext`` (one container of a workload, its pod,
  the runtime options that container would get).
- ``dockerfile``: the function takes a ``dockerfile.Dockerfile``.

A new workload (``consume``, Celery) adds rows with the ``guideline`` decorator; the audit,
the system-check registration, the outputs and the docs test pick them up from this table.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core import checks

TAG = "hurricane"
SCOPES = ("settings", "pod", "dockerfile")
LEVEL_NAMES = {
    checks.DEBUG: "DEBUG",
    checks.INFO: "INFO",
    checks.WARNING: "WARNING",
    checks.ERROR: "ERROR",
    checks.CRITICAL: "CRITICAL",
}


@dataclass(frozen=True)
class Finding:
    """One problem a guideline function saw: what exactly, and where if it knows."""

    message: str
    obj: str | None = None  # a setting name, a container, a Dockerfile instruction
    path: str | None = None  # file the problem is in (manifests, Dockerfile)
    line: int | None = None  # 1-based line in ``path``


@dataclass(frozen=True)
class Guideline:
    id: str  # "hurricane.W001": W warns, E fails (the level is part of the id on purpose)
    title: str  # the rule in one line, for listings and SARIF
    hint: str  # how to fix it
    doc: str  # "docs/page.md#section" explaining why
    scope: str
    function: Callable[..., Iterable[Finding]] = field(compare=False)

    @property
    def level(self) -> int:
        kind = self.id.split(".", 1)[1][0]
        return {"E": checks.ERROR, "W": checks.WARNING, "I": checks.INFO}[kind]

    @property
    def hint_with_link(self) -> str:
        return f"{self.hint} See {self.doc}"


GUIDELINES: dict[str, Guideline] = {}


def guideline(id: str, title: str, hint: str, doc: str, scope: str = "settings"):
    """Add the decorated function to the table as the check ``id``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def add(function: Callable[..., Iterable[Finding]]) -> Callable[..., Iterable[Finding]]:
        if id in GUIDELINES:
            raise ValueError(f"guideline {id} is defined twice")
        GUIDELINES[id] = Guideline(id, title, hint, doc, scope, function)
        return function

    return add


def in_scope(scope: str) -> list[Guideline]:
    return sorted((row for row in GUIDELINES.values() if row.scope == scope), key=_number)


def ordered() -> list[Guideline]:
    """Every row, settings first, then pods, then the Dockerfile; by number within each."""
    return [row for scope in SCOPES for row in in_scope(scope)]


def _number(row: Guideline) -> str:
    return row.id.split(".", 1)[1][1:]


def as_message(row: Guideline, finding: Finding) -> checks.CheckMessage:
    return checks.CheckMessage(
        row.level, finding.message, hint=row.hint_with_link, obj=finding.obj, id=row.id
    )


def _system_check(row: Guideline) -> Callable:
    def check(app_configs=None, **kwargs):
        return [as_message(row, finding) for finding in row.function()]

    check.__name__ = check.__qualname__ = f"guideline_{row.id.replace('.', '_')}"
    check.__doc__ = row.title
    return check


_registered: set[str] = set()


def register_system_checks() -> None:
    """Every ``settings`` row becomes a deployment system check tagged ``hurricane``."""
    for row in in_scope("settings"):
        if row.id not in _registered:
            checks.register(_system_check(row), TAG, deploy=True)
            _registered.add(row.id)
