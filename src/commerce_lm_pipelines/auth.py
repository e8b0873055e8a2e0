"""Authentication to a Kubeflow Pipelines API, first match wins.

1. a bearer token in the environment (``KFP_BEARER_TOKEN``, or the variable ``--token-env`` names),
   e.g. ``$(gcloud auth print-access-token)`` or an OIDC token in front of a Kubeflow gateway;
2. in a pod, the projected service-account token KFP mounts for pipeline clients
   (``KF_PIPELINES_SA_TOKEN_PATH``, default ``/var/run/secrets/kubeflow/pipelines/token``);
3. nothing (a port-forwarded or otherwise open endpoint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_ENV = "KFP_BEARER_TOKEN"
SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
SA_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"


@dataclass
class Auth:
    """How to authenticate to the KFP API.

    Attributes:
        token: A bearer token, or ``None``.
        sa_token_path: A service-account token file read (and re-read) for each request, or ``None``.
        namespace: The Kubeflow profile namespace on a multi-user deployment.
    """

    token: str | None = None
    sa_token_path: str | None = None
    namespace: str | None = None

    @classmethod
    def from_environment(cls, namespace: str | None = None, token_env: str = TOKEN_ENV) -> Auth:
        """Pick the credentials available here, in the order the module docstring lists."""
        token = os.environ.get(token_env) or None
        if token:
            return cls(token=token, namespace=namespace)
        path = os.environ.get(SA_TOKEN_ENV) or SA_TOKEN_PATH
        if Path(path).is_file():
            return cls(sa_token_path=path, namespace=namespace)
        return cls(namespace=namespace)

    def describe(self) -> str:
        """Say which credentials are used, never the secret itself."""
        how = "bearer token" if self.token else "service-account token" if self.sa_token_path else "none"
        return f"auth: {how}" + (f", namespace {self.namespace}" if self.namespace else "")


def make_client(host: str, auth: Auth):  # noqa: ANN201 - a kfp.Client
    """Create a ``kfp.Client`` for ``host`` with ``auth``."""
    import kfp

    kwargs: dict[str, Any] = {"host": host}
    if auth.token:
        kwargs["existing_token"] = auth.token
    elif auth.sa_token_path:
        from kfp.client import ServiceAccountTokenVolumeCredentials

        kwargs["credentials"] = ServiceAccountTokenVolumeCredentials(path=auth.sa_token_path)
    if auth.namespace:
        kwargs["namespace"] = auth.namespace
    return kfp.Client(**kwargs)
