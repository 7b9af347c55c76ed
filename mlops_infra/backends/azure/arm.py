"""Thin Azure Resource Manager REST calls for mlops-infra's dynamic resources (no SDK at import).

The few things azure-native has no resource for (an online endpoint's traffic, importing an image
into a registry, provisioning a workspace's managed network with Spark) are ARM actions, which
dynamic providers run at deployment time through this session: a token from azure-identity,
requests for HTTP, and Azure's asynchronous operations followed to their end. Both libraries are
imported only when a session is made (pyproject extra `azure`); planning never loads them, and
tests inject a fake credential and session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ARM = "https://management.azure.com"  # Azure public cloud
SCOPE = f"{ARM}/.default"
POLL_SECONDS = 10
TIMEOUT_SECONDS = 3600


class ArmSession:
    """Authenticated ARM calls; credential, session, sleep and clock injectable for tests."""

    def __init__(
        self,
        credential: Any = None,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        if session is None:
            import requests

            session = requests.Session()
        self._credential = credential
        self._session = session
        self._sleep = sleep
        self._clock = clock

    def run(self, method: str, path: str, body: Any = None, *, api_version: str) -> Any:
        """Send one request and wait for the asynchronous operation it starts, if any."""
        response = self.call(method, path, body, api_version=api_version)
        if response.status_code in (201, 202):
            self.wait(response)
        return response

    def call(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202), *, api_version: str
    ) -> Any:
        url = path if path.startswith("https://") else f"{ARM}{path}"
        response = self._session.request(
            method, url, params={"api-version": api_version}, json=body, headers=self._headers(), timeout=60
        )
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {path} failed: HTTP {response.status_code}: {response.text[:500]}")
        return response

    def wait(self, response: Any) -> None:
        """Follow Azure's asynchronous operation (Azure-AsyncOperation, else Location) to its end."""
        monitor = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")
        if not monitor:
            return
        deadline = self._clock() + TIMEOUT_SECONDS
        while True:
            polled = self._session.request("GET", monitor, headers=self._headers(), timeout=60)
            if polled.status_code == 202:
                status = "InProgress"
            elif polled.status_code in (200, 204):
                status = (polled.json().get("status") if polled.content else None) or "Succeeded"
            else:
                raise RuntimeError(f"polling {monitor} failed: HTTP {polled.status_code}: {polled.text[:500]}")
            if status == "Succeeded":
                return
            if status in ("Failed", "Canceled"):
                raise RuntimeError(f"Azure operation {status.lower()}: {polled.text[:500]}")
            if self._clock() > deadline:
                raise TimeoutError(f"Azure operation still running after {TIMEOUT_SECONDS} s: {monitor}")
            self._sleep(float(polled.headers.get("Retry-After") or POLL_SECONDS))

    def _headers(self) -> dict[str, str]:
        token = self._credential.get_token(SCOPE).token
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
