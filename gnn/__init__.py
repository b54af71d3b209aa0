"""kgrec gnn package."""

import os

# Large CPU tensors on transparent huge pages. With 4 KB pages, each big temporary of a
# training step is faulted in page by page: PyG's LightGCN on MovieLens spent 47 s in the
# kernel against 25 s of user time, and went from 13.6 to 6.8 s per epoch with this. torch
# reads the variable at its first large allocation; set THP_MEM_ALLOC_ENABLE=0 to opt out.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
