"""`nox -s demo [PATH]`: render the default service into ./demo-project and serve it.

Installs the project as its README says (`make install`: .venv from uv.lock, with uv),
applies migrations to a SQLite file (no PostgreSQL needed for a look around) and runs
`manage.py serve` on 127.0.0.1 until Ctrl-C.
Running it again re-renders the template into the same folder and keeps its .venv and database.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import bake, find_python, free_port  # noqa: E402

MARKER = ".hurricane-demo"
KEEP = {".venv", "db.sqlite3", MARKER}


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def quietly(function, *args):
    """Run ``function`` with our stdout (and so the hook's "ready in <temp folder>") silenced:
    the project is moved to its real folder afterwards, and we print that one."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            return function(*args)
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def render(target: Path) -> None:
    if target.exists() and not (target / MARKER).exists():
        sys.exit(f"{target} exists and was not made by the demo: give another path.")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = quietly(bake, Path(tmp))
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if old.name in KEEP:
                continue
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        for new in fresh.iterdir():
            if new.name not in KEEP or not (target / new.name).exists():
                shutil.move(str(new), target / new.name)
    (target / MARKER).write_text("rendered by `nox -s demo`; safe to delete\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="demo-project", help="where to render")
    target = Path(parser.parse_args().path).resolve()

    print(f"Rendering the default service into {target}")
    render(target)
    print(f"Hurricane Service is ready in {target}")
    env = {**os.environ, "DATABASE_URL": ""}  # local settings: SQLite in the project folder
    version = (target / ".python-version").read_text().strip()
    python = find_python(version)
    if python:
        env["PATH"] = os.pathsep.join([str(Path(python).parent), env["PATH"]])
    else:
        # A look around needs no particular Python: any the project supports will do.
        env["UV_PYTHON"] = python = sys.executable
        print(f"Python {version} (.python-version) is not installed: using {python}")
    print("Installing it as its README says: make install")
    subprocess.run(["make", "install", f"PYTHON={python}"], cwd=target, env=env, check=True)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(["make", "migrate"], cwd=target, env=env, check=True)

    app_port = 8000 if port_is_free(8000) else free_port()
    probe_port = 8001 if port_is_free(8001) and app_port != 8001 else free_port()
    env.update(HURRICANE_PORT=str(app_port), HURRICANE_PROBE_PORT=str(probe_port))
    print(
        f"""
Serving {target.name} (Ctrl-C stops it):

    example endpoint  http://127.0.0.1:{app_port}/api/items/
    startup probe     http://127.0.0.1:{probe_port}/startup
    readiness probe   http://127.0.0.1:{probe_port}/ready
    liveness probe    http://127.0.0.1:{probe_port}/alive
    metrics           http://127.0.0.1:{probe_port}/metrics

Add an item:  cd {target} && .venv/bin/python manage.py shell -c \\
    "from hurricane_service.items.models import Item; Item.objects.create(name='hello')"
""",
        flush=True,
    )
    server = subprocess.Popen([".venv/bin/python", "manage.py", "serve"], cwd=target, env=env)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the server too; it stops without the load-balancer delay.
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = 1
    print(f"\nStopped (exit code {code}).")
    return code


if __name__ == "__main__":
    sys.exit(main())
