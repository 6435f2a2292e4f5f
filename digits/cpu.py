"""What the processor is and offers: its model name, usable cores, and bfloat16 instructions."""

import os
import platform


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
