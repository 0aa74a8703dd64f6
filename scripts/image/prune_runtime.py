"""Strip a base image's filesystem down to what the service runs on: the Python interpreter and
the shared libraries under it. Runs inside the Dockerfile's ``rootfs`` stage, as root, with the
base's own interpreter (``RUN ["python3", ...]``: exec form, so no shell is needed to run it).

What goes, and why (tests/container/test_image.py checks each claim against the built image):

- every program in the PATH directories except the interpreter itself: no shell (sh, bash,
  dash), no package manager (apt, dpkg), no coreutils, no setuid helpers (su, mount, passwd).
  Code that gets into the container finds nothing to run but the Python already there.
- the base interpreter's packaging tools: pip, setuptools (the official image's 65.5.x carries a
  known CVE), wheel, their ``pkg_resources``/``_distutils_hack`` helpers, and ``ensurepip`` with
  the wheels it bundles. The service's own environment (/opt/venv) never had them.
- setuid and setgid bits anywhere, on what is left.

Kept on purpose: shared libraries, CA certificates, time zones, and dpkg's package database
(/var/lib/dpkg), so image scanners still see which Debian packages the libraries come from.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

PROGRAM_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
PACKAGING = ("pip", "setuptools", "wheel", "pkg_resources", "_distutils_hack")
# Debian keeps the wheels ensurepip installs from here (python3-pip-whl, python3-setuptools-whl).
DEBIAN_WHEELS = Path("/usr/share/python-wheels")
SKIPPED = ("/proc", "/sys", "/dev")


@dataclass(frozen=True)
class Layout:
    """Where the base keeps its interpreter, as paths inside the image."""

    interpreter: Path  # the binary itself, every link resolved
    stdlib: Path
    site_dirs: tuple[Path, ...]


def this_interpreter() -> Layout:
    """The layout of the interpreter running this script (the base's own)."""
    paths = sysconfig.get_paths()
    site_dirs = {Path(paths[key]) for key in ("purelib", "platlib")}
    # Debian's interpreter also reads /usr/lib/python3/dist-packages.
    site_dirs |= {Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return Layout(Path(sys.executable).resolve(), Path(paths["stdlib"]), tuple(sorted(site_dirs)))


def inside(root: Path, path: Path) -> Path:
    return root / path.relative_to("/")


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    print(f"prune: removed {path}")


def is_packaging(entry: Path) -> bool:
    """pip, setuptools, wheel and their helpers, as packages or as dist-info/.pth files."""
    name = entry.name
    if name == "distutils-precedence.pth":
        return True
    project = name.split("-", 1)[0] if name.endswith((".dist-info", ".egg-info")) else name
    return project.removesuffix(".py") in PACKAGING


def prune_programs(root: Path, interpreter: Path) -> None:
    """Every program on PATH except the interpreter and the links that lead to it."""
    keep = inside(root, interpreter).resolve()
    for folder in (inside(root, Path(name)) for name in PROGRAM_DIRS):
        # On merged-/usr bases /bin is a link to usr/bin: visit each real folder once.
        if folder.is_symlink() or not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.resolve() != keep:
                remove(entry)


def prune_packaging(root: Path, layout: Layout) -> None:
    """pip, setuptools and wheel of the base interpreter, and ensurepip with its wheels."""
    for folder in (inside(root, site) for site in layout.site_dirs):
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if is_packaging(entry):
                    remove(entry)
    for leftover in (layout.stdlib / "ensurepip", DEBIAN_WHEELS):
        if inside(root, leftover).exists():
            remove(inside(root, leftover))


def clear_setuid(root: Path) -> None:
    """No file keeps a setuid or setgid bit (the programs that had one are gone already)."""
    special = stat.S_ISUID | stat.S_ISGID
    skipped = {str(inside(root, Path(name))) for name in SKIPPED}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skipped]
        for name in files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode) and mode & special:
                os.chmod(path, stat.S_IMODE(mode) & ~special)
                print(f"prune: cleared setuid/setgid on {path}")


def prune(root: Path, layout: Layout) -> None:
    """Everything above, on the filesystem under ``root`` (``/`` in the image)."""
    prune_packaging(root, layout)
    prune_programs(root, layout.interpreter)
    clear_setuid(root)


def main() -> None:
    prune(Path("/"), this_interpreter())
    Path(__file__).unlink()  # this script is not part of the image either


if __name__ == "__main__":
    main()
