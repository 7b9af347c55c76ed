"""A fourth cloud that has only keys, identities and buckets: proves that a cloud is one folder."""

from mlops_infra.backends.fakecloud.backend import FakeCloudBackend

BACKEND = FakeCloudBackend()
