"""The audit record of a deployment, rebuilt from Temporal's event history (issue 7).

``orchestrator.audit.history`` reads a run's history into an ``AuditRecord`` (``orchestrator.audit.record``);
``orchestrator.audit.store`` writes it as one JSON file and as rows of ``audit.db`` (SQLite);
``orchestrator.audit.search_attributes`` names the search attributes every deployment carries. See docs/AUDIT.md.

Kept import-light on purpose: the workflow imports ``search_attributes`` from here.
"""
