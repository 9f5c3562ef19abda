"""Model architectures. Importing the package registers every family's models."""

from bloodcells.architectures import cnn, inception, residual, transfer  # noqa: F401  (registration on import)
from bloodcells.architectures.registry import (
    create_model,
    get_builder,
    list_models,
    model_source,
    register_model,
)

__all__ = ["create_model", "get_builder", "list_models", "model_source", "register_model"]
