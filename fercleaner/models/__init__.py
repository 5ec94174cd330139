"""Backbone construction for every method."""

from fercleaner.models.backbone import Backbone, create_backbone

__all__ = ["Backbone", "create_backbone"]
