"""Reports built from slamon's records: the policy review and the customer's monthly report.

The comparison and the report's figures are plain data (`sla.review`, `agents.reports.monthly`);
the modules here turn them into tables, JSON, CSV and printable HTML (Jinja2 templates in
`templates/`, autoescaped, with a print stylesheet).
"""
