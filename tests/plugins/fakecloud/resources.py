"""FakeCloud's resource types."""

from __future__ import annotations

from typing import Any

import pulumi


class Key(pulumi.CustomResource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__("fakecloud:index:Key", name, props, opts)


class Identity(pulumi.CustomResource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__("fakecloud:index:Identity", name, props, opts)


class Bucket(pulumi.CustomResource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__("fakecloud:index:Bucket", name, props, opts)
