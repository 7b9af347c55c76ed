"""Package discovery that pyproject.toml cannot express alone.

The top-level templates/ directory ships inside the wheel as the package
mlops_infra.templates, in regular and editable installs alike.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["mlops_infra", "mlops_infra.*"]) + ["mlops_infra.templates"],
    package_dir={"mlops_infra.templates": "templates"},
)
