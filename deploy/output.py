"""YAML text of the generated files, and writing them so that --out is either the old set or the new one.

Everything is rendered and validated in memory first; then the files go to a fresh temporary folder beside --out,
which is renamed into place. A failure at any point leaves --out as it was. --out must be new, empty, or a folder
this generator wrote before (it holds MARKER); its whole content is replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import DeployError

MARKER = ".runway-models-generated"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: every object spelled out
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(documents: list[Any], header: str = "") -> str:
    """Documents as one YAML stream, keys in the order we built them, multi-line strings as blocks."""
    body = "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
                        for doc in documents)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + body


def write_atomically(files: dict[str, str], out_dir: str | Path) -> list[Path]:
    """Write `files` (relative path -> text) as the new content of out_dir; returns the written paths."""
    out = Path(out_dir).resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise DeployError([f"--out {out}: exists and was not written by runway-models generate; "
                           f"give a new or empty folder"])
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise DeployError([f"internal: refusing to write outside --out: {rel}"])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for rel, text in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        (staging / MARKER).write_text("".join(f"{rel}\n" for rel in sorted(files)))
        os.chmod(staging, 0o755)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, retired / "out")
            try:
                os.rename(staging, out)
            except OSError:
                os.rename(retired / "out", out)
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / rel for rel in files]
