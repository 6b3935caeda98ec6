"""``lintas spool``: inspect and drain producer spools."""
