"""``lintas gateway``: the HTTP ingest gateway."""
