"""One audit run: the settings checks through Django's check framework, then the pod and
Dockerfile rules when manifests or a Dockerfile are given. The result is a flat list of
``Result`` rows that every output format renders the same way."""

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import checks

from . import introspection
from .dockerfile import load_dockerfile
from .manifests import load_documents, pod_contexts
from .registry import GUIDELINES, LEVEL_NAMES, TAG, Guideline, in_scope, ordered


@dataclass(frozen=True)
class Result:
    id: str
    level: int
    message: str
    hint: str
    doc: str
    title: str
    path: str | None
    line: int | None

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, str(self.level))


def _settings_location(name: str | None) -> tuple[str | None, int | None]:
    """The settings file and line assigning ``name`` (its last assignment), or the module."""
    module_file = introspection.settings_file()
    if module_file is None:
        return None, None
    siblings = module_file.parent.glob("*.py")
    files = [module_file] + sorted(path for path in siblings if path != module_file)
    if name:
        assignment = re.compile(rf"^\s*{re.escape(name)}\s*(\+|\|)?=", re.MULTILINE)
        for path in files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            matches = list(assignment.finditer(text))
            if matches:  # the last assignment is the one in effect
                return str(_relative(path)), text.count("\n", 0, matches[-1].start()) + 1
    return (str(_relative(module_file)), 1) if module_file.is_file() else (None, None)


def _relative(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _from_row(row: Guideline, message: str, path, line) -> Result:
    return Result(row.id, row.level, message, row.hint, row.doc, row.title, path, line)


def run_settings_checks() -> list[Result]:
    results = []
    for message in checks.run_checks(include_deployment_checks=True, tags=[TAG]):
        row = GUIDELINES.get(message.id)
        path, line = _settings_location(message.obj if isinstance(message.obj, str) else None)
        if row is None:
            results.append(
                Result(
                    message.id, message.level, message.msg, message.hint or "", "", "", path, line
                )
            )
        else:
            results.append(_from_row(row, message.msg, path, line))
    # Django keeps its checks in a set: put them in the table's order for a stable listing.
    position = {row.id: index for index, row in enumerate(ordered())}
    return sorted(results, key=lambda result: position.get(result.id, len(position)))


def _silenced() -> set[str]:
    return set(getattr(settings, "SILENCED_SYSTEM_CHECKS", []))


def run_manifest_rules(source: Path) -> list[Result]:
    documents = load_documents(source)
    results = []
    for context in pod_contexts(documents, settings):
        for row in in_scope("pod"):
            if row.id in _silenced():
                continue
            for finding in row.function(context):
                path = str(_relative(context.document.path))
                results.append(_from_row(row, finding.message, path, finding.line))
    return results


def run_dockerfile_rules(path: Path) -> list[Result]:
    dockerfile = load_dockerfile(path)
    results = []
    for row in in_scope("dockerfile"):
        if row.id in _silenced():
            continue
        for finding in row.function(dockerfile):
            results.append(_from_row(row, finding.message, str(_relative(path)), finding.line))
    return results


def run(manifests: Path | None = None, dockerfile: Path | None = None) -> list[Result]:
    """Everything the audit finds; reads the inputs first so bad input fails before checks."""
    results = []
    if manifests is not None:
        results += run_manifest_rules(manifests)
    if dockerfile is not None:
        results += run_dockerfile_rules(dockerfile)
    return run_settings_checks() + results
