"""kgrec text package."""
