"""Fixtures shared by the observability tests."""

import logging
from types import SimpleNamespace

import pytest


def observability_config(**overrides) -> SimpleNamespace:
    """The options ``observability.install`` reads: metrics on, plain text, no webhooks."""
    options = {
        "log_format": "text",
        "access_log_probes": False,
        "no_metrics": False,
        "metrics_path": "/metrics",
        "webhook_url": "",
        "webhook_secret": (),
        "project_version": "",
    }
    return SimpleNamespace(**{**options, **overrides})


@pytest.fixture
def isolated_logging():
    """Undo what ``logs.configure`` does to the hurricane_runtime and root loggers."""
    loggers = [logging.getLogger("hurricane_runtime"), logging.getLogger()]
    saved = [(lg, list(lg.handlers), lg.propagate, lg.level) for lg in loggers]
    for lg in loggers[:1]:
        lg.handlers.clear()
    yield
    for lg, handlers, propagate, level in saved:
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.setLevel(level)
