"""Kubernetes manifests, read as the audit needs them: one ``PodContext`` per container.

Input is a folder of YAML files (read recursively) or one file, for instance the output of
``kubectl kustomize``; every file may hold several documents. Kustomization files are skipped:
audit the rendered output to see patches and generated ConfigMaps applied.

A container that runs the runtime (its command is ``manage.py serve`` or ``manage.py consume``,
``celery worker`` or ``celery beat`` of an app with ``hurricane_runtime.celery.install``, or it
has none and the image's CMD starts it) gets the options it would run with: the Django
settings of the audit, except that the container's own environment (``env`` values and
ConfigMaps of the same input given through ``envFrom``) and its ``serve`` flags win, because
settings commonly read the environment and flags always win. The pod rules compare the
manifests with those options.
"""

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import CeleryConfig, Config, ConfigError, ConsumeConfig, ServeConfig

# The workloads the runtime serves, by their management command; a new command adds a row.
# Celery owns its command line: its workloads are named by Celery's subcommand, and their
# options come from the settings and the environment only (docs/celery.md).
CELERY_WORKLOADS = {"worker": "celery worker", "beat": "celery beat"}
WORKLOAD_CONFIGS: dict[str, type[Config]] = {
    "serve": ServeConfig,
    "consume": ConsumeConfig,
    **{workload: CeleryConfig for workload in CELERY_WORKLOADS.values()},
}
DEFAULT_WORKLOAD = "serve"  # a container without a command runs the image's CMD

# Where each kind keeps its pod spec; long-running kinds get the probe and shutdown rules.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
LONG_RUNNING = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


class ManifestError(ValueError):
    """Manifests that cannot be read; the message names the file and the problem."""


@dataclass
class Document:
    data: dict
    path: Path
    node: Any  # the YAML node, for line numbers

    def line_of(self, *keys: str | int) -> int:
        """1-based line of the value at ``keys`` (or of its nearest parent that exists)."""
        import yaml

        node, line = self.node, self.node.start_mark.line
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                match = [value for name, value in node.value if name.value == key]
                if not match:
                    break
                node = match[0]
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                if key >= len(node.value):
                    break
                node = node.value[key]
            else:
                break
            line = node.start_mark.line
        return line + 1


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(path for path in source.rglob("*") if path.suffix in (".yaml", ".yml"))
    raise ManifestError(f"manifests: {source} is neither a file nor a folder")


def load_documents(source: Path) -> list[Document]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - the audit extra brings it
        raise ManifestError("--manifests needs PyYAML: pip install 'pyyaml>=6'") from None
    documents = []
    for path in _files(source):
        try:
            text = path.read_text(encoding="utf-8")
            loader = yaml.SafeLoader(text)
            try:
                while loader.check_node():
                    node = loader.get_node()
                    data = loader.construct_document(node)
                    if isinstance(data, dict) and data.get("kind") != "Kustomization":
                        documents.append(Document(data, path, node))
            finally:
                loader.dispose()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ManifestError(f"manifests: {path}{where}: invalid YAML: {problem}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ManifestError(f"manifests: cannot read {path}: {error}") from None
    return documents


def _get(data: Any, *keys) -> Any:
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


@dataclass
class PodContext:
    """One container of one workload, with what the pod rules need to judge it."""

    document: Document
    kind: str
    name: str
    pod_path: tuple
    container_path: tuple  # inside the document
    container: dict
    pod: dict
    workload: str | None  # "serve", "consume", "celery worker", "celery beat", or None
    config: Config | None = None
    config_error: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # container port names -> numbers
    # Seconds a Celery worker's soft shutdown gives running tasks after SIGTERM (the
    # container's CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT, else the setting); 0 for beat.
    celery_soft_shutdown: float = 0.0

    @property
    def celery(self) -> bool:
        return self.workload in CELERY_WORKLOADS.values()

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name} container {self.container.get('name', '?')}"

    @property
    def long_running(self) -> bool:
        return self.kind in LONG_RUNNING

    def line(self, *keys) -> int:
        return self.document.line_of(*self.container_path, *keys)

    def pod_line(self, *keys) -> int:
        return self.document.line_of(*self.pod_path, *keys)


def _workload_of(container: dict) -> tuple[str | None, list[str]]:
    """The runtime command the container runs, and the words after it."""
    words = [str(word) for word in (container.get("command") or []) + (container.get("args") or [])]
    if not words:
        return DEFAULT_WORKLOAD, []
    celery = _celery_workload(words)
    if celery is not None:
        return celery, []
    for index, word in enumerate(words):
        if word in WORKLOAD_CONFIGS and any(w.endswith("manage.py") for w in words[:index]):
            return word, words[index + 1 :]
    return None, []


def _celery_workload(words: list[str]) -> str | None:
    """ "celery worker" for `celery -A app worker ...` (or `python -m celery ...`), likewise
    beat; None for anything else (a shell, `celery inspect`, `worker -B`)."""
    starts = [
        index + 1
        for index, word in enumerate(words)
        if word.rsplit("/", 1)[-1] == "celery" and (index == 0 or words[index - 1] == "-m")
    ]
    if not starts:
        return None
    rest = words[starts[0] :]
    subcommand = next((word for word in rest if word in CELERY_WORKLOADS), None)
    if subcommand is None or "-B" in rest or "--beat" in rest:
        return None
    return CELERY_WORKLOADS[subcommand]


def _soft_shutdown(settings, environ: dict[str, str]) -> float:
    value = environ.get("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT")
    if value is None:
        value = getattr(settings, "CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", 0) or 0
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        raise ConfigError(
            f"CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT={value!r} is not a number of seconds"
        ) from None


def _environment(container: dict, config_maps: dict[str, dict]) -> dict[str, str]:
    environ: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        name = _get(source, "configMapRef", "name")
        if name in config_maps:
            prefix = source.get("prefix", "")
            environ.update({prefix + k: str(v) for k, v in config_maps[name].items()})
    for variable in container.get("env") or []:
        if isinstance(variable, dict) and "value" in variable:
            environ[str(variable.get("name"))] = str(variable["value"])
    return environ


class _SettingsUnder:
    """Django settings, minus the HURRICANE_ names the container's environment sets."""

    def __init__(self, settings, environ):
        self._settings, self._environ = settings, environ

    def __getattr__(self, name):
        if name.startswith("HURRICANE_") and name in self._environ:
            raise AttributeError(name)
        return getattr(self._settings, name)


def _config(workload: str, words: list[str], settings, environ) -> Config:
    config_class = WORKLOAD_CONFIGS[workload]
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    config_class.add_arguments(parser)
    try:
        known, _unknown = parser.parse_known_args(words)
    except argparse.ArgumentError as error:
        raise ConfigError(str(error)) from None
    flags = config_class.flags_from_options(vars(known))
    return config_class.load(flags, _SettingsUnder(settings, environ), environ)


def pod_contexts(documents: list[Document], settings) -> Iterator[PodContext]:
    config_maps = {
        _get(doc.data, "metadata", "name"): doc.data.get("data") or {}
        for doc in documents
        if doc.data.get("kind") == "ConfigMap"
    }
    for document in documents:
        kind = document.data.get("kind")
        if kind not in POD_SPEC_PATHS:
            continue
        pod_path = POD_SPEC_PATHS[kind]
        pod = _get(document.data, *pod_path)
        if not isinstance(pod, dict):
            continue
        for group in ("initContainers", "containers"):
            for index, container in enumerate(pod.get(group) or []):
                if not isinstance(container, dict):
                    continue
                workload, words = (None, [])
                if group == "containers":
                    workload, words = _workload_of(container)
                context = PodContext(
                    document,
                    kind,
                    str(_get(document.data, "metadata", "name")),
                    pod_path,
                    (*pod_path, group, index),
                    container,
                    pod,
                    workload,
                    ports={
                        str(port["name"]): int(port["containerPort"])
                        for port in container.get("ports") or []
                        if isinstance(port, dict) and "name" in port and "containerPort" in port
                    },
                )
                if workload is not None:
                    environ = _environment(container, config_maps)
                    try:
                        context.config = _config(workload, words, settings, environ)
                        if workload == CELERY_WORKLOADS["worker"]:
                            context.celery_soft_shutdown = _soft_shutdown(settings, environ)
                    except ConfigError as error:
                        context.config_error = str(error)
                yield context
