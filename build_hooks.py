"""Build-time hook named in pyproject.toml; not part of the installed package.

setuptools puts every .py file of a package into the wheel. The latency benchmarks live beside
the code they time (`pytest bench`), but an installed brainbench has no use for them, and a
conftest.py in site-packages would be picked up by anyone's pytest run there.
"""

from setuptools.command.build_py import build_py

TEST_MODULE_PREFIX = "test_"
CONFTEST = "conftest"


def is_test_module(module: str) -> bool:
    return module.startswith(TEST_MODULE_PREFIX) or module == CONFTEST


class BuildPyWithoutTests(build_py):
    def find_package_modules(self, package, package_dir):
        return [(pkg, module, path) for pkg, module, path in super().find_package_modules(package, package_dir)
                if not is_test_module(module)]
