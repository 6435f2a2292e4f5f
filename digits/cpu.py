"""What the machine is and offers: its processor's model name, usable cores, bfloat16 instructions
and memory, and the description of it that run records keep."""

import os
import platform
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def has_bfloat16() -> bool:
    """True where the CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16).

    Only Linux says so cheaply (/proc/cpuinfo); elsewhere we answer False, the safe choice: without
    the instructions, bfloat16 arithmetic would be emulated and slower than float32.
    """
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_model() -> str:
    """The processor's model name, e.g. "Intel(R) Xeon(R) Processor" (Linux), else its kind."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    """The machine's memory in GiB (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict:
    """Cores, CPU model and RAM of this machine, as run records keep them."""
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "bfloat16_instructions": has_bfloat16(),
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "cores_usable": usable_cores(),
    }
