#!/usr/bin/env python3
"""Make the template yours: rename the product everywhere it is named, in one command.

    python3 scripts/rename.py acme-billing                      # slug; image follows it
    python3 scripts/rename.py acme-billing --image ghcr.io/acme/billing --title "Acme Billing"
    python3 scripts/rename.py acme-billing --dry-run            # say what would change

The product's names live in ``pyproject.toml``: ``[project] name`` is the slug (the Python
distribution, the Compose project, the Kubernetes namespace and labels, the Secret names, the
image name, the command line) and ``[tool.stack] image`` the image repository, registry
included. Compose files and kustomizations cannot read pyproject, so each declares the slug where
its own mechanism spreads it (Compose's ``name:`` and image defaults; the kustomize component
``k8s/components/product`` and the overlays' ``namespace:``/``images:``, listed in k8s/README.md,
"Names"), and docs and tests mention it; this script rewrites every repetition (the files git
tracks, or every file when there is no git) and then ``pyproject.toml`` itself, so the current
names are always read from there. Running it twice with the same name changes nothing, which is
what lets ``copier update`` replay it.

Not renamed: the runtime package ``service_template`` (the framework, like a library you
depend on) and ``CHANGELOG.md`` (history). Needs only Python 3.11+.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A DNS-1123 label, short enough that "<slug>-prometheus" and "<slug>-api-token" stay valid.
SLUG_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
KEEP = ("service_template/", "CHANGELOG.md", ".copier-answers.yml")
SKIP_DIRS = {".git", ".venv", ".cache", "node_modules", "__pycache__", ".hypothesis"}


class RenameError(Exception):
    """A name that cannot be used; the message says why."""


def current_names(repo: Path) -> tuple[str, str, str]:
    """(slug, image, README title) as the project names them now."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    title = (repo / "README.md").read_text().splitlines()[0].removeprefix("# ").strip()
    return project["project"]["name"], project["tool"]["stack"]["image"], title


def project_files(repo: Path) -> list[Path]:
    """The text files of the project that may carry its names."""
    try:
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [repo / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        paths = [
            path
            for path in repo.rglob("*")
            if not SKIP_DIRS.intersection(path.relative_to(repo).parts)
        ]
    files = []
    for path in sorted(paths):
        relative = path.relative_to(repo).as_posix()
        if not path.is_file() or path.is_symlink() or relative.startswith(KEEP):
            continue
        files.append(path)
    return files


def slug_pattern(slug: str) -> re.Pattern[str]:
    # Whole names only: "<slug>-base", "${IMAGE:-<slug>:latest}" and "org.<slug>.x" are
    # renamed, "my-<slug>" and "<slug>_x" are not.
    return re.compile(rf"(?<![A-Za-z0-9_])(?<![a-z0-9]-){re.escape(slug)}(?![A-Za-z0-9_])")


def plan(repo: Path, slug: str, image: str | None, title: str | None) -> dict[Path, str]:
    """The new text of every file that changes."""
    if not SLUG_RE.match(slug):
        raise RenameError(
            f"{slug!r} is not a usable name: lower-case letters, digits and '-', starting with a "
            "letter, at most 40 characters (it becomes a Kubernetes namespace and image name)"
        )
    old_slug, old_image, old_title = current_names(repo)
    image = image or old_image.rsplit("/", 1)[0] + "/" + slug
    if not IMAGE_RE.match(image):
        raise RenameError(f"{image!r} is not an image repository such as ghcr.io/acme/billing")
    title = title or (old_title if old_slug == slug else slug)
    pattern = slug_pattern(old_slug)
    changed: dict[Path, str] = {}
    for path in project_files(repo):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files carry no names
        new = text.replace(old_image, image)  # the image first: it contains the slug
        new = pattern.sub(slug, new)
        if path.name == "README.md" and path.parent == repo:
            first, _, rest = new.partition("\n")
            new = f"# {title}\n{rest}" if first.startswith("# ") else new
        if new != text:
            changed[path] = new
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("slug", help="the product's name: lower-case, digits, '-' (acme-billing)")
    parser.add_argument(
        "--image",
        help="image repository, registry included (default: the "
        "current registry and owner with the new name)",
    )
    parser.add_argument("--title", help="the README's title (default: the slug)")
    parser.add_argument("--dry-run", action="store_true", help="list the files, change nothing")
    parser.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        changed = plan(args.repo, args.slug, args.image, args.title)
    except RenameError as exc:
        print(f"rename: error: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"{'would rewrite' if args.dry_run else 'rewrote'} {path.relative_to(args.repo)}")
    if not args.dry_run:
        # pyproject.toml last: it names the current slug, so an interrupted run can be repeated.
        for path in sorted(changed, key=lambda p: p.name == "pyproject.toml"):
            path.write_text(changed[path], encoding="utf-8")
    print(f"rename: {len(changed)} file(s) {'would change' if args.dry_run else 'changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
