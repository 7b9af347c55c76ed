"""End-to-end tests: the real Pulumi engine against a real Kubernetes API server (toolchain/)."""
