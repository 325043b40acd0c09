"""Package layout for setuptools (metadata lives in pyproject.toml): the `iseg` packages plus the repository's
`weights/` and `data_configs/` shipped inside the wheel as `iseg/_shipped/` (found by `iseg.resources`)."""

from setuptools import find_packages, setup

SHIPPED = {"iseg._shipped.weights": "weights", "iseg._shipped.data_configs": "data_configs"}

setup(
    packages=find_packages(include=["iseg", "iseg.*"]) + list(SHIPPED),
    package_dir=SHIPPED,
    package_data={
        "iseg": ["configs/**/*.yaml", "reference/*.csv"],
        "iseg._shipped.weights": ["*.pt", "manifest.json", "README.md"],
        "iseg._shipped.data_configs": ["*.yaml"],
    },
)
