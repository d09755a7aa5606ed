"""Wire metrics, webhooks and logs to the server's observers."""

from dataclasses import dataclass

from . import logs
from .events import Observers
from .metrics import Metrics
from .state import RuntimeState
from .webhooks import WebhookCollector, WebhookSender


@dataclass
class Installed:
    """What ``install`` set up, for the caller and for tests."""

    access_log: logs.AccessLog
    metrics: Metrics | None = None
    webhooks: WebhookSender | None = None


def install(config, state: RuntimeState, observers: Observers) -> Installed:
    """Register every enabled observability listener; ``serve`` calls this once."""
    logs.configure(config.log_format)
    access_log = logs.AccessLog(log_probes=config.access_log_probes)
    observers.request_finished.append(access_log.request_finished)
    observers.probe_finished.append(access_log.probe_finished)
    installed = Installed(access_log=access_log)
    version = config.project_version

    if not config.no_metrics:
        metrics = Metrics(state, project_version=version)
        observers.request_finished.append(metrics.observe_request)
        observers.server_started.append(metrics.start_loop_lag)
        observers.server_stopping.append(metrics.stop_loop_lag)
        observers.probe_routes[config.metrics_path] = metrics.render
        installed.metrics = metrics

    if config.webhook_url:
        sender = WebhookSender(config.webhook_url, config.webhook_secret, version=version)
        observers.state_changed.append(sender.on_state_event)
        observers.server_stopping.append(sender.flush)
        if installed.metrics is not None:
            installed.metrics.registry.register(WebhookCollector(sender))
        installed.webhooks = sender
    return installed
