"""What a person reads: the page shell (``shell``: stylesheet, skeleton, CSP) shared by the run report, the
bias card and the gallery; the chart data and the one chart module the report and the gallery draw with
(``charts``, ``assets/``); the run report (``html``, ``sections``, ``blocks``) and its ``summary.json``; the
bias card; and exports of a run's table (CSV, Parquet, JSON)."""
