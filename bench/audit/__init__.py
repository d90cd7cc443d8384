"""Duplicate audit: which test images repeat a training image, and which images repeat within a split.

load.py decodes and hashes every image once; match.py finds each image's nearest neighbour over
four orientations; audit.py turns neighbours into classified matches; report.py and sheet.py
write them out.
"""

from bench.audit.audit import AuditResult, run_audit

__all__ = ["AuditResult", "run_audit"]
