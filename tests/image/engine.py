"""A container engine for the image test: docker where a daemon answers, else podman with runc.

podman keeps all its state under a temporary folder (storage, run state, containers.conf), so a
test run leaves nothing behind on the machine but the cached stand-in base root file system.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# What the stand-in base holds. No image can be pulled on our CI machines, so the official
# python:*-slim-bookworm base is replaced by Debian bookworm with its own python3 (3.11).
STANDIN_SUITE = "bookworm"
STANDIN_PACKAGES = ("python3", "python3-venv")
STANDIN_CACHE = Path(os.environ.get("HURRICANE_STANDIN_CACHE", "/var/tmp/hurricane-template"))
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# runc, not crun (crun fails on our hosts' cgroups); cgroupfs and file events need no systemd.
PODMAN_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(cmd, **kwargs)


def docker_answers() -> bool:
    """True when a docker daemon answers (a docker client alone is not enough)."""
    if not shutil.which("docker"):
        return False
    try:
        return _run(["docker", "info"], timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Engine:
    """One engine invocation prefix plus the environment it needs."""

    name: str
    prefix: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None

    def cmd(self, *args: str) -> list[str]:
        return [*self.prefix, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 600, env_extra=None, **kwargs):
        env = {**os.environ, **self.env, **(env_extra or {})}
        result = _run(self.cmd(*args), env=env, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.cmd(*args))} exited {result.returncode}\n"
                f"stdout:\n{(result.stdout or '')[-4000:]}\n"
                f"stderr:\n{(result.stderr or '')[-4000:]}"
            )
        return result

    def close(self) -> None:
        """Remove everything this engine stored (podman only: its state lives in workdir)."""
        if self.name == "podman" and self.workdir is not None:
            self.run("rm", "--all", "--force", "--time", "0", check=False, timeout=120)
            self.run("rmi", "--all", "--force", check=False, timeout=120)
            # overlay/vfs layers may hold files owned by other uids: remove as we are (root).
            shutil.rmtree(self.workdir, ignore_errors=True)


def podman_engine() -> tuple[Engine | None, str]:
    """A podman with its state under a fresh temp folder, or None and the reason why not."""
    for tool in ("podman", "runc"):
        if not shutil.which(tool):
            return None, f"{tool} is not installed"
    workdir = Path(tempfile.mkdtemp(prefix="hurricane-podman-", dir="/var/tmp"))
    conf = workdir / "containers.conf"
    conf.write_text(PODMAN_CONF)
    engine = Engine(
        name="podman",
        prefix=[
            "podman",
            "--root",
            str(workdir / "storage"),
            "--runroot",
            str(workdir / "run"),
            "--tmpdir",
            str(workdir / "tmp"),
        ],
        env={"CONTAINERS_CONF": str(conf), "TMPDIR": str(workdir / "tmp")},
        workdir=workdir,
    )
    (workdir / "tmp").mkdir()
    info = engine.run("info", check=False, timeout=120)
    if info.returncode != 0:
        engine.close()
        return None, f"podman info failed: {info.stderr.strip()[-500:]}"
    return engine, ""


def find_engine() -> tuple[Engine | None, str]:
    """docker where a daemon answers, else podman; None and the reason when neither runs."""
    if docker_answers():
        return Engine(name="docker", prefix=["docker"]), ""
    engine, reason = podman_engine()
    if engine is None:
        return None, f"no docker daemon answers and podman cannot run ({reason})"
    return engine, ""


def debian_mirror() -> str:
    """The machine's own Debian mirror (apt over http works inside builds)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def standin_rootfs_tar(
    packages: tuple[str, ...] = STANDIN_PACKAGES, files: dict[str, str] | None = None
) -> Path:
    """A tarball of Debian bookworm minbase with ``packages`` (and ``files``, path -> text,
    made executable), built once and cached.

    The cache key is the suite, the packages, the files and the mirror, so a change of any of
    them builds a new one. A half-written tarball is never used: it is written aside and renamed.
    """
    files = files or {}
    extra = "".join(f"{path}\0{text}\0" for path, text in sorted(files.items()))
    key = hashlib.sha256(
        f"{STANDIN_SUITE} {' '.join(packages)} {debian_mirror()} v1{extra}".encode()
    ).hexdigest()[:12]
    tarball = STANDIN_CACHE / f"{packages[0]}-{STANDIN_SUITE}-{key}.tar"
    if packages == STANDIN_PACKAGES and not files:  # the name earlier runs cached it under
        tarball = STANDIN_CACHE / f"pybase-{STANDIN_SUITE}-{key}.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed: cannot build the stand-in base")
    STANDIN_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="standin-", dir=STANDIN_CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        result = _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                STANDIN_SUITE,
                str(rootfs),
                debian_mirror(),
            ],
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{result.stdout[-3000:]}\n{result.stderr}")
        # Keep the base lean, like the official slim images: no apt lists or package cache.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for child in (rootfs / junk).glob("*"):
                if child.is_file():
                    child.unlink()
        for path, text in files.items():
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o755)
        partial = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
        os.replace(partial, tarball)
    return tarball


def import_standin(engine: Engine, tag: str) -> None:
    """Load the cached stand-in root file system into the engine as ``tag``."""
    tarball = standin_rootfs_tar()
    engine.run("import", str(tarball), tag, timeout=600)
