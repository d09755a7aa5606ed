"""Refuse answers that would render a broken service, before anything is written.

Every rule says what is wrong and what would be accepted. All problems are reported at once so
a person fixes their answers in one go. Cookiecutter removes the project folder it created when
this script exits non-zero, so a refused render leaves nothing behind.
"""

import ipaddress
import json
import keyword
import os
import re
import sys

# The answers as JSON: a user's text can never break out of this string (tojson escapes quotes).
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
# Django line -> the oldest Python it supports.
DJANGO_LINES = {"5.2": "3.11", "6.1": "3.12"}
DATABASES = ("postgresql", "sqlite")
YES_NO = ("no", "yes")
CELERY_BROKERS = ("no", "rabbitmq", "redis")

# Top-level modules a project imports or ships next to its package: a slug with one of these
# names would shadow it. Dependencies first, then the names of folders and files we render.
TAKEN_MODULE_NAMES = {
    "django",
    "tornado",
    "prometheus_client",
    "hurricane_runtime",
    "psycopg",
    "psycopg_binary",
    "dj_database_url",
    "aio_pika",
    "aiormq",
    "pamqp",
    "yarl",
    "multidict",
    "propcache",
    "idna",
    "asgiref",
    # websockets=yes: Channels, its Redis layer and what they bring.
    "channels",
    "channels_redis",
    "redis",
    "msgpack",
    "daphne",
    # celery: Celery and its messaging stack.
    "celery",
    "kombu",
    "billiard",
    "vine",
    "amqp",
    "click",
    "click_didyoumean",
    "click_repl",
    "click_plugins",
    "dateutil",
    "prompt_toolkit",
    "wcwidth",
    "six",
    "twisted",
    "autobahn",
    "sqlparse",
    "tzdata",
    "typing_extensions",
    "pytest",
    "pytest_django",
    "_pytest",
    "ruff",
    "pip",
    "setuptools",
    "pkg_resources",
    "conftest",
    "manage",
    "tests",
    "docs",
    "k8s",
    "staticfiles",
}

# Ports something else already uses where the project runs, per answer: app and probe port must
# stay clear of them. Extend this table when an option brings a new service (Redis 6379 for
# Celery, AMQP 5672 for a consumer).
PORTS_IN_USE = {
    ("database", "postgresql"): {5432: "PostgreSQL"},
    ("amqp_consumer", "yes"): {5672: "RabbitMQ", 5671: "RabbitMQ over TLS"},
    ("websockets", "yes"): {6379: "Redis"},
    ("celery", "rabbitmq"): {5672: "RabbitMQ", 5671: "RabbitMQ over TLS"},
    ("celery", "redis"): {6379: "Redis"},
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# Docker distribution reference grammar, without tag and digest.
_HOST_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
# A registry host has a dot or a port (or is localhost); else the part is a path component.
_REGISTRY = (
    rf"(?:localhost(?::[0-9]+)?|{_HOST_LABEL}(?:\.{_HOST_LABEL})+(?::[0-9]+)?|{_HOST_LABEL}:[0-9]+)"
)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(rf"^(?:{_REGISTRY}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")


def check_text(answers):
    for name in ("project_name", "description", "author_name"):
        value = answers[name]
        if not value.strip():
            yield f"{name} is empty: give a short text."
        elif "\n" in value or "\r" in value:
            yield f"{name} spans several lines: give a single line."


def slug_problem(slug: str) -> str | None:
    """What exactly is wrong with a slug that is not a lowercase identifier, or None."""
    if not slug:
        return "is empty"
    if not slug[0].isalpha() or not slug[0].isascii():
        return f"must start with a letter, not {slug[0]!r}"
    if "-" in slug:
        return "contains '-': Python package names cannot; use '_' to join words"
    if slug != slug.lower():
        return "contains uppercase letters: use lowercase only"
    if "__" in slug:
        return "contains '__': join words with single underscores"
    if slug.endswith("_"):
        return "ends with '_': join words with single underscores, nothing at the end"
    others = sorted({c for c in slug if not (c.isascii() and (c.isalnum() or c == "_"))})
    if others:
        return f"contains {', '.join(repr(c) for c in others)}: only a-z, 0-9 and '_' are allowed"
    return None


def check_slug(answers):
    slug = answers["project_slug"]
    hint = (
        "Accepted: lowercase letters and digits, words joined by single underscores, "
        "e.g. 'orders_api'."
    )
    if not SLUG.match(slug):
        problem = slug_problem(slug) or "is not a lowercase Python identifier"
        yield (
            f"project_slug {slug!r} {problem}. It is the Python package and, with '-' for "
            f"'_', the Kubernetes name. {hint}"
        )
        return
    if len(slug) > 40:
        yield (
            f"project_slug {slug!r} is {len(slug)} characters long; at most 40 leave room for the "
            "Kubernetes resource name suffixes (63 characters in total)."
        )
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        yield f"project_slug {slug!r} is a Python keyword. {hint}"
    elif slug in sys.stdlib_module_names:
        yield (
            f"project_slug {slug!r} shadows the standard-library module {slug!r}; "
            "pick a name that says what the service does, e.g. 'orders_api'."
        )
    elif slug in TAKEN_MODULE_NAMES:
        yield (
            f"project_slug {slug!r} shadows the module or folder {slug!r} the project needs; "
            "pick a name that says what the service does, e.g. 'orders_api'."
        )


def check_choices(answers):
    if answers["python_version"] not in PYTHON_VERSIONS:
        yield (
            f"python_version {answers['python_version']!r} is not supported. "
            f"Accepted: {', '.join(PYTHON_VERSIONS)}."
        )
    django, python = answers["django_version"], answers["python_version"]
    oldest = DJANGO_LINES.get(django)
    if oldest is None:
        yield f"django_version {django!r} is unknown. Accepted: {', '.join(DJANGO_LINES)}."
    elif python in PYTHON_VERSIONS and _version(python) < _version(oldest):
        yield (
            f"django_version {django} needs Python {oldest} or newer, and python_version is "
            f"{python}: choose python_version {oldest} or newer, or django_version 5.2."
        )
    if answers["database"] not in DATABASES:
        yield f"database {answers['database']!r} is unknown. Accepted: {', '.join(DATABASES)}."


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def check_websockets(answers):
    if answers["websockets"] not in YES_NO:
        yield f"websockets {answers['websockets']!r} is unknown. Accepted: {', '.join(YES_NO)}."


def check_celery(answers):
    celery = answers["celery"]
    if celery not in CELERY_BROKERS:
        yield f"celery {celery!r} is unknown. Accepted: {', '.join(CELERY_BROKERS)}."
    elif celery != "no" and answers["database"] == "sqlite":
        yield (
            f"celery {celery} with database sqlite: Celery runs its tasks in worker pods "
            "(several processes each) beside the web pod, and an SQLite file on one "
            "ReadWriteOnce volume accepts one writer on one node. Choose database postgresql "
            "for Celery, or celery no."
        )


def check_email(answers):
    if not EMAIL.match(answers["author_email"]):
        yield (
            f"author_email {answers['author_email']!r} is not an e-mail address like "
            "name@example.com."
        )


def _port(answers, name):
    value = answers[name]
    if not value.isdigit() or not 1024 <= int(value) <= 65535:
        return None
    return int(value)


def check_ports(answers):
    ports = {}
    for name in ("app_port", "probe_port"):
        port = _port(answers, name)
        if port is None:
            yield (
                f"{name} {answers[name]!r} is not a port from 1024 to 65535 (lower ports need "
                "root, and the container runs as a non-root user)."
            )
        else:
            ports[name] = port
    if len(ports) == 2 and ports["app_port"] == ports["probe_port"]:
        yield (
            f"app_port and probe_port are both {ports['app_port']}: the probes and metrics need "
            "a port of their own, e.g. 8000 and 8001."
        )
    for (option, choice), in_use in PORTS_IN_USE.items():
        if answers.get(option) != choice:
            continue
        for name, port in ports.items():
            if port in in_use:
                yield (
                    f"{name} {port} is the port of {in_use[port]}, which {option}={choice} "
                    "uses next to the service; pick another one, e.g. 8000 or 8001."
                )


def check_replicas(answers):
    replicas = answers["replicas"]
    if not replicas.isdigit() or not 1 <= int(replicas) <= 100:
        yield f"replicas {replicas!r} is not a whole number from 1 to 100."
    elif answers["database"] == "sqlite" and int(replicas) > 1:
        yield (
            f"replicas {replicas} with database sqlite: an SQLite file lives on one volume and "
            "accepts one writer, so only 1 replica works. Choose database postgresql for more."
        )


def check_namespace(answers):
    namespace = answers["k8s_namespace"]
    # The dev overlay adds "-dev", and a namespace is a DNS-1123 label of at most 63.
    if len(namespace) > 63 - len("-dev") or not DNS_LABEL.match(namespace):
        yield (
            f"k8s_namespace {namespace!r} is not a valid Kubernetes namespace (DNS-1123 label): "
            "lowercase letters, digits and '-', starting and ending with a letter or digit, at "
            "most 59 characters (the dev overlay adds '-dev'), e.g. 'orders-api'."
        )
    elif namespace.startswith("kube-") or namespace == "default":
        yield (
            f"k8s_namespace {namespace!r} is reserved for the cluster; give the service a "
            "namespace of its own, e.g. 'orders-api'."
        )


def check_host(answers):
    host = answers["public_host"]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        yield f"public_host {host!r} is an IP address; an Ingress host must be a DNS name."
        return
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(len(label) <= 63 and DNS_LABEL.match(label) for label in labels)
    ):
        yield (
            f"public_host {host!r} is not a fully qualified DNS name an Ingress accepts "
            "(DNS-1123 subdomain): lowercase labels of letters, digits and '-' joined by dots, "
            "e.g. 'orders.example.com'."
        )


def check_image(answers):
    image = answers["image_name"]
    last = image.rsplit("/", 1)[-1]
    if "@" in image or ":" in last:
        yield (
            f"image_name {image!r} contains a tag or digest; give the name only, e.g. "
            "'registry.example.com/orders-api' (the tag is chosen at build time)."
        )
    elif len(image) > 255 or not IMAGE.match(image):
        yield (
            f"image_name {image!r} is not an image reference a registry accepts: an optional "
            "registry host (with port), then lowercase path components of letters, digits, "
            "'.', '_' and '-', e.g. 'registry.example.com/team/orders-api'."
        )


CHECKS = (
    check_text,
    check_slug,
    check_choices,
    check_websockets,
    check_celery,
    check_email,
    check_ports,
    check_replicas,
    check_namespace,
    check_host,
    check_image,
)


def replay_hint(answers) -> str:
    """How to render again without typing every answer: cookiecutter saved them all (in its
    replay folder, named after the template folder) before it ran this hook."""
    template = answers.get("_template") or "TEMPLATE"
    name = os.path.basename(os.path.abspath(answers.get("_repo_dir") or template))
    saved = f"~/.cookiecutter_replay/{name}.json"
    return (
        "Nothing was written. Your answers were saved: to change only the refused ones, copy\n"
        f"  {saved}  (cookiecutter's default replay folder)\n"
        "to a file of your own, edit those answers (and the ones derived from them, such as\n"
        "k8s_namespace, public_host and image_name after project_slug), then run\n"
        f"  cookiecutter --replay-file my-answers.json {template}\n"
        f"or set them without prompts: cookiecutter --no-input {template} project_slug=orders_api"
    )


def main() -> int:
    problems = [problem for check in CHECKS for problem in check(ANSWERS)]
    if not problems:
        return 0
    print("hurricane-template: these answers cannot render a working service:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print(replay_hint(ANSWERS), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
