"""Where `model.checkpoint` points: a local folder, or a Hugging Face repo id found in the local hub cache.

A value is a repo id when it has the form `Org/Name`, no such path exists relative to the configuration's folder
(a folder that exists wins, as in diffusers' `from_pretrained`) and the hub cache holds `models--Org--Name/`;
everything else is a path. The Swift side applies the same rule when it anchors paths (Support's
`ModelSource`), so a repo id reaches the engine unchanged and a folder that is missing is reported as one.

A repo id is resolved offline, as huggingface_hub lays out its cache
(https://huggingface.co/docs/huggingface_hub/guides/manage-cache):
    <hub cache>/models--Org--Name/refs/main             the commit the `main` branch pointed at when downloaded
    <hub cache>/models--Org--Name/snapshots/<commit>/   the files of that commit (links into blobs/)
The hub cache is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
$XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. Nothing is downloaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ModelLoadError

# huggingface_hub's repo id: `namespace/name`, letters, digits, '-', '_', '.', no '--' or '..', at most 96 long.
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")

DOWNLOAD_HINT = "huggingface-cli download {repo}"


def looks_like_repo_id(value: str) -> bool:
    return (bool(_REPO_ID.fullmatch(value)) and "--" not in value and ".." not in value and len(value) <= 96
            and not value.endswith("."))


def read_model_source(value: str, base: Path) -> Path | str:
    """A configuration value -> a path (absolute, or relative to `base`) or a repo id (returned unchanged)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if (base / path).exists() or not looks_like_repo_id(value) or not cache_entry(value).is_dir():
        return base / path
    return value


def cache_entry(repo_id: str) -> Path:
    """The folder the hub cache keeps `repo_id` in (it exists once the repo was downloaded)."""
    return hub_cache_dir()[0] / ("models--" + repo_id.replace("/", "--"))


def hub_cache_dir() -> tuple[Path, str]:
    """The local Hugging Face hub cache and what chose it (an environment variable or the default)."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.path.expandvars(os.environ[variable])).expanduser(), f"${variable}"
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub", "$HF_HOME/hub"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub", \
            "$XDG_CACHE_HOME/huggingface/hub"
    return Path("~/.cache/huggingface/hub").expanduser(), "the default ~/.cache/huggingface/hub"


def resolve_repo_id(repo_id: str) -> Path:
    """The snapshot folder of `repo_id`'s `main` branch in the local hub cache; a ModelLoadError says where it
    looked and how to get the files there."""
    cache, chosen_by = hub_cache_dir()
    repo = cache_entry(repo_id)
    fix = (f"download it once with `{DOWNLOAD_HINT.format(repo=repo_id)}` (or set HF_HUB_CACHE / HF_HOME to the "
           "cache that holds it), or set model.checkpoint to the model's folder")
    if not repo.is_dir():
        raise ModelLoadError(
            f"model.checkpoint '{repo_id}' is neither a folder nor a repo in the Hugging Face hub cache: "
            f"{repo} does not exist (hub cache {cache}, from {chosen_by}; nothing is downloaded)", fix)
    ref = repo / "refs" / "main"
    if not ref.is_file():
        raise ModelLoadError(
            f"the hub cache entry {repo} of '{repo_id}' has no refs/main (the download did not finish, or only "
            "another revision was downloaded)", fix)
    commit = ref.read_text(encoding="ascii", errors="replace").strip()
    snapshot = repo / "snapshots" / commit
    if not commit or not snapshot.is_dir():
        raise ModelLoadError(
            f"the hub cache entry {repo} of '{repo_id}': refs/main names the commit '{commit}', which has no "
            f"folder in {repo / 'snapshots'}", fix)
    return snapshot


def model_folder(source: Path | str) -> Path:
    """A local folder as it is; a repo id resolved in the hub cache."""
    if isinstance(source, Path):
        return source
    return resolve_repo_id(source) if looks_like_repo_id(source) else Path(source)
