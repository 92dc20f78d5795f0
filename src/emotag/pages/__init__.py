"""Self-contained HTML pages: the review page, the audit page and the audit report."""
