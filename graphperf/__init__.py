"""graphperf: FLOPs, bytes and projected latency for every node of a captured model graph."""

__version__ = "0.1.0"
