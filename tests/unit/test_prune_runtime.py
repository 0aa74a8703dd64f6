"""scripts/image/prune_runtime.py on a copy of the official python:3.11-slim layout (the default
base, which cannot be pulled here; the Debian base is checked for real in the container tier)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scripts.image.prune_runtime import Layout, prune

OFFICIAL = Layout(
    interpreter=Path("/usr/local/bin/python3.11"),
    stdlib=Path("/usr/local/lib/python3.11"),
    site_dirs=(Path("/usr/local/lib/python3.11/site-packages"),),
)
SITE = "usr/local/lib/python3.11/site-packages"


def make_official_like_base(root: Path) -> None:
    """The parts of python:3.11-slim-bookworm that matter: /usr/local's Python with pip,
    setuptools and wheel, Debian's merged /usr with a shell, apt and a setuid program."""
    files = [
        "usr/local/bin/python3.11",
        "usr/local/bin/pip",
        "usr/local/bin/pip3.11",
        "usr/local/bin/idle3.11",
        "usr/local/bin/wheel",
        "usr/local/lib/python3.11/os.py",
        "usr/local/lib/python3.11/venv/__init__.py",
        "usr/local/lib/python3.11/ensurepip/_bundled/setuptools-65.5.0-py3-none-any.whl",
        f"{SITE}/pip/__init__.py",
        f"{SITE}/pip-24.0.dist-info/RECORD",
        f"{SITE}/setuptools/__init__.py",
        f"{SITE}/setuptools-65.5.1.dist-info/RECORD",
        f"{SITE}/wheel/__init__.py",
        f"{SITE}/wheel-0.45.1.dist-info/RECORD",
        f"{SITE}/pkg_resources/__init__.py",
        f"{SITE}/_distutils_hack/__init__.py",
        f"{SITE}/distutils-precedence.pth",
        f"{SITE}/README.txt",
        "usr/bin/dash",
        "usr/bin/bash",
        "usr/bin/apt-get",
        "usr/bin/dpkg",
        "usr/bin/perl",
        "usr/bin/su",
        "usr/sbin/ldconfig",
        "usr/lib/x86_64-linux-gnu/libssl.so.3",
        "usr/lib/openssh/ssh-keysign",
        "var/lib/dpkg/status",
        "etc/ssl/certs/ca-certificates.crt",
    ]
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        path.chmod(0o755)
    for link, target in [
        ("usr/local/bin/python3", "python3.11"),
        ("usr/local/bin/python", "python3"),
        ("usr/local/bin/pip3", "pip3.11"),
        ("usr/bin/sh", "dash"),
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
    ]:
        (root / link).symlink_to(target)
    for setuid in ("usr/bin/su", "usr/lib/openssh/ssh-keysign"):
        (root / setuid).chmod(0o4755)
    (root / "proc").mkdir()


def test_prune_leaves_the_interpreter_its_stdlib_and_libraries_only(tmp_path: Path) -> None:
    make_official_like_base(tmp_path)
    prune(tmp_path, OFFICIAL)
    assert sorted(os.listdir(tmp_path / "usr/local/bin")) == ["python", "python3", "python3.11"]
    assert os.listdir(tmp_path / "usr/bin") == []
    assert os.listdir(tmp_path / "usr/sbin") == []
    assert os.listdir(tmp_path / SITE) == ["README.txt"]
    assert not (tmp_path / "usr/local/lib/python3.11/ensurepip").exists()
    for kept in (
        "usr/local/lib/python3.11/os.py",
        "usr/local/lib/python3.11/venv/__init__.py",
        "usr/lib/x86_64-linux-gnu/libssl.so.3",
        "var/lib/dpkg/status",
        "etc/ssl/certs/ca-certificates.crt",
    ):
        assert (tmp_path / kept).is_file(), kept
    keysign = (tmp_path / "usr/lib/openssh/ssh-keysign").stat().st_mode
    assert not keysign & (stat.S_ISUID | stat.S_ISGID)
    assert (tmp_path / "bin").is_symlink()  # the merged-/usr link itself stays, now empty
