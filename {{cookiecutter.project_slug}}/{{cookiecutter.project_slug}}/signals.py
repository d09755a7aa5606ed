"""Switch heavy signal receivers off in tests, one test at a time.

Decorate a receiver with ``@suspendable``; it then does nothing while its dotted name is listed
in ``settings.SUSPENDED_SIGNALS``. ``suspend_signals(receiver, ...)`` lists receivers for the
duration of a test (it is ``override_settings``: use it as a decorator or a context manager)::

    @suspend_signals(index_item)
    def test_create_is_fast(): ...

    with suspend_signals(index_item):
        Item.objects.create(name="quiet")
"""

import functools

from django.conf import settings
from django.test import override_settings


def receiver_name(receiver) -> str:
    """The name to list in SUSPENDED_SIGNALS: ``module.function``."""
    return getattr(receiver, "suspend_name", f"{receiver.__module__}.{receiver.__qualname__}")


def suspendable(receiver):
    """Make ``receiver`` skip its work while it is listed in ``settings.SUSPENDED_SIGNALS``."""
    name = receiver_name(receiver)

    @functools.wraps(receiver)
    def wrapper(*args, **kwargs):
        if name in settings.SUSPENDED_SIGNALS:
            return None
        return receiver(*args, **kwargs)

    wrapper.suspend_name = name
    return wrapper


def suspend_signals(*receivers) -> override_settings:
    """Suspend ``receivers`` (functions or dotted names) on top of those already suspended."""
    names = [r if isinstance(r, str) else receiver_name(r) for r in receivers]
    return override_settings(SUSPENDED_SIGNALS=[*settings.SUSPENDED_SIGNALS, *names])
