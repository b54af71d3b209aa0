"""kgrec flows package."""
