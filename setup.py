"""remoteio: remote control of Raspberry Pi GPIO pins over the network.

The metadata lives in pyproject.toml. This file adds one step to the build:
the documentation (README.md, docs/, examples/, install.sh) is copied into
the package as ``remoteio/_docs``, so that ``remoteio docs`` has it wherever
the wheel is installed (the project has no web address to point at).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DOCS = ["README.md", "install.sh", "docs/*.md", "examples/*.py", "examples/*.ipynb"]


class build_py_with_docs(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "remoteio" / "_docs"
        for pattern in DOCS:
            for source in sorted(HERE.glob(pattern)):
                dest = target / source.relative_to(HERE)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)


setup(cmdclass={"build_py": build_py_with_docs})
