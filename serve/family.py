"""What a model family declares: its options (a pydantic model, unknown keys rejected), the weight files it reads
by role, and where its `Model` class lives.

A family's declaration (`models/<family>/family.py`) imports only pydantic, so `runway-models validate` checks
options and weight roles without importing torch or TensorFlow; the model class is imported by `build()`, in the
replica that serves it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from serve.model import Model, ModelSpec


class Options(BaseModel):
    """Base of every family's options: a misspelled key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Roles:
    """One set of weight files a family can load from: every `required` role, and any of the `optional` ones."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    def fits(self, given: set[str]) -> bool:
        return self.required <= given <= self.required | self.optional

    def __str__(self) -> str:
        text = " + ".join(sorted(self.required))
        return text + "".join(f" [+ {role}]" for role in sorted(self.optional))


@dataclass(frozen=True)
class WeightRoles:
    """The weight files a family reads, by role: exactly one of `choices` (a family that reads several formats,
    e.g. TFLite or SavedModel, has one choice per format)."""

    choices: tuple[Roles, ...]

    @classmethod
    def all_of(cls, *required: str, optional: Iterable[str] = ()) -> WeightRoles:
        return cls((Roles(frozenset(required), frozenset(optional)),))

    @classmethod
    def one_of(cls, *alternatives: str, optional: Iterable[str] = ()) -> WeightRoles:
        return cls(tuple(Roles(frozenset([role]), frozenset(optional)) for role in alternatives))

    def choose(self, given: Iterable[str]) -> Roles:
        """The choice these roles fit; ValueError saying what is missing or unexpected otherwise (the caller
        shows the roles it was given)."""
        given = set(given)
        fitting = [choice for choice in self.choices if choice.fits(given)]
        if len(fitting) == 1:
            return fitting[0]
        if len(self.choices) == 1:
            (only,) = self.choices
            missing, unknown = only.required - given, given - only.required - only.optional
            parts = [f"missing weight files for roles {sorted(missing)}"] if missing else []
            parts += [f"unknown weight roles {sorted(unknown)} (it reads {only})"] if unknown else []
            raise ValueError("; ".join(parts))
        raise ValueError(f"needs exactly one of the weights {' | '.join(map(str, self.choices))}")

    def json_schema(self) -> dict[str, Any]:
        """The same rule for editors: the `serving.weights` object holds the roles of exactly one choice."""
        return {"oneOf": [{"required": sorted(choice.required),
                           "propertyNames": {"enum": sorted(choice.required | choice.optional)}}
                          for choice in self.choices]}


@dataclass(frozen=True)
class Family:
    """One model family: what the catalog's `serving.options` and `serving.weights` may hold for it, and its
    `Model` class as `module:attribute` (imported only by `model_class`)."""

    options: type[Options]
    weights: WeightRoles
    model: str

    def parse_options(self, raw: Any) -> Options:
        """Typed options from the catalog's mapping (pydantic ValidationError, naming the key, when wrong)."""
        return self.options.model_validate(raw if raw is not None else {})

    def model_class(self) -> type[Model]:
        module, _, attr = self.model.partition(":")
        return getattr(importlib.import_module(module), attr)

    def build(self, spec: ModelSpec) -> Model:
        """The family's model for one catalog entry (not loaded yet: `load()` reads the weights)."""
        return self.model_class()(spec)
