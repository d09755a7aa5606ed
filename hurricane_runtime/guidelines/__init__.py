"""Guidelines you can enforce: checks with stable ids, and the audit that runs them.

- ``registry``: the table (id, one-line title, hint, link to the docs section, function).
- ``settings_checks``: Django system checks on the settings (deployment only, tag
  ``hurricane``), helped by ``introspection``.
- ``manifests`` + ``pod_rules``: Kubernetes manifests against the runtime's options.
- ``dockerfile``: the image's Dockerfile.
- ``audit`` runs them all, ``report`` renders text, JSON or SARIF; the command is
  ``manage.py hurricane_audit``. Every id is explained in docs/audit.md.
"""

from .registry import GUIDELINES, TAG, Finding, Guideline, guideline, register_system_checks


def load_all() -> None:
    """Import every module that adds rows, so the table is complete."""
    from . import dockerfile, pod_rules, settings_checks  # noqa: F401


__all__ = ["GUIDELINES", "TAG", "Finding", "Guideline", "guideline", "load_all"]
__all__ += ["register_system_checks"]
