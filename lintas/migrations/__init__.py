"""Numbered SQL migrations of Lintas's own tables (``NNNN_name.sql``), applied in order."""
