"""Helpers of the audit tests. Projects to audit: the runtime's test project as production
runs it, and a deliberately bad project made with a real ``django-admin startproject`` plus
the usual mistakes (``bad/``).

Every audit runs as a real ``python manage.py hurricane_audit`` subprocess, so exit codes and
output formats are the ones a CI job sees.
"""

import atexit
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
TESTPROJECT = REPO_ROOT / "tests" / "runtime" / "testproject"
GOOD = HERE / "good"
BAD = HERE / "bad"
# Never connected to: the audit reads database settings, it does not open connections.
UNUSED_POSTGRES_URL = "postgres://app@127.0.0.1:1/app"


@dataclass
class Audit:
    returncode: int
    stdout: str
    stderr: str

    @property
    def findings(self) -> list[dict]:
        return json.loads(self.stdout)["findings"]

    @property
    def ids(self) -> set[str]:
        return {finding["id"] for finding in self.findings}


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HURRICANE_", "TESTPROJECT_", "DJANGO_", "PG"))
        and key != "DATABASE_URL"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_audit(project: Path, *args: str, env: dict[str, str]) -> Audit:
    result = subprocess.run(
        [sys.executable, "manage.py", "hurricane_audit", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Audit(result.returncode, result.stdout, result.stderr)


def manage(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env() -> dict[str, str]:
    """The test project's environment in production: secret, hosts, PostgreSQL."""
    return clean_env(
        DJANGO_SETTINGS_MODULE="testproject.settings_production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="testproject.example.com",
        DATABASE_URL=UNUSED_POSTGRES_URL,
        PYTHONPATH=os.pathsep.join([str(TESTPROJECT), str(REPO_ROOT)]),
    )


def bad_env(**extra: str) -> dict[str, str]:
    return clean_env(DJANGO_SETTINGS_MODULE="badsite.settings", PYTHONPATH=str(REPO_ROOT), **extra)


# The bad project and its two audits are built once per test run (they take a few seconds) and
# shared read-only by the tests; the folder goes when the run ends.


@functools.cache
def bad_project() -> Path:
    """``django-admin startproject badsite`` with the files and settings of ``bad/`` added."""
    root = Path(tempfile.mkdtemp(prefix="badsite-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "badsite", str(root)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    package = root / "badsite"
    with (package / "settings.py").open("a", encoding="utf-8") as settings:
        settings.write("\n" + (BAD / "settings_additions.py").read_text(encoding="utf-8"))
    with (package / "urls.py").open("a", encoding="utf-8") as urls:
        urls.write("\n" + (BAD / "urls_additions.py").read_text(encoding="utf-8"))
    shutil.copy(BAD / "middleware.py", package / "middleware.py")
    shutil.copytree(BAD / "healthapp", root / "healthapp")
    shutil.copytree(BAD / "k8s", root / "k8s")
    shutil.copy(BAD / "Dockerfile", root / "Dockerfile")
    return root


# The main audit: hosts come from DJANGO_ALLOWED_HOSTS (so its fallback to "*" shows), the
# probe port is switched off.
MAIN_AUDIT_ENV = {"DJANGO_ALLOWED_HOSTS": "api.example.com", "HURRICANE_NO_PROBE": "true"}


@functools.cache
def bad_audit() -> Audit:
    """The main audit of the bad project, manifests and Dockerfile given, as JSON."""
    return run_audit(
        bad_project(),
        *("--manifests", "k8s", "--dockerfile", "Dockerfile", "--format", "json"),
        env=bad_env(**MAIN_AUDIT_ENV),
    )


@functools.cache
def bad_audit_invalid_options() -> Audit:
    """A second audit: probe paths that collide, and no DJANGO_ALLOWED_HOSTS at all."""
    return run_audit(
        bad_project(), "--format", "json", env=bad_env(HURRICANE_LIVENESS_PROBE="/ready")
    )
