"""Base class of the backends' dynamic resources (the few things Pulumi has no resource for)."""

from __future__ import annotations

import pickle
from typing import Any

import pulumi
from pulumi.dynamic import Resource, ResourceProvider


class DynamicResource(Resource):
    """pulumi.dynamic.Resource that can be created thousands of times in one program.

    Each dynamic resource pickles its provider; the SDK's serializer (pulumi 3.272) wraps
    pickle._Pickler._batch_setitems in a sorting wrapper every time and restores only
    pickle.Pickler, so wrappers stack up and the 1,000th resource dies with RecursionError.
    Restoring the method around each creation keeps one wrapper at most.
    Subclass with `module=` and `name=` for a readable type token.
    """

    def __init__(
        self, provider: ResourceProvider, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # _batch_setitems is a private method of the pure-Python pickler: typeshed does not declare it.
        unwrapped = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]
        try:
            super().__init__(provider, name, props, opts)
        finally:
            pickle._Pickler._batch_setitems = unwrapped  # type: ignore[attr-defined]
