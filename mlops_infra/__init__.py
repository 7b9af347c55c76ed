"""mlops-infra: one provider-neutral spec, a whole MLOps platform on AWS, GCP or Azure."""

__version__ = "0.1.0"
