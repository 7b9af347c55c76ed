"""Where the Azure identity libraries (and so pulumi-azure-native) find credentials."""

from mlops_infra.backends.base import CredentialSources

CREDENTIALS = CredentialSources(
    env_groups=(
        ("ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_TENANT_ID"),
        ("ARM_CLIENT_ID", "ARM_CLIENT_CERTIFICATE_PATH", "ARM_TENANT_ID"),
        ("ARM_CLIENT_ID", "ARM_USE_OIDC", "ARM_TENANT_ID"),  # GitHub OIDC
        ("ARM_USE_MSI",),  # managed identity
        ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"),
        ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID"),  # AKS workload identity
    ),
    files=(".azure/azureProfile.json",),  # written by `az login`
    login_hint="run `az login` (and `az account set --subscription ID`), or export ARM_CLIENT_ID, "
    "ARM_CLIENT_SECRET and ARM_TENANT_ID for a service principal; in CI use OIDC (azure/login, ARM_USE_OIDC=true)",
    error_markers=(
        "DefaultAzureCredential failed",
        "AADSTS",
        "Please run 'az login'",
        "could not configure AzureCli Authorizer",
        "ExpiredAuthenticationToken",
    ),
)
