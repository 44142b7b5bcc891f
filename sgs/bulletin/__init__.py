"""`sgs report`'s machinery around the pure figures of `sgs.domain.bulletin` (D8): `counts` reads the worker's
aggregates store, `render` writes the CSV and the HTML page (`templates/bulletin.html`)."""
