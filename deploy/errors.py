"""The one error generation raises: every problem names the entry (or values key) and the field."""

from __future__ import annotations


class DeployError(Exception):
    """A catalog or settings that cannot be deployed; `problems` holds one `where.field: message` line each."""

    def __init__(self, problems: list[str], source: str = "deploy"):
        self.problems = list(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n  " + "\n  ".join(self.problems))
