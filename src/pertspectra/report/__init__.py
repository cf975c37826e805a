"""The report: one self-contained HTML file a scientist can read and send.

- :func:`build_report`: ``DIR/report.html`` from whatever stored results ``DIR`` holds
  (``pertspectra report DIR``; ``pertspectra run`` ends with it);
- :func:`collect`: the stored results of a folder (:class:`Results`), read without
  computing anything;
- :func:`scorecard_verdict`, :func:`program_verdict`, :func:`similarity_verdict`,
  :func:`warnings_of`: the plain-language sentences the report opens with.
"""

from ._collect import MANIFEST, REPORT, STAGES, Results, collect
from ._html import build_report
from ._verdict import program_verdict, scorecard_verdict, similarity_verdict, warnings_of

__all__ = [
    "MANIFEST",
    "REPORT",
    "STAGES",
    "Results",
    "build_report",
    "collect",
    "program_verdict",
    "scorecard_verdict",
    "similarity_verdict",
    "warnings_of",
]
