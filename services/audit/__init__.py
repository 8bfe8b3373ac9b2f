"""The audit record of a deployment, rebuilt from Temporal's event history.

``services.audit.history`` reads a run's history into an ``AuditRecord`` (``services.audit.record``);
``services.audit.store`` writes it as one JSON file and as rows of ``audit.db`` (SQLite);
``contract.search_attributes`` names the search attributes every deployment carries. See docs/AUDIT.md.

Kept import-light on purpose: the workflow imports ``search_attributes`` from here.
"""
