"""Package layout for setuptools (metadata lives in pyproject.toml): the `iseg` packages, the data folders inside
it (`iseg/configs/*`, `iseg/reference`: declared as packages of data, not left to discovery), plus the
repository's `weights/` and `data_configs/` shipped inside the wheel as `iseg/_shipped/` (found by
`iseg.resources`)."""

from setuptools import find_namespace_packages, find_packages, setup

SHIPPED = {"iseg._shipped.weights": "weights", "iseg._shipped.data_configs": "data_configs"}
DATA = find_namespace_packages(include=["iseg.configs", "iseg.configs.*", "iseg.reference"])

setup(
    packages=find_packages(include=["iseg", "iseg.*"]) + DATA + list(SHIPPED),
    package_dir=SHIPPED,
    package_data={
        **{package: ["*.yaml", "*.csv"] for package in DATA},
        "iseg._shipped.weights": ["*.pt", "manifest.json", "README.md"],
        "iseg._shipped.data_configs": ["*.yaml"],
    },
)
