"""Helpers shared by every test session: bake the template, find free ports, wait for URLs."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from cookiecutter.main import cookiecutter

from tests.ports import free_port  # noqa: F401 - the sessions import it from here

TEMPLATE_DIR = Path(__file__).resolve().parent.parent


def bake(output_dir: Path, **answers) -> Path:
    """Render the template without prompts into ``output_dir``; return the project folder."""
    project = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context={key: str(value) for key, value in answers.items()},
        output_dir=str(output_dir),
    )
    return Path(project)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; return status, headers and body, also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_for_status(url: str, status: int = 200, timeout: float = 30.0, process=None) -> bytes:
    """Poll ``url`` until it answers ``status``; fail early if ``process`` has exited."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"process exited with {process.returncode} while waiting for {url}"
            )
        try:
            code, _, body = http_get(url, timeout=2.0)
            if code == status:
                return body
            last = f"{code} {body[:200]!r}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def get_json(url: str, timeout: float = 5.0) -> tuple[int, object]:
    """GET ``url`` and decode its JSON body."""
    code, _, body = http_get(url, timeout=timeout)
    return code, json.loads(body)


def postgres_url(database: str) -> str | None:
    """A DATABASE_URL for the PostgreSQL server of the test machine, None if it is not reachable.

    ``TEST_POSTGRES_URL`` (without database name) overrides the server, default
    ``postgres://postgres@127.0.0.1:5432``. The database itself need not exist: pytest-django
    creates ``test_<database>`` through the server's maintenance database.
    """
    server = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    host_port = server.rsplit("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=2):
            pass
    except OSError:
        return None
    return f"{server.rstrip('/')}/{database}"


def find_python(version: str) -> str | None:
    """An interpreter of Python ``version`` ("3.13"): ``python3.13`` on PATH, else a pyenv
    build (pyenv's shims are skipped: they fail for versions no pyenv setting selects)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / f"python{version}"
        if "shims" not in candidate.parts and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    builds = sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"))
    return str(builds[-1]) if builds else None


def python_for_lock(django_version: str) -> str | None:
    """An interpreter uv can resolve a lock with: any one the Django line supports."""
    for version in ("3.13", "3.12", "3.14") + (("3.11",) if django_version == "5.2" else ()):
        found = find_python(version)
        if found:
            return found
    return None


def checkov_scan(folder: Path, framework: str) -> dict:
    """checkov over every file under ``folder`` in one run (it takes seconds to start), offline;
    its JSON report for ``framework`` (``kubernetes`` or ``dockerfile``)."""
    checkov = shutil.which("checkov")
    assert checkov, "checkov is not installed (nox installs it into the session)"
    result = subprocess.run(
        [
            checkov,
            "--skip-download",
            "--framework",
            framework,
            "--directory",
            str(folder),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"},
    )
    # Exit 1 means findings; anything else (or no JSON) means checkov itself failed.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    found = [report for report in reports if report.get("check_type") == framework]
    assert len(found) == 1, result.stdout[:3000]
    return found[0]


def checkov_failures(report: dict) -> list[str]:
    """One readable line per failed check of a checkov report."""
    return [
        f"{item['check_id']} {item['check_name']}: {item['resource']} in {item['file_path']}"
        for item in report["results"]["failed_checks"]
    ]
