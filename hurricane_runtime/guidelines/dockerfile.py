"""The Dockerfile, read with ``dockerfile-parse``, and the guidelines about it.

Only the final stage matters for how the container runs (its USER, CMD and ENTRYPOINT); every
stage's FROM matters for what the build starts from.
"""

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .registry import Finding, guideline

CONTAINER_DOC = "docs/container.md#what-the-dockerfile-does-and-why"


class DockerfileError(ValueError):
    """A Dockerfile that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Instruction:
    name: str  # "CMD"
    value: str  # what follows the instruction word, continuation lines joined
    line: int  # 1-based


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction]
    base_images: list[tuple[str, int]]  # every FROM, ARG defaults substituted, with its line

    @property
    def final_stage(self) -> list[Instruction]:
        starts = [
            i for i, instruction in enumerate(self.instructions) if instruction.name == "FROM"
        ]
        return self.instructions[starts[-1] :] if starts else self.instructions

    def last(self, name: str) -> Instruction | None:
        found = [instruction for instruction in self.final_stage if instruction.name == name]
        return found[-1] if found else None


def load_dockerfile(path: Path) -> Dockerfile:
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError:  # pragma: no cover - the audit extra brings it
        raise DockerfileError(
            "--dockerfile needs dockerfile-parse: pip install dockerfile-parse"
        ) from None
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DockerfileError(f"dockerfile: cannot read {path}: {error.strerror}") from None
    parser = DockerfileParser(fileobj=io.BytesIO(content))
    try:
        structure = parser.structure
        parents = parser.parent_images
    except Exception as error:  # the parser raises plain exceptions on broken files
        raise DockerfileError(f"dockerfile: cannot parse {path}: {error}") from None
    instructions = [
        Instruction(item["instruction"], item["value"], item["startline"] + 1)
        for item in structure
        if item["instruction"] != "COMMENT"
    ]
    froms = [instruction for instruction in instructions if instruction.name == "FROM"]
    if not froms:
        raise DockerfileError(f"dockerfile: {path} has no FROM instruction")
    stages = set()
    base_images = []
    for instruction, image in zip(froms, parents, strict=False):
        words = instruction.value.split()
        if image not in stages and image != "scratch":
            base_images.append((image, instruction.line))
        if len(words) >= 3 and words[-2].lower() == "as":
            stages.add(words[-1])
    return Dockerfile(path, instructions, base_images)


def _exec_form(value: str) -> bool:
    try:
        words = json.loads(value)
    except ValueError:
        return False
    return isinstance(words, list) and all(isinstance(word, str) for word in words)


@guideline(
    "hurricane.E201",
    "CMD or ENTRYPOINT is in shell form",
    'Write it in exec form (CMD ["python", "manage.py", "serve"]) so the server is PID 1 and '
    "receives SIGTERM itself.",
    CONTAINER_DOC,
    scope="dockerfile",
)
def shell_form(dockerfile: Dockerfile) -> Iterator[Finding]:
    for name in ("ENTRYPOINT", "CMD"):
        instruction = dockerfile.last(name)
        if instruction is not None and not _exec_form(instruction.value):
            yield Finding(
                f"{name} {instruction.value} runs under /bin/sh -c",
                obj=name,
                path=str(dockerfile.path),
                line=instruction.line,
            )


@guideline(
    "hurricane.E202",
    "The image runs as root",
    "Create a user with a numeric UID and end the final stage with USER 10001:10001.",
    CONTAINER_DOC,
    scope="dockerfile",
)
def runs_as_root(dockerfile: Dockerfile) -> Iterator[Finding]:
    instruction = dockerfile.last("USER")
    if instruction is None:
        line = dockerfile.final_stage[0].line
        yield Finding("the final stage sets no USER", path=str(dockerfile.path), line=line)
        return
    user = instruction.value.split(":", 1)[0].strip()
    if user in ("root", "0"):
        yield Finding(
            f"USER {instruction.value}",
            obj="USER",
            path=str(dockerfile.path),
            line=instruction.line,
        )
    elif not user.isdigit():
        yield Finding(
            f"USER {instruction.value} is a name: Kubernetes' runAsNonRoot can only verify a "
            "numeric UID",
            obj="USER",
            path=str(dockerfile.path),
            line=instruction.line,
        )


@guideline(
    "hurricane.W203",
    "A base image is not pinned by digest",
    "Pin FROM by tag and digest (python:3.12-slim@sha256:...), so every build starts from the "
    "same bytes.",
    CONTAINER_DOC,
    scope="dockerfile",
)
def base_image_not_pinned(dockerfile: Dockerfile) -> Iterator[Finding]:
    for image, line in dockerfile.base_images:
        if "@sha256:" not in image:
            yield Finding(f"FROM {image}", obj="FROM", path=str(dockerfile.path), line=line)
