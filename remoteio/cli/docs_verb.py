"""docs: the documentation, shipped inside the package (a wheel has no
docs/ folder and the project has no web address), and systemd-unit: the
service install.sh installs.

``remoteio docs`` lists the pages; ``remoteio docs cli`` prints docs/cli.md;
``remoteio docs examples/button_led.py`` an example; ``remoteio docs
install.sh`` the installer; ``--path`` where they are on this machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, Optional

from .common import EXIT_OK, EXIT_USAGE, UsageError, examples

PACKAGE = Path(__file__).resolve().parent.parent


def docs_root() -> Optional[Path]:
    """Where the pages are: in a checkout its own folders, in an installed
    package its ``_docs`` (copied there when the wheel is built)."""
    for root in (PACKAGE / "_docs", PACKAGE.parent):
        if (root / "docs" / "cli.md").is_file():
            return root
    return None


def topics(root: Path) -> Dict[str, Path]:
    """name -> file: ``readme``, ``cli``, ``install``..., ``examples/NAME.py``, the
    notebook ``examples/notebook.ipynb`` (``--path`` finds it to open), ``install.sh``."""
    found = {"readme": root / "README.md"}
    found.update({page.stem: page for page in sorted((root / "docs").glob("*.md"))})
    found.update({f"examples/{example.name}": example
                  for pattern in ("*.py", "*.ipynb")
                  for example in sorted((root / "examples").glob(pattern))})
    if (root / "install.sh").is_file():
        found["install.sh"] = root / "install.sh"
    return {name: path for name, path in found.items() if path.is_file()}


def _first_line(path: Path) -> str:
    if path.suffix == ".ipynb":  # a notebook: its first cell's first line
        import json
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells") or [{}]
            source = "".join(cells[0].get("source") or [])
        except (ValueError, AttributeError):
            return ""
        return source.strip().splitlines()[0].lstrip("#").strip() if source.strip() else ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip().lstrip("#").strip().strip('"').strip()
            if line and not line.startswith("!"):
                return line
    return ""


def _docs(args: argparse.Namespace) -> int:
    root = docs_root()
    if root is None:
        print("remoteio: the documentation is not in this installation (a package built "
              "without it); it is in the project's docs/ folder", file=sys.stderr)
        return EXIT_USAGE
    pages = topics(root)
    if args.path and args.topic is None:
        print(root)
        return EXIT_OK
    if args.topic is None:
        width = max(map(len, pages))
        print(f"remoteio's documentation ({root}); `remoteio docs TOPIC` prints one:\n")
        for name, path in pages.items():
            about = ("what remoteio is, the quick start, every page" if name == "readme"
                     else _first_line(path))
            print(f"  {name.ljust(width)}  {about}")
        return EXIT_OK
    topic = args.topic.strip()
    for candidate in (topic, topic.lower(), topic.lower().removesuffix(".md").split("/")[-1],
                      f"examples/{topic}", f"examples/{topic}.py"):
        if candidate in pages:
            if args.path:  # where it is (a script copies it): a typo is an error, never the root
                print(pages[candidate])
            else:
                sys.stdout.write(pages[candidate].read_text(encoding="utf-8"))
            return EXIT_OK
    import difflib
    close = difflib.get_close_matches(topic.lower(), list(pages), n=1)
    raise UsageError(f"no page {topic!r}" + (f"; did you mean '{close[0]}'?" if close else "")
                     + " (`remoteio docs` lists them)")


def unit_text() -> str:
    """The systemd unit install.sh installs (package data)."""
    return (PACKAGE / "data" / "remoteio.service").read_text(encoding="utf-8")


def _unit(args: argparse.Namespace) -> int:
    sys.stdout.write(unit_text())
    return EXIT_OK


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    docs = verbs.add_parser(
        "docs", help="the documentation: list the pages, or print one",
        description="The documentation comes with the package: README, every page of "
                    "docs/ (cli, install, gpiozero, security, protocol...), the examples "
                    "and install.sh.",
        epilog=examples("remoteio docs", "remoteio docs cli", "remoteio docs gpiozero | less",
                        "remoteio docs examples/button_led.py",
                        ("remoteio docs install.sh > install.sh", "the daemon's installer"),
                        ("remoteio docs --path", "where the pages are on this machine")))
    docs.add_argument("topic", metavar="TOPIC", nargs="?",
                      help="a page (cli, install, gpiozero...), an example, install.sh")
    docs.add_argument("--path", action="store_true", help="print where it is, not what it says")
    docs.set_defaults(run=_docs)

    unit = verbs.add_parser(
        "systemd-unit", help="print the systemd unit install.sh installs",
        description="Print the systemd unit of the remoteio service (Type=notify, with a "
                    "watchdog and a reload); install.sh writes it to "
                    "/etc/systemd/system/remoteio.service (remoteio docs install).",
        epilog=examples("remoteio systemd-unit"))
    unit.set_defaults(run=_unit)
