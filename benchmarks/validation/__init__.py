"""Validation studies: the ground truth compared with experiments and closed forms.

Each study is a function ``study(quick: bool, out_dir: Path) -> StudyResult`` registered in
`STUDIES` under a short name with tags (``rigid``, ``cloth``, ``fluid``, ``slow`` ...). A
study simulates with physground's own scenarios, compares with a published experiment or a
closed form, writes its figure(s) into ``out_dir`` and states its tolerance and whether it
passed. ``physground validate-physics`` runs them and writes the validation page.
"""

from physground.benchmarks.validation.base import STUDIES, StudyResult

__all__ = ["STUDIES", "StudyResult"]
