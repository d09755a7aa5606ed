"""The options of ``consume``: its own rows plus the common ones, parsed as strictly as serve's."""

from types import SimpleNamespace

import pytest

from hurricane_runtime.config import (
    COMMON_OPTIONS,
    CONSUME_OPTIONS,
    ConfigError,
    ConsumeConfig,
    hide_password,
)

URL = "amqp://guest:guest@127.0.0.1:5672/"


def load(flags=None, settings=None, env=None):
    return ConsumeConfig.load(
        {"queue": "orders", "amqp_url": URL, **(flags or {})}, settings, env or {}
    )


def test_defaults_fit_a_kubernetes_consumer():
    config = load()
    assert (config.queue_type, config.delivery_limit, config.concurrency) == ("quorum", 20, 10)
    assert config.ack_policy == "reject_on_error"
    assert config.dead_letter_exchange is None  # derived: orders.dlx -> orders.dlq
    assert config.probe_port == ConsumeConfig.DEFAULT_PROBE_PORT
    assert (config.readiness_probe, config.metrics_path) == ("/ready", "/metrics")


def test_common_options_are_shared_not_copied():
    shared = [option for option in COMMON_OPTIONS if option.name != "shutdown_delay"]
    assert all(option in CONSUME_OPTIONS for option in shared)
    assert load().shutdown_delay == 0  # no Service routes to a consumer: cancel at once
    names = [option.name for option in CONSUME_OPTIONS]
    assert len(names) == len(set(names))
    assert "port" not in names and "workers" not in names  # serve's own rows


def test_broker_url_from_flag_setting_hurricane_env_then_amqp_url():
    env = {"AMQP_URL": "amqp://from-env/"}
    flags = {"queue": "orders"}
    assert ConsumeConfig.load(flags, None, env).amqp_url == "amqp://from-env/"
    env["HURRICANE_AMQP_URL"] = "amqps://hurricane-env/"
    assert ConsumeConfig.load(flags, None, env).amqp_url == "amqps://hurricane-env/"
    settings = SimpleNamespace(HURRICANE_AMQP_URL="amqp://setting/")
    assert ConsumeConfig.load(flags, settings, env).amqp_url == "amqp://setting/"
    unset = ConsumeConfig.load(flags, None, {})  # loadable (a manifest audit has no Secret)
    assert unset.amqp_url is None
    with pytest.raises(ConfigError, match="no broker URL"):
        unset.require_broker_url()


@pytest.mark.parametrize(
    "url",
    ["http://host/", "amqp://", "amqp://host:port/", "amqp://host:70000/", "amqp://h/a/b"],
)
def test_malformed_broker_urls_are_refused(url):
    with pytest.raises(ConfigError, match="option 'amqp_url'"):
        load({"amqp_url": url})


def test_passwords_never_reach_errors_or_the_summary():
    with pytest.raises(ConfigError) as raised:
        load({"amqp_url": "http://user:s3cret@host/"})
    assert "s3cret" not in str(raised.value) and "user:***@host" in str(raised.value)
    config = load({"amqp_url": "amqps://user:s3cret@broker:5671/prod"})
    assert config.amqp_url == "amqps://user:s3cret@broker:5671/prod"  # the client needs it
    assert config.summary()["amqp_url"] == "amqps://user:***@broker:5671/prod"
    assert hide_password("amqp://host/") == "amqp://host/"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"queue": ""}, "option 'queue' is required"),
        ({"queue": "q" * 251}, "too long"),
        ({"routing_key": ["a.b"]}, "needs 'exchange'"),
        ({"concurrency": "0"}, "option 'concurrency'"),
        ({"queue_type": "stream"}, "one of quorum, classic"),
        ({"ack_policy": "manual"}, "option 'ack_policy'"),
        ({"verify_interval": "0"}, "option 'verify_interval'"),
        ({"loop_timeout": "0.5"}, "option 'loop_timeout'"),
    ],
)
def test_bad_values_name_the_option(flags, message):
    with pytest.raises(ConfigError, match=message):
        load(flags)


def test_routing_keys_repeat_and_come_shell_split_from_the_environment():
    config = load({"exchange": "events", "routing_key": ["order.*", "invoice.paid"]})
    assert config.routing_key == ("order.*", "invoice.paid")
    env = {"HURRICANE_EXCHANGE": "events", "HURRICANE_ROUTING_KEY": "'order.*' invoice.paid"}
    assert load(env=env).routing_key == ("order.*", "invoice.paid")


def test_the_manifest_audit_reads_a_consumer_deployment_like_the_command(tmp_path):
    from hurricane_runtime.guidelines.manifests import load_documents, pod_contexts

    manifest = tmp_path / "consumer.yaml"
    manifest.write_text(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-consumer}
spec:
  template:
    spec:
      containers:
        - name: consumer
          image: example/app
          command: [python, manage.py, consume, orders.handlers.handle]
          args: [--queue, orders, --concurrency, "4"]
          env:
            - {name: HURRICANE_DRAIN_TIMEOUT, value: "30"}
            - name: AMQP_URL
              valueFrom: {secretKeyRef: {name: app, key: amqp-url}}
"""
    )
    (context,) = list(pod_contexts(load_documents(manifest), settings=None))
    assert context.workload == "consume" and context.config_error is None
    config = context.config
    assert (config.queue, config.concurrency, config.drain_timeout) == ("orders", 4, 30.0)
    assert config.probe_port == 8001 and config.amqp_url is None  # the URL is in a Secret
