"""kgrec flows package."""

# gnn's import puts torch's large CPU tensors on transparent huge pages (see gnn/__init__.py);
# flows load torch through text encoders before they reach gnn, so ask for it up front.
import gnn  # noqa: F401
