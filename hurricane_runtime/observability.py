"""Wire metrics, webhooks and logs to the server's observers."""

from .events import Observers
from .state import RuntimeState


def install(config, state: RuntimeState, observers: Observers) -> None:
    """Register every enabled observability listener; ``serve`` calls this once."""
