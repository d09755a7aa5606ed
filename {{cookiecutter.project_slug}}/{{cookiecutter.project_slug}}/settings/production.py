"""Settings for the container image and the Kubernetes manifests. They refuse to start without
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS{% if cookiecutter.websockets == "yes" %}, REDIS_URL{% endif %} and DATABASE_URL, and pass
`manage.py check --deploy --fail-level WARNING`. TLS ends at the ingress: see docs/settings.md."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import database_from_env, env_bool, env_int, env_list{% if cookiecutter.websockets == "yes" %}, env_str{% endif %}

for name, value in {
    "DJANGO_SECRET_KEY": SECRET_KEY,  # noqa: F405
    "DJANGO_ALLOWED_HOSTS": ALLOWED_HOSTS,  # noqa: F405
{%- if cookiecutter.websockets == "yes" %}
    # The channel layer's Redis (base.py): without it no pod hears another's group messages.
    "REDIS_URL": env_str("REDIS_URL"),
{%- endif %}
}.items():
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production (see docs/settings.md).")

DATABASES = {"default": database_from_env(None)}

# The ingress terminates TLS and sets X-Forwarded-Proto; only trust it because the NetworkPolicy
# lets nothing but the ingress controller reach the app port. The probes use the probe port,
# which the runtime serves outside Django, so the HTTPS redirect never touches them.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "https://{{ cookiecutter.public_host }}",
)
