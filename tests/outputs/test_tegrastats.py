"""The Jetson footer: ``tegrastats`` lines as Jetsons print them (lines published from devices; none was
captured here, as no Jetson is at hand), parsed; the reader runs a real subprocess
(a stand-in script that prints such lines) and starts nothing where the binary is missing; the overlay
draws the line."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.core.feature_spec import LABELS
from realtime.outputs.overlay import OverlayState, Readout, render
from realtime.outputs.tegrastats import TegraStats, TegraStatsReader, footer, parse_line

# Orin Nano 8 GB, JetPack 6, as a user (no EMC_FREQ, GR3D_FREQ without its clock)
ORIN_NANO_USER = ("07-29-2026 18:00:27 RAM 2272/7620MB (lfb 4x4MB) SWAP 221/3810MB (cached 0MB) "
                  "CPU [0%@729,0%@1036,0%@1036,0%@1036,0%@729,0%@729] GR3D_FREQ 0% cpu@54.937C soc2@55.562C "
                  "soc0@56.156C gpu@55.468C tj@56.656C soc1@56.656C VDD_IN 4673mW/4673mW VDD_CPU_GPU_CV 527mW/527mW "
                  "VDD_SOC 1339mW/1339mW")
# Orin Nano, JetPack 6, as root (EMC_FREQ, GR3D_FREQ p%@[f], the engines that are off)
ORIN_NANO_ROOT = ("09-21-2026 16:47:06 RAM 1954/7620MB (lfb 4x4MB) SWAP 0/3810MB (cached 0MB) "
                  "CPU [3%@883,9%@883,1%@883,0%@883,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 26%@[305] "
                  "NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@48.062C soc2@47.343C "
                  "soc0@48.218C gpu@48.156C tj@48.218C soc1@48C VDD_IN 4523mW/4523mW "
                  "VDD_CPU_GPU_CV 524mW/524mW VDD_SOC 1373mW/1373mW")
# AGX Orin 64 GB, JetPack 6: two GPCs, no input rail (the rails add up), NC channels
AGX_ORIN = ("04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) "
            "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,12%@729] "
            "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C "
            "SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C "
            "VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW "
            "VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW")
# AGX Orin, JetPack 5 layout, with two cores off
AGX_ORIN_CORES_OFF = ("RAM 4096/30536MB (lfb 200x4MB) SWAP 0/15268MB (cached 0MB) CPU [10%@2201,5%@2201,off,off] "
                      "GR3D_FREQ 0% cpu@50C soc0@49C VDD_GPU_SOC 3200mW/3210mW VDD_CPU_CV 1600mW/1610mW "
                      "VIN_SYS_5V0 5000mW/5010mW VDDQ_VDD2_1V8AO 400mW/400mW")
# JetPack 4 / 5 layout: rails without units, GR3D_FREQ with its clock
XAVIER = ("RAM 5123/31906MB (lfb 7510x4MB) SWAP 0/15953MB (cached 0MB) CPU [13%@2265,5%@2265,7%@2265,7%@2265] "
          "EMC_FREQ 0%@2133 GR3D_FREQ 0%@1300 VIC_FREQ 115 APE 25 CPU@52.5C tj@52.5C "
          "VDD_IN 8039/8039 VDD_CPU_GPU_CV 3231/3231 VDD_SOC 1623/1623")


def test_orin_nano_as_a_user():
    s = parse_line(ORIN_NANO_USER)
    assert s == TegraStats(gpu_pct=0.0, cpu_pct=0.0, power_w=4.673, power_rail="VDD_IN",
                           ram_used_mb=2272, ram_total_mb=7620)
    assert footer(s) == "Jetson GPU 0% | CPU 0% | 4.7 W (VDD_IN) | RAM 2.3/7.6 GB"


def test_orin_nano_as_root():
    s = parse_line(ORIN_NANO_ROOT)
    assert s.gpu_pct == 26.0
    assert s.cpu_pct == pytest.approx(13 / 6)
    assert (s.power_w, s.power_rail) == (4.523, "VDD_IN")  # the present draw, not the average
    assert (s.ram_used_mb, s.ram_total_mb) == (1954, 7620)
    assert footer(s) == "Jetson GPU 26% | CPU 2% | 4.5 W (VDD_IN) | RAM 2.0/7.6 GB"


def test_agx_orin_sums_its_rails():
    s = parse_line(AGX_ORIN)
    assert s.gpu_pct == 0.0 and s.cpu_pct == pytest.approx(1.0)
    assert s.power_rail == "rails"
    assert s.power_w == pytest.approx((2340 + 390 + 4025 + 301) / 1000)  # NC channels and RAM/SWAP are no rails


def test_cores_that_are_off_are_left_out_of_the_mean():
    s = parse_line(AGX_ORIN_CORES_OFF)
    assert s.cpu_pct == 7.5
    assert s.power_w == pytest.approx(10.2) and s.power_rail == "rails"


def test_rails_without_units_and_gpu_with_its_clock():
    s = parse_line(XAVIER)
    assert s.gpu_pct == 0.0 and s.cpu_pct == 8.0
    assert (s.power_w, s.power_rail) == (8.039, "VDD_IN")


def test_a_line_without_figures_is_none():
    assert parse_line("") is None
    assert parse_line("tegrastats: permission denied\n") is None


def _stand_in(tmp_path: Path, lines: list[str]) -> Path:
    """A ``tegrastats`` on a PATH of its own that prints ``lines`` every 0.1 s and records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "tegrastats"
    body = "\n".join(f"  echo '{line}'; sleep 0.1" for line in lines)
    script.write_text(f"#!/usr/bin/env bash\necho \"$@\" > {tmp_path / 'args'}\nwhile true; do\n{body}\ndone\n")
    script.chmod(0o755)
    return bin_dir


def test_the_reader_runs_tegrastats_and_keeps_the_newest_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_stand_in(tmp_path, [ORIN_NANO_ROOT])}{os.pathsep}{os.environ['PATH']}")
    reader = TegraStatsReader.start_if_present()
    assert reader is not None
    try:
        deadline = time.monotonic() + 5
        while reader.latest is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.latest == parse_line(ORIN_NANO_ROOT)
        assert reader.footer().startswith("Jetson GPU 26% | CPU 2% | 4.5 W (VDD_IN)")
        assert (tmp_path / "args").read_text().split() == ["--interval", "1000"]
    finally:
        reader.stop()
    assert reader._proc.poll() is not None  # the subprocess has ended
    assert not reader._thread.is_alive()


def test_figures_go_stale_when_tegrastats_stops_printing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_stand_in(tmp_path, [ORIN_NANO_USER])}{os.pathsep}{os.environ['PATH']}")
    reader = TegraStatsReader.start_if_present(interval_ms=100)
    assert reader is not None
    try:
        deadline = time.monotonic() + 5
        while reader.latest is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.latest is not None
    finally:
        reader.stop()
    time.sleep(0.4)  # more than three intervals without a line
    assert reader.latest is None and reader.footer() == ""


def test_without_the_binary_nothing_starts(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    def no_process(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert TegraStatsReader.start_if_present() is None


def test_the_overlay_draws_the_line_only_when_given():
    frame = np.full((480, 640, 3), 128, np.uint8)
    plain = render(frame, OverlayState(LABELS, readout=Readout(30.0, 4.0, 0.2, 29.0)))
    jetson = render(frame, OverlayState(LABELS, readout=Readout(30.0, 4.0, 0.2, 29.0,
                                                                footer(parse_line(ORIN_NANO_ROOT)))))
    band = slice(480 - 62, 480 - 44 + 4)  # the device line's band, above the words
    assert not np.array_equal(plain[band], jetson[band])
    np.testing.assert_array_equal(plain[:400], jetson[:400])  # nothing else moves
    np.testing.assert_array_equal(plain[480 - 20:], jetson[480 - 20:])  # the readout line is where it was
