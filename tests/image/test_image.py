"""The default bake's image, built for real and run the way the manifests run it: read-only root
file system, all capabilities dropped, no new privileges, numeric non-root user, a tmpfs at /tmp.
The migration runs first like the Job does, against the real PostgreSQL on 127.0.0.1; then
`serve` answers its probes, its HEALTHCHECK and the example endpoint on loopback, and stops
cleanly. `make push` to a real registry on loopback records the digest the registry serves, and
`make manifests` pins exactly that digest.

docker where a daemon answers, else podman (runc, state under a temp folder). No image can be
pulled on our CI machines, so the official Python base is replaced by a stand-in built with
debootstrap (Debian bookworm + python3 3.11), cached in /var/tmp between runs.
"""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.helpers import TEMPLATE_DIR, bake, free_port, http_get, wait_for_status
from tests.image import engine as engines

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
BASE_TAG = "localhost/hurricane-pybase:bookworm"
UID = "10001"
SECRET_KEY = "image-test-only-" + "x" * 40


def postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def engine():
    if shutil.which("make") is None:
        pytest.skip("make is not installed: the image is built with `make build`")
    found, reason = engines.find_engine()
    if found is None:
        pytest.skip(f"cannot build images here: {reason}")
    yield found
    found.close()


@pytest.fixture(scope="module")
def database():
    if not postgres_answers():
        pytest.skip(f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT}")
    psycopg = pytest.importorskip("psycopg")
    name = f"hurricane_image_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as admin:
        admin.autocommit = True
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as admin:
        admin.autocommit = True
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return bake(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def image(engine, project):
    """The image, built the way a person builds it: `make build` (deploy.mk) with our engine."""
    repository, tag = "localhost/hurricane-image-test", uuid.uuid4().hex[:8]
    engines.import_standin(engine, BASE_TAG)
    build_args = f"--build-arg BASE_IMAGE={BASE_TAG}"
    if engine.name == "podman":
        build_args += " --pull=never"
    make = [
        "make",
        "--no-print-directory",
        "build",
        f"CONTAINER_ENGINE={' '.join(engine.prefix)}",
        f"IMAGE={repository}",
        f"TAG={tag}",
        f"BUILD_ARGS={build_args}",
    ]
    if engines.HOST_CA_BUNDLE.exists():
        # Outbound HTTPS from builds is re-signed by a local CA here: pip needs the host's bundle.
        make.append(f"CA_BUNDLE={engines.HOST_CA_BUNDLE}")
    started = time.monotonic()
    result = subprocess.run(
        make,
        cwd=project,
        env={**os.environ, **engine.env},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"image built with make build in {time.monotonic() - started:.0f}s")
    yield f"{repository}:{tag}", tag, project
    engine.run("rmi", "--force", f"{repository}:{tag}", check=False)
    engine.run("rmi", "--force", BASE_TAG, check=False)


def hardened(*extra: str) -> list[str]:
    """`run` options matching the manifests' securityContext."""
    return [
        "run",
        "--network",
        "host",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        f"{UID}:{UID}",
        "--tmpfs",
        "/tmp:rw,size=64m",
        *extra,
    ]


def app_env(database_url: str) -> list[str]:
    pairs = {
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
    }
    return [arg for key, value in pairs.items() for arg in ("--env", f"{key}={value}")]


def test_image_metadata(engine, image):
    image, tag, _ = image
    info = json.loads(engine.run("image", "inspect", image).stdout)[0]
    config = info.get("Config") or info.get("config")
    assert config["User"] == f"{UID}:{UID}"
    assert config["Cmd"] == ["python", "manage.py", "serve"]
    assert not config.get("Entrypoint")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "hurricane-service"
    assert labels["org.opencontainers.image.version"] == tag
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["DJANGO_SETTINGS_MODULE"] == "hurricane_service.settings.production"
    assert not {"DJANGO_SECRET_KEY", "DATABASE_URL", "PIP_CERT", "SSL_CERT_FILE"} & set(env)
    # The HEALTHCHECK survived the build (podman keeps it only in docker format).
    # podman shows it at the top level, docker in Config.
    health = info.get("Healthcheck") or config.get("Healthcheck") or {}
    assert health.get("Test", [])[:3] == ["CMD", "python", "-c"], (sorted(info), config)


def test_image_holds_no_local_files_and_has_what_the_pod_needs(engine, image):
    image, _, _ = image
    script = (
        "import os, pathlib, shutil;"
        "assert not os.path.exists('/app/.env'), '.env leaked into the image';"
        "assert not os.path.exists('/app/tests'), 'tests leaked into the image';"
        "assert not os.path.exists('/run/secrets/ca'), 'the CA secret stayed';"
        "assert shutil.which('sleep'), 'preStop needs sleep';"
        "assert not shutil.which('uv') and not os.path.exists('/opt/uv'), 'uv is a build tool';"
        "assert not os.path.exists('/opt/venv/bin/pytest'), 'dev dependencies leaked';"
        "assert os.getuid() == 10001;"
        "assert list(pathlib.Path('/app/hurricane_service').rglob('*.pyc')), 'no bytecode';"
        "print('ok')"
    )
    result = engine.run(*hardened("--rm"), image, "python", "-c", script)
    assert result.stdout.strip().endswith("ok")


def test_migrates_then_serves_hardened_and_stops_cleanly(engine, image, database):
    image, _, _ = image
    # The migration Job: same image, same hardening, `migrate` instead of `serve`.
    engine.run(
        *hardened("--rm"), *app_env(database), image, "python", "manage.py", "migrate", "--noinput"
    )
    port, probe_port = free_port(), free_port()
    name = f"hurricane-image-test-{uuid.uuid4().hex[:8]}"
    engine.run(
        *hardened("--detach", "--name", name),
        *app_env(database),
        "--env",
        f"HURRICANE_PORT={port}",
        "--env",
        f"HURRICANE_PROBE_PORT={probe_port}",
        "--env",
        "HURRICANE_CHECK_MIGRATIONS=true",
        image,
    )
    try:
        probes = f"http://127.0.0.1:{probe_port}"
        wait_for_status(f"{probes}/startup", timeout=60)
        wait_for_status(f"{probes}/ready", timeout=20)
        wait_for_status(f"{probes}/alive", timeout=5)
        code, _, metrics = http_get(f"{probes}/metrics")
        assert code == 200 and metrics
        assert_healthy(engine, name)
        # Behind the ingress, which terminates TLS and says so.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/items/", headers={"X-Forwarded-Proto": "https"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
            json.loads(response.read())
        engine.run("stop", "--time", "30", name, timeout=60)
        state = json.loads(engine.run("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, engine.run("logs", name, check=False).stderr[-3000:]
    finally:
        logs = engine.run("logs", name, check=False)
        print(logs.stdout[-3000:], logs.stderr[-3000:])
        engine.run("rm", "--force", name, check=False)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def try_it_yourself_lines() -> list[str]:
    """The shell lines of docs/container.md's "try it yourself" block, as a person copies them."""
    text = (TEMPLATE_DIR / "docs" / "container.md").read_text()
    block = text.split("<!-- try-it-yourself -->", 1)[1].lstrip("\n")
    lines = []
    for line in block.splitlines():
        if not line.startswith("      "):
            break
        lines.append(line[6:])
    return lines


def test_docs_try_it_yourself_steps_work_as_written(engine, image, project, database):
    """The page's steps, with the image this session built (`make build` is the fixture's) and
    our engine; `.env` points at a fresh database as `make services` would."""
    image, _, _ = image
    if not (port_is_free(8000) and port_is_free(8001)):
        pytest.skip("ports 8000/8001 of the default answers are taken on this machine")
    lines = try_it_yourself_lines()
    assert lines[0] == "make build TAG=try"
    script = []
    for line in lines[1:]:
        if line.startswith("engine="):
            line = f"engine='{' '.join(engine.prefix)}'"
        elif line.startswith("image="):
            assert "deploy.mk" in line
            line = f"image='{image}'"
        script.append(line)
    env_file = project / ".env"
    original = env_file.read_text()
    env_file.write_text(
        "\n".join(
            f"DATABASE_URL={database}" if line.startswith("DATABASE_URL=") else line
            for line in original.splitlines()
        )
        + "\n"
    )
    log = (project / "try-it.log").open("w+")
    shell = subprocess.Popen(
        ["bash", "-euc", "\n".join(script)],
        cwd=project,
        env={**os.environ, **engine.env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_status("http://127.0.0.1:8001/ready", timeout=90, process=shell)
        code, _, body = http_get("http://127.0.0.1:8000/api/items/")
        assert code == 200, body
        assert json.loads(body) == {"items": []}
    finally:
        engine.run("stop", "--time", "20", "try-it", check=False, timeout=60)
        try:
            shell.wait(timeout=30)
        except subprocess.TimeoutExpired:
            shell.kill()
        engine.run("rm", "--force", "try-it", check=False)
        env_file.write_text(original)
        log.seek(0)
        print(log.read()[-3000:])
        log.close()


def assert_healthy(engine, name: str) -> None:
    """The image's own HEALTHCHECK passes against the running server."""
    if engine.name == "podman":
        # Runs the check once, now, inside the container (no timer or systemd needed).
        result = engine.run("healthcheck", "run", name, check=False, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    deadline = time.monotonic() + 60  # docker runs the first check after one interval
    status = None
    while time.monotonic() < deadline:
        state = json.loads(engine.run("inspect", name).stdout)[0]["State"]
        status = (state.get("Health") or {}).get("Status")
        if status == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"container never became healthy (last status {status})")


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


@pytest.fixture(scope="module")
def registry(engine, tmp_path_factory):
    """A real image registry on loopback: Debian's `docker-registry` (the distribution registry),
    since no registry image can be pulled here. Plain HTTP, so the engine is told it is insecure
    (docker treats 127.0.0.0/8 as insecure already)."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        pytest.skip("no registry binary: apt-get install docker-registry")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=root / "data", port=port))
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_status(f"http://127.0.0.1:{port}/v2/", timeout=30, process=process)
        conf = root / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "127.0.0.1:{port}"\ninsecure = true\n')
        yield f"127.0.0.1:{port}", {"CONTAINERS_REGISTRIES_CONF": str(conf)}
    finally:
        process.terminate()
        process.wait(timeout=20)


def registry_digest(registry: str, repository: str, reference: str) -> str | None:
    """The digest the registry serves for a tag (or digest), from its own answer."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={
            "Accept": ", ".join(
                (
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.oci.image.index.v1+json",
                )
            )
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError:
        return None


def test_push_records_the_registry_digest_and_manifests_pin_it(engine, image, registry):
    built, tag, project = image
    address, registry_env = registry
    remote = f"{address}/hurricane-service"
    engine.run("tag", built, f"{remote}:{tag}")
    env = {**os.environ, **engine.env, **registry_env}

    def make(*args):
        return subprocess.run(
            ["make", "--no-print-directory", *args, f"IMAGE={remote}", f"TAG={tag}"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    try:
        pushed = make("push", f"CONTAINER_ENGINE={' '.join(engine.prefix)}")
        assert pushed.returncode == 0, pushed.stdout[-3000:] + pushed.stderr[-3000:]
        digest = registry_digest(address, "hurricane-service", tag)
        assert digest and digest.startswith("sha256:")
        record = (Path(project) / ".image-digests").read_text().splitlines()
        assert record[-1] == f"{remote}:{tag} {digest}"
        # The registry serves the image by that digest: what the pods will pull.
        assert registry_digest(address, "hurricane-service", digest) == digest
        if shutil.which("kubectl") is None:
            pytest.skip("kubectl is not installed: the digest was checked, not the manifests")
        shown = make("manifests", "OVERLAY=prod")
        assert shown.returncode == 0, shown.stderr
        images = {
            container["image"]
            for doc in yaml.safe_load_all(shown.stdout)
            if doc and doc["kind"] in {"Deployment", "Job"}
            for container in doc["spec"]["template"]["spec"]["containers"]
        }
        assert images == {f"{remote}@{digest}"}
    finally:
        engine.run("rmi", "--force", f"{remote}:{tag}", check=False)
