"""What machine the figures are for: CPU model, caches, memory, read from Linux's /proc and /sys.

Each function returns None (never a guess or a zero) when the file it reads is missing, and the
caller leaves the figure out of the target; `describe` is the one-line text used in sources.
"""

from __future__ import annotations

import os
import platform
from typing import Optional

__all__ = ["cpu_model", "cache_bytes", "memory_bytes", "clock_mhz", "describe"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def clock_mhz() -> Optional[float]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def _size(text: str) -> int:
    text = text.strip()
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


def cache_bytes(per_instance: bool = False) -> dict[int, int]:
    """Total bytes of each data/unified cache level over the machine, e.g. {1: 64 KiB, 2: 2 MiB, 3: 32 MiB}
    on 2 cores with private L1/L2 and a shared L3 (per-instance size x number of instances); with
    `per_instance`, the size of one instance (one core's private L2: 1 MiB there)."""
    base = "/sys/devices/system/cpu"
    out: dict[int, int] = {}
    seen: set[tuple[int, str]] = set()
    try:
        cpus = sorted(d for d in os.listdir(base) if d.startswith("cpu") and d[3:].isdigit())
    except OSError:
        return out
    for cpu in cpus:
        cache_dir = os.path.join(base, cpu, "cache")
        if not os.path.isdir(cache_dir):
            continue
        for idx in sorted(os.listdir(cache_dir)):
            d = os.path.join(cache_dir, idx)
            try:
                read = {k: open(os.path.join(d, k), encoding="utf-8").read().strip()
                        for k in ("level", "type", "size", "shared_cpu_list")}
            except OSError:
                continue
            if read["type"] == "Instruction" or (int(read["level"]), read["shared_cpu_list"]) in seen:
                continue
            seen.add((int(read["level"]), read["shared_cpu_list"]))
            level, size = int(read["level"]), _size(read["size"])
            out[level] = max(out.get(level, 0), size) if per_instance else out.get(level, 0) + size
    return out


def memory_bytes() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def describe() -> str:
    return f"{cpu_model()} ({os.cpu_count()} logical CPUs, {platform.machine()})"


def machine_name(suffix: str) -> str:
    """A target name for what `graphperf calibrate` measured here: this machine's host name, lower case,
    with `suffix` ("cpu", or the GPU's name), e.g. "build-07-cpu" -- never the bundled "host", which is
    the graphperf developers' recorded machine."""
    host = "".join(c if c.isalnum() else "-" for c in platform.node().lower()).strip("-") or "this-machine"
    tail = "".join(c if c.isalnum() else "-" for c in suffix.lower()).strip("-")
    return f"{host}-{tail}" if tail else host
