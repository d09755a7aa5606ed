"""Every option of every command in one table per command, and the objects that carry them.

Options all workloads share (the probe port, start-up, shutdown, checks, observability) are
rows of ``COMMON_OPTIONS``, defined once; each command adds its own rows (``SERVE_OPTIONS``)
and a ``Config`` subclass that names its table.

An option can come from four places. The first one that has a value wins:

1. the command line flag (``--probe-port 9001``),
2. the Django setting ``HURRICANE_PROBE_PORT``,
3. the environment variable ``HURRICANE_PROBE_PORT``,
4. the default in ``OPTIONS`` below.

Settings may hold native values (``HURRICANE_WORKERS = 4``) or strings; the command line and
the environment always give strings. Parsing is strict on purpose: in a container a typo in an
environment variable must stop the pod with a message naming the option, not silently turn
``"flase"`` into ``True`` or ``"80OO"`` into the default port.
"""

import argparse
import dataclasses
import importlib.util
import ipaddress
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .webhooks import decode_secret

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})

KIB = 1024
MIB = 1024 * KIB
_SIZE_SUFFIXES = {"k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB}
_SIZE_SUFFIXES |= {"g": 1024 * MIB, "gb": 1024 * MIB, "gib": 1024 * MIB}


class ConfigError(ValueError):
    """A value that cannot be used; the message names the option, its source and what fits."""


@dataclass(frozen=True)
class Option:
    """One row of the table: where an option comes from and what values it accepts."""

    name: str
    # "str" | "int" | "float" | "bool" | "size" | "path" | "list" | "choice" | "url" | "amqp_url"
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    repeatable: bool = False  # the flag may be given several times (``--command``)
    optional: bool = False  # ``None`` is a valid value (meaning "derive it" or "not set")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def setting(self) -> str:
        """Name of the Django setting and of the environment variable."""
        return "HURRICANE_" + self.name.upper()

    def describe(self) -> str:
        """What this option accepts, for error messages."""
        if self.kind == "bool":
            return "one of true/false, 1/0, yes/no, on/off"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float", "size"):
            what = {"int": "an integer", "float": "a number", "size": "a size in bytes"}[self.kind]
            if self.kind == "size":
                what += " (suffixes K, M, G allowed)"
            if self.minimum is not None and self.maximum is not None:
                return f"{what} from {self.minimum:g} to {self.maximum:g}"
            if self.minimum is not None:
                return f"{what} of at least {self.minimum:g}"
            return what
        if self.kind == "path":
            return "a URL path starting with '/'"
        if self.kind == "url":
            return "an http:// or https:// URL"
        if self.kind == "amqp_url":
            return "an amqp:// or amqps:// URL such as amqp://user:password@host:5672/vhost"
        if self.kind == "list":
            return "a list (a Python list in settings, shell-quoted words elsewhere)"
        return "a string"


# Options every workload has (probe port, start-up, shutdown, health checks, observability):
# defined once, so `serve`, `consume` and the Celery probes read them the same way.
COMMON_OPTIONS: tuple[Option, ...] = (
    # Where to listen.
    Option("bind", "str", "0.0.0.0", "Address the app and probe ports listen on."),
    Option(
        "probe_port",
        "int",
        None,
        "Port of the probes and metrics.",
        minimum=1,
        maximum=65535,
        optional=True,
    ),
    Option("no_probe", "bool", False, "Do not open the probe port at all."),
    Option("startup_probe", "path", "/startup", "Path of the startup probe."),
    Option("readiness_probe", "path", "/ready", "Path of the readiness probe."),
    Option("liveness_probe", "path", "/alive", "Path of the liveness probe."),
    # Start-up.
    Option(
        "command",
        "list",
        (),
        "Management command to run before serving (repeatable, run in order), "
        "e.g. --command 'migrate --noinput'.",
        repeatable=True,
    ),
    Option("check_migrations", "bool", False, "Wait until the database is fully migrated."),
    Option(
        "check_migrations_timeout",
        "float",
        300.0,
        "Seconds to wait for migrations before start-up fails.",
        minimum=0,
    ),
    # Development.
    Option("debug", "bool", False, "Debug mode: asyncio debug checks and DEBUG logging."),
    # Shutdown.
    Option(
        "shutdown_delay",
        "float",
        5.0,
        "Seconds to keep serving after SIGTERM while readiness reports 503.",
        minimum=0,
    ),
    Option(
        "drain_timeout",
        "float",
        20.0,
        "Seconds in-flight requests get to finish once the listener is closed.",
        minimum=0,
    ),
    # Health checks.
    Option(
        "check_timeout",
        "float",
        2.0,
        "Seconds a readiness or liveness check run (and the database query) may take.",
        minimum=0.1,
    ),
    Option(
        "check_interval",
        "float",
        1.0,
        "Seconds between two runs of the readiness and liveness checks.",
        minimum=0.05,
    ),
    Option("access_log_probes", "bool", False, "Also write access log lines for probe requests."),
    # Observability (read by metrics.py, webhooks.py, logs.py).
    Option("metrics_path", "path", "/metrics", "Path of the Prometheus metrics on the probe port."),
    Option("no_metrics", "bool", False, "Do not expose metrics."),
    Option(
        "webhook_url",
        "url",
        None,
        "URL that receives a POST for every probe state change.",
        optional=True,
    ),
    Option(
        "webhook_secret",
        "list",
        (),
        "Standard Webhooks signing secrets (whsec_<base64>); two, space-separated, to rotate.",
    ),
    Option(
        "log_format",
        "choice",
        "text",
        "Format of log lines.",
        choices=("text", "json"),
    ),
    Option(
        "project_version",
        "str",
        "",
        "Version of the project, shown in build info metrics and webhook events.",
    ),
)

# Options of the app server only.
SERVE_OPTIONS: tuple[Option, ...] = (
    Option("port", "int", 8000, "Port of the Django app.", minimum=1, maximum=65535),
    # Capacity. Four threads: Django views spend most of their time waiting on the database or
    # other services, so a few threads overlap that waiting, while more threads than that only
    # fight over the GIL on a small (1 CPU) container. Scale with pods, not threads.
    Option(
        "workers",
        "int",
        4,
        "Worker threads running Django views.",
        minimum=1,
        maximum=1024,
    ),
    # 32 waiting requests is several hundred milliseconds of queue for typical views: past
    # that the pod is better taken out of the load balancer until it catches up.
    Option(
        "backlog",
        "int",
        32,
        "Requests waiting for a worker at which readiness reports 503.",
        minimum=1,
        maximum=1_000_000,
    ),
    Option(
        "loop",
        "choice",
        "auto",
        "Event loop: auto (uvloop when installed), asyncio, or uvloop.",
        choices=("auto", "asyncio", "uvloop"),
    ),
    # What else to serve.
    Option("static", "bool", False, "Serve STATIC_URL from STATIC_ROOT."),
    Option("media", "bool", False, "Serve MEDIA_URL from MEDIA_ROOT."),
    # Development.
    Option("autoreload", "bool", False, "Restart when Python files change (development)."),
    # Limits against hostile or broken clients.
    Option(
        "max_body_size",
        "size",
        10 * MIB,
        "Largest request body; bigger ones get 413.",
        minimum=0,
    ),
    Option(
        "max_header_size",
        "size",
        64 * KIB,
        "Largest request line plus headers; bigger ones close the connection.",
        minimum=1 * KIB,
    ),
    # Longer than the 60 s idle timeout of common load balancers, so that the balancer, not
    # the server, closes idle keep-alive connections (else it may reuse a closing socket).
    Option(
        "idle_timeout",
        "float",
        75.0,
        "Seconds a keep-alive connection may wait for its next request headers.",
        minimum=0.1,
    ),
    Option(
        "body_timeout",
        "float",
        60.0,
        "Seconds a client has to send a whole request body.",
        minimum=0.1,
    ),
    # Async views and websockets run on the event loop through the project's ASGI application.
    Option(
        "async_views",
        "bool",
        True,
        "Run async def views on the event loop (through ASGI) instead of a worker thread.",
    ),
    Option(
        "websockets",
        "bool",
        False,
        "Hand websocket upgrades to the ASGI application (ASGI_APPLICATION, e.g. Channels).",
    ),
    # Below the 60 s idle timeout of common load balancers and ingresses, so an idle socket
    # always carries a frame before the proxy in front gives up on it.
    Option(
        "websocket_ping_interval",
        "float",
        20.0,
        "Seconds between pings on an open websocket; no pong in that time closes it (0: off).",
        minimum=0,
    ),
    Option(
        "websocket_max_message_size",
        "size",
        1 * MIB,
        "Largest websocket message; bigger ones close the socket with 1009.",
        minimum=125,
    ),
) + COMMON_OPTIONS


def _error(option: Option, source: str, value: Any, why: str = "") -> ConfigError:
    where = {
        "flag": f"flag {option.flag}",
        "setting": f"setting {option.setting}",
        "env": f"environment variable {option.setting}",
        "default": "default",
    }[source]
    extra = f" ({why})" if why else ""
    return ConfigError(
        f"invalid value {value!r} for option {option.name!r} from {where}{extra}: "
        f"expected {option.describe()}"
    )


def _parse_number(option: Option, source: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise _error(option, source, value)
    if option.kind == "int":
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                raise _error(option, source, value) from None
    elif option.kind == "float":
        try:
            number = float(str(value).strip()) if not isinstance(value, int | float) else value
        except ValueError:
            raise _error(option, source, value) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise _error(option, source, value)
    else:  # size
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip().lower()
            digits = text.rstrip("kmgib")
            suffix = text[len(digits) :]
            if suffix and suffix not in _SIZE_SUFFIXES:
                raise _error(option, source, value)
            try:
                number = int(digits.strip()) * _SIZE_SUFFIXES.get(suffix, 1)
            except ValueError:
                raise _error(option, source, value) from None
    if option.minimum is not None and number < option.minimum:
        raise _error(option, source, value, "too small")
    if option.maximum is not None and number > option.maximum:
        raise _error(option, source, value, "too large")
    return number


def parse_value(option: Option, source: str, value: Any) -> Any:
    """Turn one raw value into the option's type, or raise ``ConfigError``."""
    if value is None:
        if option.optional:
            return None
        raise _error(option, source, value)
    kind = option.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise _error(option, source, value)
    if kind in ("int", "float", "size"):
        return _parse_number(option, source, value)
    if kind == "list":
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as error:
                raise _error(option, source, value, str(error)) from None
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise _error(option, source, value)
    if not isinstance(value, str):
        raise _error(option, source, value)
    if option.optional and value.strip() == "" and source != "flag":
        return None  # an empty environment variable means "not set"
    if kind == "path":
        if not value.startswith("/") or any(c in value for c in " ?#\r\n\t"):
            raise _error(option, source, value)
        return value
    if kind == "choice":
        if value.strip().lower() not in option.choices:
            raise _error(option, source, value)
        return value.strip().lower()
    if kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _error(option, source, value)
        return value
    if kind == "amqp_url":
        return _parse_amqp_url(option, source, value)
    if option.name == "bind":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not value or any(c.isspace() for c in value):
                raise _error(option, source, value, "not an address or host name") from None
    return value


def hide_password(url: str) -> str:
    """``amqp://user:secret@host/`` -> ``amqp://user:***@host/``, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _parse_amqp_url(option: Option, source: str, value: str) -> str:
    """A broker URL the client can use; errors never show its password."""
    shown = hide_password(value) if "@" in value else value
    parts = urlsplit(value.strip())
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise _error(option, source, shown)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise _error(option, source, shown, "bad port") from None
    if parts.path.count("/") > 1:
        raise _error(option, source, shown, "a vhost with '/' must be written %2F")
    return value.strip()


class Config:
    """The values of one command's options, validated; its workload reads only this.

    A subclass names its table in ``OPTIONS`` (its own rows plus ``COMMON_OPTIONS``).
    Attribute names are the option names (``config.probe_port``, ``config.webhook_url``, ...).
    ``sources`` says where each value came from ("flag", "setting", "env" or "default"),
    for the start-up summary and for error messages.
    """

    OPTIONS: tuple[Option, ...] = COMMON_OPTIONS
    # Where the probes listen unless ``probe_port`` is given (serve derives it from its port).
    DEFAULT_PROBE_PORT = 8001
    # Options whose values never appear in logs.
    SECRET_OPTIONS = frozenset({"webhook_secret"})

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]):
        self.sources = dict(sources)
        for name, value in values.items():
            setattr(self, name, value)
        if self.probe_port is None:
            self.probe_port = self._derive_probe_port()
        self._validate_together()

    # Declared for readers and type checkers; filled from OPTIONS by __init__.
    bind: str
    probe_port: int
    no_probe: bool
    startup_probe: str
    readiness_probe: str
    liveness_probe: str
    command: tuple[str, ...]
    check_migrations: bool
    check_migrations_timeout: float
    debug: bool
    shutdown_delay: float
    drain_timeout: float
    check_timeout: float
    check_interval: float
    access_log_probes: bool
    metrics_path: str
    no_metrics: bool
    webhook_url: str | None
    webhook_secret: tuple[str, ...]
    log_format: str
    project_version: str

    def _derive_probe_port(self) -> int:
        return self.DEFAULT_PROBE_PORT

    def _validate_together(self) -> None:
        """Rules between options; subclasses extend it."""
        paths = [self.startup_probe, self.readiness_probe, self.liveness_probe]
        if not self.no_metrics:
            paths.append(self.metrics_path)
        if len(set(paths)) != len(paths):
            raise ConfigError(
                "options 'startup_probe', 'readiness_probe', 'liveness_probe' and "
                f"'metrics_path' must be different paths, got {paths}"
            )
        for secret in self.webhook_secret:
            try:
                decode_secret(secret)
            except ValueError as error:  # the message never repeats the secret
                source = self.sources.get("webhook_secret", "default")
                raise ConfigError(
                    f"invalid secret in option 'webhook_secret' from {source}: {error}; "
                    "expected whsec_ and the base64 of 24 to 64 random bytes"
                ) from None

    @property
    def commands(self) -> list[list[str]]:
        """Start-up commands as argument lists, ready for ``call_command(*argv)``."""
        result = []
        for text in self.command:
            try:
                argv = shlex.split(text)
            except ValueError as error:
                raise ConfigError(f"option 'command': cannot split {text!r}: {error}") from None
            if argv:
                result.append(argv)
        return result

    @classmethod
    def load(
        cls,
        flags: Mapping[str, Any] | None = None,
        settings: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> "Config":
        """Resolve every option: flag > Django setting > environment variable > default.

        ``flags`` maps option names to raw flag values (``None`` or missing: not given);
        ``settings`` is an object with attributes (``django.conf.settings``) or None;
        ``environ`` defaults to ``os.environ``.
        """
        flags = flags or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for option in cls.OPTIONS:
            raw = flags.get(option.name)
            if raw is not None and not (option.repeatable and not raw):
                source = "flag"
                if option.repeatable:
                    raw = tuple(raw)
            elif settings is not None and hasattr(settings, option.setting):
                source, raw = "setting", getattr(settings, option.setting)
            elif option.setting in environ:
                source, raw = "env", environ[option.setting]
            else:
                source, raw = "default", option.default
            if source == "default":
                values[option.name] = raw
            elif option.repeatable and source == "flag":
                values[option.name] = raw  # each flag value is one command
            else:
                values[option.name] = parse_value(option, source, raw)
            sources[option.name] = source
        return cls(values, sources)

    def summary(self) -> dict[str, Any]:
        """Every option and its value, secrets hidden, for the start-up log line."""
        shown = {}
        for option in self.OPTIONS:
            value = getattr(self, option.name)
            if option.name in self.SECRET_OPTIONS and value:
                value = "***"
            shown[option.name] = value
        return shown

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one flag per option to a management command's parser.

        Every flag defaults to ``None`` so that ``load`` can tell "not given" from "given".
        Boolean flags work bare (``--static``) or with a value (``--static false``).
        """
        for option in cls.OPTIONS:
            help_text = f"{option.help} [{option.setting}; default: {cls._show_default(option)}]"
            if option.repeatable:
                parser.add_argument(
                    option.flag, dest=option.name, action="append", default=None, help=help_text
                )
            elif option.kind == "bool":
                parser.add_argument(
                    option.flag,
                    dest=option.name,
                    nargs="?",
                    const="true",
                    default=None,
                    metavar="BOOL",
                    help=help_text,
                )
            else:
                parser.add_argument(option.flag, dest=option.name, default=None, help=help_text)

    @classmethod
    def _show_default(cls, option: Option) -> str:
        if option.name == "probe_port":
            return str(cls.DEFAULT_PROBE_PORT)
        if option.default in (None, ()):
            return "unset"
        return str(option.default)

    @classmethod
    def flags_from_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Pick this command's options out of a management command's parsed ``options``."""
        return {option.name: options.get(option.name) for option in cls.OPTIONS}


class ServeConfig(Config):
    """The options of ``manage.py serve``."""

    OPTIONS = SERVE_OPTIONS

    port: int
    workers: int
    backlog: int
    loop: str
    static: bool
    media: bool
    autoreload: bool
    max_body_size: int
    max_header_size: int
    idle_timeout: float
    body_timeout: float
    async_views: bool
    websockets: bool
    websocket_ping_interval: float
    websocket_max_message_size: int

    def _derive_probe_port(self) -> int:
        if self.port == 65535:
            raise ConfigError("option 'probe_port' must be set when port is 65535")
        return self.port + 1

    def _validate_together(self) -> None:
        if not self.no_probe and self.probe_port == self.port:
            raise ConfigError(f"options 'port' and 'probe_port' must differ (both are {self.port})")
        if self.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ConfigError("option 'loop' is uvloop, but uvloop is not installed")
        super()._validate_together()

    @classmethod
    def _show_default(cls, option: Option) -> str:
        if option.name == "probe_port":
            return "port + 1"
        return super()._show_default(option)


# Options of ``manage.py consume`` only. The queue, broker and handler shape the topology;
# the timing rows decide how fast the probes learn about a lost consumer.
CONSUME_OPTIONS: tuple[Option, ...] = (
    Option(
        "amqp_url",
        "amqp_url",
        None,
        "Broker URL, amqp:// or amqps:// (default: the AMQP_URL environment variable).",
        optional=True,
    ),
    Option("queue", "str", None, "Queue to consume (declared durable).", optional=True),
    Option(
        "exchange",
        "str",
        "",
        "Exchange to bind the queue to (declared durable; default: none, the default "
        "exchange routes by queue name).",
    ),
    Option(
        "exchange_type",
        "choice",
        "direct",
        "Type of the exchange.",
        choices=("direct", "topic", "fanout", "headers"),
    ),
    Option(
        "routing_key",
        "list",
        (),
        "Routing key binding the queue to the exchange (repeatable; default: the queue name).",
        repeatable=True,
    ),
    # Ten messages in flight: enough to overlap handlers that wait on the database or on other
    # services, few enough that a crash redelivers little and other pods get their share.
    Option(
        "concurrency",
        "int",
        10,
        "Messages handled at once: the per-channel prefetch, and the threads of a sync handler.",
        minimum=1,
        maximum=1000,
    ),
    Option(
        "queue_type",
        "choice",
        "quorum",
        "Type of the queue; quorum queues bound redeliveries with the delivery limit.",
        choices=("quorum", "classic"),
    ),
    Option(
        "delivery_limit",
        "int",
        20,
        "Redeliveries after which the broker dead-letters a message (quorum queues).",
        minimum=1,
        maximum=1_000_000,
    ),
    Option(
        "dead_letter_exchange",
        "str",
        None,
        "Dead-letter exchange (default: QUEUE.dlx, with the queue QUEUE.dlq bound to it).",
        optional=True,
    ),
    Option(
        "ack_policy",
        "choice",
        "reject_on_error",
        "What happens to a message whose handler raised: reject_on_error (dead-letter it), "
        "nack_on_error (requeue it), ack (ack it anyway), ack_first (ack before handling).",
        choices=("reject_on_error", "nack_on_error", "ack", "ack_first"),
    ),
    Option(
        "verify_interval",
        "float",
        0.2,
        "Seconds between two checks that the broker still lists this consumer; readiness "
        "reports 503 after four missed checks.",
        minimum=0.05,
        maximum=60,
    ),
    Option(
        "disconnected_timeout",
        "float",
        300.0,
        "Seconds without a consumer after which liveness reports 503 (0: never).",
        minimum=0,
    ),
    Option(
        "loop_timeout",
        "float",
        30.0,
        "Seconds the consumer's event loop may go without running (an async handler that "
        "blocks it) before liveness reports 503.",
        minimum=1,
    ),
    Option(
        "reconnect_max_delay",
        "float",
        30.0,
        "Longest wait between two connection attempts (exponential backoff, full jitter).",
        minimum=0.1,
    ),
    Option(
        "connect_timeout",
        "float",
        10.0,
        "Seconds a connection attempt to the broker may take.",
        minimum=0.1,
    ),
) + tuple(
    # No Service routes traffic to a consumer, so nothing needs time to notice the SIGTERM:
    # the consumer is cancelled at once unless a delay is asked for.
    dataclasses.replace(option, default=0.0) if option.name == "shutdown_delay" else option
    for option in COMMON_OPTIONS
)


class ConsumeConfig(Config):
    """The options of ``manage.py consume``; the handler path comes as an argument."""

    OPTIONS = CONSUME_OPTIONS

    amqp_url: str | None
    queue: str
    exchange: str
    exchange_type: str
    routing_key: tuple[str, ...]
    concurrency: int
    queue_type: str
    delivery_limit: int
    dead_letter_exchange: str | None
    ack_policy: str
    verify_interval: float
    disconnected_timeout: float
    loop_timeout: float
    reconnect_max_delay: float
    connect_timeout: float

    @classmethod
    def load(cls, flags=None, settings=None, environ=None) -> "ConsumeConfig":
        environ = os.environ if environ is None else environ
        config = super().load(flags, settings, environ)
        if config.amqp_url is None and environ.get("AMQP_URL", "").strip():
            option = next(option for option in cls.OPTIONS if option.name == "amqp_url")
            config.amqp_url = _parse_amqp_url(option, "env", environ["AMQP_URL"])
            config.sources["amqp_url"] = "env"
        return config

    def require_broker_url(self) -> str:
        """The broker URL, or one clear error. Not checked by ``load``: an audit of manifests
        loads this config from a pod spec whose URL lives in a Secret it cannot read."""
        if self.amqp_url is None:
            raise ConfigError(
                "no broker URL: pass --amqp-url or set HURRICANE_AMQP_URL or AMQP_URL"
            )
        return self.amqp_url

    def _validate_together(self) -> None:
        if not self.queue or not self.queue.strip():
            raise ConfigError("option 'queue' is required: pass --queue or set HURRICANE_QUEUE")
        if len(self.queue.encode()) > 250:  # the broker's limit is 255 bytes, ".dlq" included
            raise ConfigError(f"option 'queue' is too long ({len(self.queue.encode())} bytes)")
        if self.routing_key and not self.exchange:
            raise ConfigError(
                "option 'routing_key' needs 'exchange': the default exchange routes by queue name"
            )
        super()._validate_together()

    def summary(self) -> dict[str, Any]:
        shown = super().summary()
        if shown.get("amqp_url"):
            shown["amqp_url"] = hide_password(shown["amqp_url"])
        return shown


# Options of the Celery probes (``hurricane_runtime.celery``), read in worker and beat processes
# from settings and the environment (Celery owns the command line). The probe port defaults to
# ``Config.DEFAULT_PROBE_PORT``.
CELERY_OPTIONS: tuple[Option, ...] = (
    # Kubernetes restarts a pod after failureThreshold x periodSeconds of failed liveness
    # probes (30 s by default): a loop that has not run for 30 s is stuck, not busy. Work in
    # the pool's child processes never blocks this loop.
    Option(
        "worker_loop_timeout",
        "float",
        30.0,
        "Seconds the worker's event loop may go without running before liveness reports 503.",
        minimum=1,
    ),
    Option(
        "beat_tick_timeout",
        "float",
        30.0,
        "Seconds beat may run past its maximum loop interval without a tick before liveness "
        "reports 503.",
        minimum=1,
    ),
    # A CPU-bound task in every child must not starve the parent: its loop acks, keeps the
    # broker heartbeats going and feeds the probes. Within the pod's cgroup this only orders
    # the worker's own processes; the children still get every cycle the parent leaves.
    Option(
        "pool_niceness",
        "int",
        10,
        "Niceness added to the worker's pool processes, so the parent gets the CPU first "
        "(0: leave them alone).",
        minimum=0,
        maximum=19,
    ),
    # Celery's own retry pause grows to 30 s, so a worker could stay unready for half a minute
    # after the broker is back; a short cap keeps readiness honest at the cost of a cheap
    # connection attempt every few seconds during an outage.
    Option(
        "reconnect_interval_max",
        "float",
        5.0,
        "Longest pause in seconds between two attempts to reconnect to the broker.",
        minimum=0.1,
        maximum=300,
    ),
) + COMMON_OPTIONS


class CeleryConfig(Config):
    """The options of the probes of a Celery worker or beat process."""

    OPTIONS = CELERY_OPTIONS

    worker_loop_timeout: float
    beat_tick_timeout: float
    pool_niceness: int
    reconnect_interval_max: float
