"""Anonymised statistics for the steering group, computed from plain columns only.

* ``periods``: whole months, quarters and years (nothing else can be asked for);
* ``registry``: each programme's description of its measures, from the programme
  registry (``casework.programmes``; e.g. ``workflows/sig_statistics.py``);
* ``summary``: counts by month, aggregated in the database and kept in a
  summary table for months that have ended;
* ``disclosure``: the one place that decides what may be shown (primary and
  secondary suppression, medians, filters);
* ``tables``: a period's publication (tables, trends) assembled from the above;
* ``charts``, ``report``: SVG charts and the PDF of the follow-up report.

Nothing here decrypts: the package imports neither ``casework.services``,
``casework.selectors`` nor ``casework.crypto`` (a test parses it to make sure).
"""
