"""What the services' request bodies share: a body refuses fields it does not know (a typo
is a 422, not a silent default), free text is stripped and bounded, and a province is its
6-digit administrative division code."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Province = Annotated[str, StringConstraints(pattern=r"^[1-8][0-9]0000$")]
