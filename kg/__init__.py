"""kgrec kg package."""
