"""Representative bakes used the way a new user uses them, step by step as their README says.

The PostgreSQL bake (the default answers) takes the whole first-day path: `make services`
(PostgreSQL from compose.yaml), `make install` (uv, the Python of .python-version), `make run`
(migrates, serves, reloads on a code change), `make test` against that PostgreSQL. Its last
step, `make build`, is the `image` session's: it builds this same default bake with
`make build` and runs the image hardened, so CI builds it once.

`make services` runs for real with docker compose where a docker daemon answers, else podman
compose or podman-compose (installed by the nox session). Machines that cannot pull images
(our CI) get a stand-in PostgreSQL image (`postgres_standin.py`) through compose.yaml's
POSTGRES_IMAGE; only where no compose engine runs at all do the tests fall back to the
PostgreSQL on 127.0.0.1:5432 with the role and database compose.yaml would create, and
`test_make_services_starts_postgresql` says so in its skip reason.

The second bake, SQLite with Django 6.1 on Python 3.12, other ports and the AMQP consumer, is
installed and checked with its own tools the same way; its consumer runs against the RabbitMQ
on 127.0.0.1:5672 (in a vhost of its own), the machine's broker standing in for the one
`make services` would start. The Celery bake (PostgreSQL answer, Redis broker) is installed and
checked the same way; its own tests run a real `celery worker` through the Redis on
127.0.0.1:6379, and `make worker` and `make beat` run as its README says, against the same Redis.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.helpers import bake, find_python, free_port, http_get, wait_for_status
from tests.image import engine as engines
from tests.project import postgres_standin

PG_HOST, PG_PORT, PG_ADMIN = "127.0.0.1", 5432, "postgres"

BAKES = {
    "postgresql": {},
    "sqlite-django61-py312-ports": {
        "database": "sqlite",
        "django_version": "6.1",
        "python_version": "3.12",
        "app_port": "9000",
        "probe_port": "9001",
        "project_slug": "orders_api",
        "amqp_consumer": "yes",
    },
    # Its tests include one through a real `serve` and the machine's Redis (127.0.0.1:6379).
    "websockets-sqlite": {"database": "sqlite", "websockets": "yes", "project_slug": "live_feed"},
    # Celery on the machine's Redis (127.0.0.1:6379): its tests run a real worker through it.
    # PostgreSQL (Celery refuses SQLite), but the tests run on SQLite as the other bakes do.
    "celery-redis": {"celery": "redis", "project_slug": "task_desk"},
}
# The machine's RabbitMQ (guest may log in from 127.0.0.1); TEST_AMQP_SERVER overrides it.
AMQP_SERVER = os.environ.get("TEST_AMQP_SERVER", "amqp://guest:guest@127.0.0.1:5672")
# The machine's Redis, the broker of the Celery bake; TEST_CELERY_BROKER overrides it.
CELERY_BROKER = os.environ.get("TEST_CELERY_BROKER", "redis://127.0.0.1:6379/0")


def run(args, cwd, env=None, timeout=600, check=True):
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def user_path(project: Path) -> str:
    """PATH of a user who installed the Python of .python-version (uv finds it there)."""
    version = (project / ".python-version").read_text().strip()
    python = find_python(version)
    if python is None:
        pytest.skip(f"Python {version} (.python-version) is not installed here")
    return os.pathsep.join([str(Path(python).parent), os.environ["PATH"]])


# -- the PostgreSQL services -----------------------------------------------------------------


class Services:
    """`make services` for real, or the machine's PostgreSQL where no compose engine runs."""

    def __init__(self, project: Path, env: dict[str, str]):
        self.project = project
        self.env = env  # what `make` gets: PATH, engine configuration, POSTGRES_*
        self.workdir: Path | None = None
        self.fallback_reason = ""
        self.database_url = ""
        self.started = False

    def start(self) -> None:
        reason = self._start_compose()
        if reason:
            self.fallback_reason = reason
            self._start_machine_postgres()

    def _compose_env(self) -> tuple[dict[str, str] | None, str]:
        if engines.docker_answers():
            return {}, ""  # docker compose pulls the real image
        if not (shutil.which("podman") and shutil.which("runc")):
            return None, "no docker daemon answers and podman (with runc) is not installed"
        if not (shutil.which("podman-compose") or shutil.which("docker-compose")):
            return None, "podman is installed but no compose tool (podman-compose) is"
        # podman's state under a temp folder, for make, podman-compose and podman alike.
        self.workdir = Path(tempfile.mkdtemp(prefix="hurricane-services-", dir="/var/tmp"))
        conf = self.workdir / "containers.conf"
        conf.write_text(engines.PODMAN_CONF)
        storage = self.workdir / "storage.conf"
        storage.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.workdir}/storage"\n'
            f'runroot = "{self.workdir}/run"\n'
        )
        env = {"CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}
        podman = engines.Engine(name="podman", prefix=["podman"], env=env)
        try:
            # No image can be pulled on our CI machines: the stand-in replaces the official one.
            env["POSTGRES_IMAGE"] = postgres_standin.import_image(podman)
        except (RuntimeError, AssertionError, OSError) as error:
            return None, f"the stand-in PostgreSQL image cannot be built: {error}"
        return env, ""

    def _start_compose(self) -> str:
        env, reason = self._compose_env()
        if env is None:
            return reason
        port = free_port()  # 5432 may be taken by a PostgreSQL of the machine
        self.env.update(env, POSTGRES_PORT=str(port))
        result = run(["make", "services"], self.project, env=self.env, timeout=300, check=False)
        self.started = True
        if result.returncode != 0:
            return f"`make services` failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        assert "PostgreSQL is ready" in result.stdout
        slug = self.project.name
        self.database_url = f"postgres://{slug}:{slug}@127.0.0.1:{port}/{slug}"
        return ""

    def _admin(self):
        psycopg = pytest.importorskip("psycopg")
        try:
            connection = psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname="postgres", connect_timeout=3
            )
        except psycopg.OperationalError as error:
            pytest.skip(f"{self.fallback_reason}; and PostgreSQL on 127.0.0.1 fails: {error}")
        connection.autocommit = True
        return connection

    def _start_machine_postgres(self) -> None:
        """What compose.yaml would give: role and database named after the slug."""
        slug = self.project.name
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{slug}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{slug}"')
            admin.execute(f"CREATE ROLE \"{slug}\" LOGIN CREATEDB PASSWORD '{slug}'")
            admin.execute(f'CREATE DATABASE "{slug}" OWNER "{slug}"')
        self.database_url = f"postgres://{slug}:{slug}@{PG_HOST}:{PG_PORT}/{slug}"

    def stop(self) -> None:
        if self.started:
            run(["make", "services-down", "VOLUMES=1"], self.project, env=self.env, check=False)
        if self.fallback_reason and self.database_url:
            slug = self.project.name
            with self._admin() as admin:
                for name in (f"test_{slug}", slug):
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'DROP ROLE IF EXISTS "{slug}"')
        if self.workdir is not None:
            env = {**os.environ, **self.env}
            subprocess.run(["podman", "rm", "--all", "--force"], env=env, capture_output=True)
            subprocess.run(["podman", "rmi", "--all", "--force"], env=env, capture_output=True)
            shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgresql_project(tmp_path_factory):
    """The default bake after `make services` and `make install`: (project, env, services)."""
    project = bake(tmp_path_factory.mktemp("postgresql"))
    readme = (project / "README.md").read_text()
    for step in ("make services", "make install", "make run", "make test"):
        assert f"    {step}" in readme, step
    env = {"PATH": user_path(project)}
    services = Services(project, env)
    try:
        services.start()
        # `.env` points at 127.0.0.1:5432; the test's services may listen elsewhere.
        env["DATABASE_URL"] = services.database_url
        run(["make", "install"], project, env=env)
        yield project, env, services
    finally:
        services.stop()


def test_make_services_starts_postgresql(postgresql_project):
    project, env, services = postgresql_project
    if services.fallback_reason:
        pytest.skip(
            "no compose engine could run PostgreSQL here, the other tests used the machine's "
            f"PostgreSQL on 127.0.0.1:5432 instead: {services.fallback_reason}"
        )
    # Ready means the database of compose.yaml exists and takes the project's role.
    result = run(
        [
            ".venv/bin/python",
            "-c",
            "import os, psycopg; psycopg.connect(os.environ['DATABASE_URL']).close()",
        ],
        project,
        env=env,
    )
    assert result.returncode == 0
    # Starting them again is harmless (a person runs it every morning).
    again = run(["make", "services"], project, env=env, timeout=300)
    assert "PostgreSQL is ready" in again.stdout


def test_make_test_runs_against_postgresql(postgresql_project):
    project, env, _ = postgresql_project
    vendor = run(
        [
            ".venv/bin/python",
            "manage.py",
            "shell",
            "-c",
            "from django.db import connection; print(connection.vendor)",
        ],
        project,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{project.name}.settings.test"},
    )
    assert vendor.stdout.split()[-1] == "postgresql"
    result = run(["make", "test"], project, env=env)
    assert " passed" in result.stdout


def test_make_run_serves_postgresql_and_reloads_on_a_code_change(postgresql_project, tmp_path):
    project, env, _ = postgresql_project
    app_port, probe_port = free_port(), free_port()
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=project,
            env={
                **os.environ,
                **env,
                "HURRICANE_PORT": str(app_port),
                "HURRICANE_PROBE_PORT": str(probe_port),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, the reloader and its child stop together
        )
    urls = project / project.name / "urls.py"
    original = urls.read_text()
    try:
        wait_for_status(f"http://127.0.0.1:{probe_port}/ready", timeout=90, process=process)
        code, _, body = http_get(f"http://127.0.0.1:{app_port}/api/items/")
        assert code == 200, body
        assert "Applying items.0001_initial... OK" in log_path.read_text()

        # urls.py was imported by that first request; Django's StatReloader records a file's
        # mtime the first time it sees it (once a second) and reloads only on a later change,
        # so an edit before that first sighting would go unnoticed.
        time.sleep(2.5)
        marker = uuid.uuid4().hex
        urls.write_text(
            original
            + "\nfrom django.http import JsonResponse  # noqa: E402\n\n"
            + "urlpatterns.append(\n"
            + f'    path("reloaded/", lambda request: JsonResponse({{"m": "{marker}"}}))\n'
            + ")\n"
        )
        body = wait_for_status(
            f"http://127.0.0.1:{app_port}/reloaded/", timeout=60, process=process
        )
        assert marker in body.decode()
    finally:
        urls.write_text(original)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    text = log_path.read_text()
    print(text[-3000:])
    assert text.count("changed, reloading") == 1, text
    # One watcher line per start: the first one and the one after the reload.
    assert text.count("Watching for file changes") == 2, text


def test_a_missing_database_is_one_clear_line(postgresql_project):
    project, env, services = postgresql_project
    missing = services.database_url.rsplit("/", 1)[0] + "/no_such_database"
    result = run(["make", "migrate"], project, env={**env, "DATABASE_URL": missing}, check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert 'database "no_such_database" does not exist' in lines[0]
    assert "make services" in lines[0]
    password = project.name
    assert f":{password}@" not in lines[0], "the password is shown"


# -- every bake ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BAKES.keys())
def project(request, tmp_path_factory):
    """Each bake installed as its README says, with SQLite or the test machine's PostgreSQL
    (the services path is the PostgreSQL flow's, above)."""
    if request.param == "postgresql":
        project, env, _ = request.getfixturevalue("postgresql_project")
        return project, env
    project = bake(tmp_path_factory.mktemp(request.param), **BAKES[request.param])
    # The consumer's tests use the machine's broker, not the one of `make services` (.env).
    env = {
        "PATH": user_path(project),
        "DATABASE_URL": "",
        "AMQP_URL": f"{AMQP_SERVER}/%2F",
        "CELERY_BROKER_URL": CELERY_BROKER,
    }
    run(["make", "install"], project, env=env)
    return project, env


def manage(project, *args, env):
    return run([str(project / ".venv/bin/python"), "manage.py", *args], project, env=env)


def database(project) -> str:
    return "postgresql" if "psycopg" in (project / "pyproject.toml").read_text() else "sqlite"


def test_venv_uses_the_chosen_python_and_django(project):
    project, env = project
    result = run(
        [
            ".venv/bin/python",
            "-c",
            "import sys, django;print(*sys.version_info[:2], sep='.'); print(django.get_version())",
        ],
        project,
        env=env,
    )
    python, django = result.stdout.split()
    assert python == (project / ".python-version").read_text().strip()
    lock = (project / "pyproject.toml").read_text()
    line = re.search(r'"django>=(\d+\.\d+),', lock).group(1)
    assert django.startswith(line + "."), django


def test_installed_dependencies_are_consistent(project):
    project, env = project
    run(["uv", "pip", "check", "--python", ".venv/bin/python"], project, env=env)


def test_own_tests_pass(project):
    project, env = project
    result = run(["make", "test"], project, env=env)
    assert " passed" in result.stdout
    if (project / "tests" / "test_feed_serve.py").exists() and redis_reachable():
        # The live feed through a real server and Redis ran, not skipped.
        assert "skipped" not in result.stdout, result.stdout
    if (project / "tests" / "test_tasks.py").exists() and redis_reachable():
        # The task through a real `celery worker` and the Redis broker ran, not skipped.
        assert "skipped" not in result.stdout, result.stdout


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        return False
    return True


def test_lint_is_clean(project):
    project, env = project
    run(["make", "lint"], project, env=env)


def test_migrations_match_the_models(project):
    project, env = project
    manage(project, "makemigrations", "--check", "--dry-run", env=env)


def test_production_settings_pass_deploy_checks(project):
    project, env = project
    slug = project.name
    production = {
        **env,
        "DJANGO_SETTINGS_MODULE": f"{slug}.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "service.example.com",
        "DATABASE_URL": (
            # A plain URL: the settings add the timeouts the deploy checks ask for.
            "postgres://user:password@db.example.com:5432/service"
            if database(project) == "postgresql"
            else "sqlite:////tmp/never-opened.sqlite3"
        ),
        # Required with websockets (the channel layer); never connected to by the checks.
        "REDIS_URL": "redis://:password@redis.example.com:6379/0",
    }
    manage(project, "check", "--deploy", "--fail-level", "WARNING", env=production)


def test_collectstatic_writes_static_root(project):
    project, env = project
    result = manage(project, "collectstatic", "--noinput", env=env)
    assert f"static files copied to '{project / 'staticfiles'}'" in result.stdout


def test_make_help_lists_the_targets_and_the_variables(project):
    project, env = project
    out = run(["make"], project, env=env).stdout
    for target in ("help", "install", "run", "test", "lint", "migrate", "lock", "shell"):
        assert f"  {target} " in out, target
    for target in ("services", "services-down", "build", "deploy", "createsuperuser"):
        assert f"  {target} " in out, target
    variables = out.split("Variables", 1)[1]
    for name in (
        "OVERLAY",
        "TAG",
        "IMAGE",
        "CONTAINER_ENGINE",
        "BUILD_ARGS",
        "CA_BUNDLE",
        "PYTHON",
        "COMPOSE",
    ):
        line = next((li for li in variables.splitlines() if li.split()[:1] == [name]), "")
        assert len(line.split()) > 2, f"{name} is not listed with its meaning"


def test_make_shell_runs_django_shell(project):
    project, env = project
    result = subprocess.run(
        ["make", "--no-print-directory", "shell"],
        cwd=project,
        env={**os.environ, **env},
        input="from django.conf import settings; print('debug', settings.DEBUG)\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "debug True" in result.stdout


def test_createsuperuser_explains_that_there_are_no_accounts(project):
    project, env = project
    result = run(["make", "createsuperuser"], project, env=env, check=False)
    assert result.returncode != 0
    assert "this service has no user accounts" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_uv_is_one_clear_line(project):
    project, env = project
    path = os.pathsep.join(
        folder for folder in env["PATH"].split(os.pathsep) if not (Path(folder) / "uv").exists()
    )
    for target in ("lock", "install"):
        if target == "install":
            (project / ".venv/.installed").touch()
            os.utime(project / ".venv/.installed", (0, 0))  # older than uv.lock: must sync
        result = run(["make", target], project, env={**env, "PATH": path}, check=False)
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
        assert lines == [lines[0]] and "uv is not installed: get it with" in lines[0], lines
    run(["make", "install"], project, env=env)


def test_missing_python_is_one_clear_line(project):
    project, env = project
    result = run(["make", "install", "PYTHON=3.99"], project, env=env, check=False)
    # .venv is current: nothing to do, whatever PYTHON says. A changed .python-version is not.
    assert result.returncode == 0
    version = project / ".python-version"
    chosen = version.read_text()
    try:
        version.write_text("3.99\n")
        result = run(["make", "install"], project, env=env, check=False)
    finally:
        version.write_text(chosen)
    assert result.returncode != 0
    assert "Python 3.99 (PYTHON, from .python-version) is not installed" in result.stderr
    assert "uv python install 3.99" in result.stderr
    run(["make", "install"], project, env=env)


def test_lock_is_current(project, tmp_path):
    """`make lock` (uv lock) on a copy, taking the newest versions the ranges allow, changes
    nothing: the committed lock is current. Needs PyPI."""
    project, env = project
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv"))
    result = run(["uv", "lock", "--upgrade"], copy, env=env, check=False)
    if result.returncode != 0 and "error sending request" in result.stderr.lower():
        pytest.skip("PyPI is not reachable: cannot check the lock")
    assert result.returncode == 0, result.stderr
    assert (copy / "uv.lock").read_text() == (project / "uv.lock").read_text(), (
        "uv.lock is stale: run `python tests/lock.py` in the template"
    )


def test_distribution_holds_the_service_and_the_runtime(project, tmp_path):
    project, env = project
    run(["uv", "build", "--wheel", "--quiet", "-o", str(tmp_path)], project, env=env)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert project.name in top_level
    assert "hurricane_runtime" in top_level
    assert "tests" not in top_level


def test_pre_commit_hooks_run_offline(project, tmp_path):
    project, env = project
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    if not (copy / ".git").exists():
        run([*git, "init", "-q"], copy)
    run([*git, "add", "-A"], copy)
    offline = {**env, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    started = time.monotonic()
    run(["pre-commit", "run", "--all-files"], copy, env=offline)
    (copy / project.name / "badly.py").write_text("import os\nx=1\n")
    run([*git, "add", "-A"], copy)
    result = run(["pre-commit", "run", "--all-files"], copy, env=offline, check=False)
    assert result.returncode != 0
    assert "ruff" in result.stdout
    print(f"pre-commit took {time.monotonic() - started:.1f}s")


# -- the AMQP consumer bake ------------------------------------------------------------------


CONSUMER_BAKE = next(name for name, answers in BAKES.items() if answers.get("amqp_consumer"))
# The consumer's tests run on the bake that has one (the same installed project as above).
on_the_consumer_bake = pytest.mark.parametrize("project", [CONSUMER_BAKE], indirect=True)


def broker_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return None
    except OSError as error:
        return f"no RabbitMQ on 127.0.0.1:5672 ({error})"


@on_the_consumer_bake
def test_consumer_tests_ran_against_the_real_broker(project):
    """`make test` ran the handler's tests; the one against a real broker ran, not skipped."""
    project, env = project
    reason = broker_reachable()
    if reason:
        pytest.skip(reason)
    result = run([".venv/bin/pytest", "-rA", "tests/test_handlers.py"], project, env=env)
    assert "PASSED tests/test_handlers.py::test_consume_creates_items_and_dead_letters" in (
        result.stdout
    )
    assert "SKIPPED" not in result.stdout


@pytest.fixture
def vhost():
    """A vhost of its own on the machine's RabbitMQ, for `make consume` and its queue `items`."""
    reason = broker_reachable()
    if reason:
        pytest.skip(reason)
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is not installed: cannot make a vhost of its own")
    name = f"make-consume-{uuid.uuid4().hex[:8]}"
    user = AMQP_SERVER.split("//", 1)[1].split(":", 1)[0]
    for args in (["add_vhost", name], ["set_permissions", "-p", name, user, ".*", ".*", ".*"]):
        subprocess.run([rabbitmqctl, *args], capture_output=True, check=True, timeout=60)
    try:
        yield name
    finally:
        subprocess.run([rabbitmqctl, "delete_vhost", name], capture_output=True, timeout=60)


@contextlib.contextmanager
def make_running(project, args, environ, log_path):
    """``make *args`` running in the background; SIGTERM when the block ends.

    The signal goes to what make runs (the workload, as Kubernetes sends it to PID 1), and make
    then exits with the workload's status: read it from the process's ``returncode``.
    """
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["make", *args],
            cwd=project,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and the workload stop together
        )
    try:
        yield process
    finally:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        for child in children.read_text().split() if children.exists() else []:
            os.kill(int(child), signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for_item(project, name: str, environ, log_path, timeout: float = 30) -> None:
    """Until the project's database has the ``Item`` called ``name`` (the log tells why not)."""
    count = (
        f"from {project.name}.items.models import Item; "
        f"print(Item.objects.filter(name={name!r}).count())"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = run([".venv/bin/python", "manage.py", "shell", "-c", count], project, env=environ)
        if found.stdout.split()[-1:] == ["1"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"no item {name}:\n{log_path.read_text()[-3000:]}")


@on_the_consumer_bake
def test_make_consume_turns_a_message_into_an_item(project, vhost, tmp_path):
    project, env = project
    url = f"{AMQP_SERVER}/{vhost}"
    port = free_port()
    database = tmp_path / "consume.sqlite3"
    environ = {**os.environ, **env, "AMQP_URL": url, "DATABASE_URL": f"sqlite:///{database}"}
    log_path = tmp_path / "consume.log"
    marker = uuid.uuid4().hex
    with make_running(project, ["consume", f"CONSUME_PROBE_PORT={port}"], environ, log_path) as (
        process
    ):
        wait_for_status(f"http://127.0.0.1:{port}/ready", timeout=90, process=process)
        publish = (
            "import sys; from hurricane_runtime.amqp import publish; "
            "publish({'name': sys.argv[1]}, 'items', amqp_url=sys.argv[2])"
        )
        run([".venv/bin/python", "-c", publish, marker, url], project, env=environ)
        wait_for_item(project, marker, environ, log_path)
    text = log_path.read_text()
    assert process.returncode == 0, text[-3000:]
    assert "consuming from items" in text, text[-3000:]


# -- the Celery bake -------------------------------------------------------------------------


CELERY_BAKE = next(name for name, answers in BAKES.items() if answers.get("celery"))
on_the_celery_bake = pytest.mark.parametrize("project", [CELERY_BAKE], indirect=True)


@on_the_celery_bake
def test_make_worker_runs_a_task_and_make_beat_starts_beside_it(project, tmp_path):
    """`make worker` and `make beat` as the README says: ready on their probe ports, the worker
    turns a task sent from the project into an `Item`, both exit 0 on SIGTERM."""
    project, env = project
    if not redis_reachable():
        pytest.skip("no Redis on 127.0.0.1:6379 (the Celery broker of these tests)")
    database = tmp_path / "celery.sqlite3"
    environ = {**os.environ, **env, "DATABASE_URL": f"sqlite:///{database}"}
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker_port, beat_port = free_port(), free_port()
    marker = uuid.uuid4().hex
    with make_running(
        project, ["worker", f"WORKER_PROBE_PORT={worker_port}"], environ, worker_log
    ) as (worker):
        wait_for_status(f"http://127.0.0.1:{worker_port}/ready", timeout=120, process=worker)
        send = f"from {project.name}.items.tasks import create_item; create_item.delay({marker!r})"
        run([".venv/bin/python", "manage.py", "shell", "-c", send], project, env=environ)
        wait_for_item(project, marker, environ, worker_log)
        with make_running(project, ["beat", f"BEAT_PROBE_PORT={beat_port}"], environ, beat_log) as (
            beat
        ):
            wait_for_status(f"http://127.0.0.1:{beat_port}/ready", timeout=90, process=beat)
    assert worker.returncode == 0, worker_log.read_text()[-3000:]
    assert beat.returncode == 0, beat_log.read_text()[-3000:]
