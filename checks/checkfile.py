"""One check file: the feature views it declares and the models over them (DESIGN.md section 4)."""

from __future__ import annotations

from pydantic import Field, model_validator

from checks.model import FeatureView, Strict
from checks.served import Model


class CheckFile(Strict):
    """One YAML file of feature views and their checks, and of models and theirs. A model may
    use views declared in any check file."""

    feature_views: tuple[FeatureView, ...] = ()
    models: tuple[Model, ...] = Field(
        (), description="What models are served: features across views, checked per request."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> CheckFile:
        if not self.feature_views and not self.models:
            raise ValueError("expected at least one of `feature_views` or `models`, found none")
        return self
