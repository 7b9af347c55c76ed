"""How each AWS physical name is built (rules: data/cloud-name-rules.json).

Kinds and their scope of uniqueness on AWS:
- aws.s3.bucket: global per partition -> always hashed (the hash seed includes the region).
- aws.iam.role: unique per account, across regions -> the region is one of the name's words,
  so the same project/environment can be deployed to two regions of one account.
- aws.iam.policy (inline role policy): unique per role.
- aws.kms.alias, aws.cloudtrail.trail: unique per account and region.
"""

from __future__ import annotations

from mlops_infra.naming import NameStyle, Namer

STYLES = {
    "aws.s3.bucket": NameStyle(global_unique=True),
    "aws.iam.role": NameStyle(),
    "aws.iam.policy": NameStyle(),
    "aws.kms.alias": NameStyle(prefix="alias/"),
    "aws.cloudtrail.trail": NameStyle(),
}


def bucket_name(namer: Namer, bucket: str) -> str:
    return namer.name("aws.s3.bucket", bucket)


def role_name(namer: Namer, role: str, region: str) -> str:
    return namer.name("aws.iam.role", role, region)


def key_alias(namer: Namer) -> str:
    return namer.name("aws.kms.alias", "key")


def trail_name(namer: Namer) -> str:
    return namer.name("aws.cloudtrail.trail", "audit")


def inline_policy_name(namer: Namer, purpose: str) -> str:
    return namer.name("aws.iam.policy", purpose)
