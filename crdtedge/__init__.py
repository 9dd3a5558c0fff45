"""crdtedge: offline-first replicated state for edge nodes, on Yjs-compatible CRDTs."""

__version__ = "0.1.0"
