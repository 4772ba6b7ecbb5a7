"""The metric validity suite (`physground validate-metrics`): controlled corruptions of the
truth (`corruptions`) scored like models (`suite`), a table and a heat map."""

from physground.benchmarks.validity.corruptions import CORRUPTIONS, Corruption
from physground.benchmarks.validity.suite import ValidityResult, run_validity

__all__ = ["CORRUPTIONS", "Corruption", "ValidityResult", "run_validity"]
