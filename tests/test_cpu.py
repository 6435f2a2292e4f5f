"""What the processor offers."""

from digits import cpu


def test_bfloat16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(cpu.platform, "system", lambda: "Linux")
    real_open = open

    def fake_open(path, *args, **kwargs):
        return real_open(cpuinfo if path == "/proc/cpuinfo" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    cpuinfo.write_text("flags\t: fpu sse2 avx2 avx512f\n")
    assert cpu.has_bfloat16() is False
    cpuinfo.write_text("flags\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu.has_bfloat16() is True
    cpuinfo.write_text("flags\t: fpu sse2 amx_bf16 amx_tile\n")
    assert cpu.has_bfloat16() is True
    monkeypatch.setattr(cpu.platform, "system", lambda: "Darwin")
    assert cpu.has_bfloat16() is False


def test_usable_cores_is_at_least_one():
    assert cpu.usable_cores() >= 1
