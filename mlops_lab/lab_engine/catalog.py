"""Which labs exist: every ``labs/NN-slug/`` folder with a ``lab.toml``, loaded on demand."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from platform_core.errors import PlatformError
from platform_core.settings import REPO_ROOT

LABS_DIR = REPO_ROOT / "labs"
_FOLDER = re.compile(r"(?P<id>\d{2})-(?P<slug>[a-z0-9-]+)")
# Folder names labs had before they were renamed to say a symptom rather than the cause. Progress
# is keyed by id, so it needs nothing; these let an old name still find its lab, and let what
# an earlier release keyed by folder name (drill cards, postmortem files) be carried over.
FORMER_NAMES = {
    "03": ("03-bad-release-rollback",),
    "04": ("04-quality-gate",),
    "07": ("07-real-shift-retrain",),
    "13": ("13-train-serve-skew",),
    "14": ("14-oomkilled",),
    "15": ("15-readiness-probe",),
}
Runtime = Literal["local", "kind", "any"]
Difficulty = Literal["easy", "medium", "hard"]


class Page(BaseModel):
    """What an on-call engineer is paged with (``[page]`` in lab.toml)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    alert: str
    summary: str
    look: str
    complaint: str


class Manifest(BaseModel):
    """The schema of ``lab.toml``: strict, so a typo or a wrong type is refused at load time
    rather than surfacing later as a lab that never runs on any runtime."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: str
    runtime: Runtime
    difficulty: Difficulty
    minutes: PositiveInt
    teaches: str
    page: Page
    traffic: bool = True
    monitoring: bool = False
    spoilers: list[str] = Field(min_length=1)


@dataclass(frozen=True)
class Lab:
    id: str
    slug: str
    folder: Path
    title: str
    runtime: Runtime
    difficulty: Difficulty
    minutes: int
    teaches: str
    # What an on-call engineer is paged with: alert, summary, where to look, the complaint.
    page: dict[str, str]
    # Whether the simulated loan front end sends traffic while the lab is in progress.
    traffic: bool
    # Whether the lab's incident or check needs Prometheus and Alertmanager: a cluster without
    # kube-prometheus-stack cannot run it.
    monitoring: bool = False
    # Words that would give the answer away: kept out of everything a learner reads before the
    # solve (README, title, teaches, folder name, index row, start output, page; a test checks).
    spoilers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.id}-{self.slug}"

    @property
    def former_names(self) -> tuple[str, ...]:
        return FORMER_NAMES.get(self.id, ())

    @property
    def readme(self) -> Path:
        return self.folder / "README.md"

    @property
    def readme_shown(self) -> str:
        """The README's path as commands print it: from the repository root when it is in it."""
        path = self.readme
        return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)

    @property
    def debrief(self) -> Path:
        return self.folder / "debrief.md"

    def runs_on(self, runtime: str) -> bool:
        return self.runtime in ("any", runtime)

    @property
    def variants(self) -> tuple[dict[str, Any], ...]:
        """The incident's variants (the lab's ``VARIANTS``: which feature, value, setting...),
        the first being the one its README and tests describe; a lab without any has one."""
        return tuple(getattr(self.module, "VARIANTS", ())) or ({},)

    def variant(self, seed: int) -> tuple[int, dict[str, Any]]:
        """The variant a seed draws: its number (from 1) and its parameters."""
        index = seed % len(self.variants)
        return index + 1, dict(self.variants[index])

    def debrief_text(self, variant: dict[str, Any] | None = None) -> str:
        """The debrief, its ``{{name}}`` marks filled from the variant (the first by default)."""
        text = self.debrief.read_text()
        values = {**self.variants[0], **(variant or {})}
        return re.sub(
            r"\{\{\s*(\w+)\s*\}\}",
            lambda mark: str(values.get(mark[1], mark[0])),
            text,
        )

    @cached_property
    def module(self) -> ModuleType:
        """The lab's ``lab.py`` (folders named NN-slug are not importable as packages)."""
        path = self.folder / "lab.py"
        spec = importlib.util.spec_from_file_location(f"mlops_lab_labs.lab_{self.id}", path)
        if spec is None or spec.loader is None:
            raise PlatformError(f"Lab {self.name} has no loadable {path}.")
        module = importlib.util.module_from_spec(spec)
        # Registered as an import would be: what a lab defines (a dataclass) looks itself up there.
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


def _load(folder: Path) -> Lab:
    match = _FOLDER.fullmatch(folder.name)
    assert match is not None
    manifest_path = folder / "lab.toml"
    try:
        manifest = Manifest.model_validate(tomllib.loads(manifest_path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise PlatformError(
            f"{manifest_path} is not valid TOML: {exc}.", hint="Fix the file, then run it again."
        ) from exc
    except ValidationError as exc:
        raise PlatformError(
            f"{manifest_path} is not a valid lab manifest: " + "; ".join(_describe(exc)) + ".",
            hint="Compare it with labs/01-golden-path/lab.toml and labs/WRITING.md.",
        ) from exc
    return Lab(
        id=match["id"],
        slug=match["slug"],
        folder=folder,
        title=manifest.title,
        runtime=manifest.runtime,
        difficulty=manifest.difficulty,
        minutes=manifest.minutes,
        teaches=manifest.teaches,
        page=manifest.page.model_dump(),
        traffic=manifest.traffic,
        monitoring=manifest.monitoring,
        spoilers=tuple(manifest.spoilers),
    )


def _describe(error: ValidationError) -> list[str]:
    """One phrase per problem, naming the field: "`runtime`: Input should be 'local', 'kind' or
    'any' (got 'k8s')"."""
    phrases = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        phrase = f"`{field}`: {problem['msg']}"
        if problem["type"] not in ("missing", "extra_forbidden"):
            phrase += f" (got {problem['input']!r})"
        phrases.append(phrase)
    return phrases


def all_labs(labs_dir: Path = LABS_DIR) -> list[Lab]:
    folders = sorted(p for p in labs_dir.iterdir() if p.is_dir() and _FOLDER.fullmatch(p.name))
    return [_load(folder) for folder in folders if (folder / "lab.toml").exists()]


def find(lab_id: str, labs_dir: Path = LABS_DIR) -> Lab:
    """A lab by id ("02", "2") or by folder name ("02-data-drift"), also one it had before."""
    labs = all_labs(labs_dir)
    wanted = lab_id.strip()
    for lab in labs:
        if wanted in (lab.id, lab.name, lab.slug, *lab.former_names) or (
            wanted.isdigit() and int(wanted) == int(lab.id)
        ):
            return lab
    known = ", ".join(lab.id for lab in labs)
    raise PlatformError(
        f"There is no lab {lab_id!r}.", hint=f"Labs: {known} (`mlops-lab lab list`)."
    )
