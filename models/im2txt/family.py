"""The im2txt family's declaration: its options and weight roles (pydantic only: the catalog validates with it)."""

from __future__ import annotations

from pydantic import Field

from serve.family import Family, Options, WeightRoles


class Im2txtOptions(Options):
    beam_size: int = Field(3, ge=1, description="captions kept at each step of the beam search (im2txt's 3)")
    max_caption_length: int = Field(20, ge=2, description="most tokens per caption, <S> included (im2txt's 20)")


FAMILY = Family(
    options=Im2txtOptions,
    # the TF checkpoint prefix (…/model.ckpt-2000000, or its .index file) and word_counts.txt
    weights=WeightRoles.all_of("checkpoint", "vocab"),
    model="models.im2txt.model:Im2txtModel",
)
