"""Everything is configured in pyproject.toml; this file adds one build step: the operator-editable
templates/ folder (mails and pages, at the top level so operators find it) is copied into the built
package as mailflow/templates/, so an installed wheel renders its mails and pages from any folder
(mailflow.paths.templates_dir)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildPyWithTemplates(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads the checkout's templates/ itself
            self.copy_tree(str(TEMPLATES), str(Path(self.build_lib) / "mailflow" / "templates"))


setup(cmdclass={"build_py": BuildPyWithTemplates})
