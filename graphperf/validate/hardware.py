"""Map a measurement record's free-text `hardware` to a bundled target, or say why none fits.

Rules are tried in order; the first whose pattern matches decides. A record maps only when the
bundled target is the same device (SKU, memory, form factor) as the one measured: a multi-device
system, an unstated variant (H100 SXM vs PCIe differ 1.7x in bandwidth) or a device graphperf has
no target for stays unmapped, with the reason.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["HARDWARE_RULES", "map_hardware"]

# (pattern, target or None, reason / note)
HARDWARE_RULES: tuple[tuple[str, Optional[str], str], ...] = (
    (r"^\d+x |\bTP\d", None, "multi-device system; graphperf projects one device"),
    (r"^Host CPUs", None, "host CPUs of a GPU node (CPU model not stated)"),
    (r"sm_90", "h100", "XLA sm_90 table: H100 80GB HBM3 (SXM) per the record"),
    (r"GH200", None, "no GH200 target (its H100 die runs at a different power and memory)"),
    (r"H100 PCIe", "h100-pcie", ""),
    (r"H100.*(SXM|HBM3)", "h100", ""),
    (r"H100", None, "H100 variant not stated (SXM and PCIe differ 1.7x in memory bandwidth)"),
    (r"H200", "h200", ""),
    (r"GB200", "gb200", ""),
    (r"B200", "b200", ""),
    (r"A100 40GB", None, "A100 40GB: the a100 target is the 80GB SXM4 (different bandwidth)"),
    (r"A100 PCIe", None, "no A100 PCIe target"),
    (r"A100.*power-limited", "a100", "power-limited below the SXM4 default"),
    (r"A100 80GB.*form factor not stated", "a100", "form factor not stated; SXM4 assumed (PCIe: ~5% less bandwidth)"),
    (r"A100.*(80GB|SXM)", "a100", ""),
    (r"A100", None, "A100 variant not stated"),
    (r"MI300X", "mi300x", ""),
    (r"MI325X", "mi325x", ""),
    (r"MI355X", "mi355x", ""),
    (r"MI250X \(one GCD\)", None, "one GCD of an MI250X; the mi250x target is the 2-GCD package"),
    (r"MI250X", "mi250x", ""),
    (r"Xeon Platinum 8480", "xeon-8480", ""),
    (r"EPYC 9654", "epyc-9654", ""),
)


def map_hardware(hardware: str) -> tuple[Optional[str], str]:
    """(target name, note) for a mapped record, (None, reason) otherwise."""
    for pattern, target, why in HARDWARE_RULES:
        if re.search(pattern, hardware):
            return target, why
    return None, "no bundled target for this device"
