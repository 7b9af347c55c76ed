"""How each GCP physical name is built (rules: data/cloud-name-rules.json)."""

from mlops_infra.naming import NameStyle

STYLES = {
    # Bucket names share one global namespace: always hashed (scope: the GCP project).
    # The rule allows 222 characters for dotted names only; undotted names stop at 63.
    "gcp.storage.bucket": NameStyle(global_unique=True, max_length=63),
    # 6-30 characters, lowercase letter first, no trailing hyphen.
    "gcp.iam.service_account_id": NameStyle(letter_first=True),
    "gcp.kms.key_ring": NameStyle(),
    "gcp.kms.crypto_key": NameStyle(),
}
