"""Refuse a broker URL whose scheme no kombu transport serves, before anything connects.

kombu reports it deep in the consumer's start-up as ``KeyError: 'No such transport: amqq'``
inside a traceback; a worker or beat of a project with probes stops at once with one line
naming the setting, the scheme and the schemes that work.
"""

from kombu.transport import TRANSPORT_ALIASES, resolve_transport

from .worker import fail

BROKER_SETTINGS = ("broker_url", "broker_read_url", "broker_write_url")


def broker_errors(app) -> list[str]:
    """What is wrong with the app's broker URLs (empty: every scheme has a transport)."""
    errors = []
    for setting in BROKER_SETTINGS:
        value = app.conf.get(setting)
        if not value:
            continue
        urls = value if isinstance(value, list | tuple) else str(value).split(";")
        for url in urls:
            scheme = str(url).partition("://")[0].strip()
            if not scheme:
                continue
            try:
                resolve_transport(scheme)
            except KeyError:
                known = ", ".join(sorted(TRANSPORT_ALIASES))
                errors.append(f"unknown broker URL scheme {scheme!r} in {setting} (known: {known})")
            except ImportError as error:
                errors.append(
                    f"broker URL scheme {scheme!r} in {setting} needs {error.name}: {error}"
                )
    return errors


def check_broker(sender=None, **kwargs):
    """``import_modules`` receiver (worker and beat start-up, ``sender`` is the app)."""
    app = sender
    if getattr(app, "conf", None) is None:
        return
    errors = broker_errors(app)
    if errors:
        raise fail("; ".join(errors))
