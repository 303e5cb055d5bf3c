"""What a person reads: the HTML shell shared by the run report and the bias card, the run report and its
``summary.json``, the bias card, and exports of a run's table (CSV, Parquet, JSON)."""
