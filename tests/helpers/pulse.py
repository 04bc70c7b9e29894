"""Test sound without a sound card: a private PulseAudio server and espeak-ng speech.

The server has one null sink whose monitor is the default source, so whatever ``play`` plays
comes back, in real time, through PortAudio's ALSA ``pulse`` (or ``default``) input device, as if
spoken into a microphone. It runs as a child process with its own socket and state in a
temporary directory, so several test runs on one machine do not meet, and it is stopped at
teardown. Needs the apt packages pulseaudio (server, pactl, paplay), libasound2-plugins (the ALSA
``pulse`` device) and libportaudio2.

Use the ``pulse_server`` fixture (``conftest.py`` offers it to every test) or ``PulseServer`` directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SINK = "dmdtest"
_START_TIMEOUT_S = 10.0


def speak(text: str, path: Path, voice: str = "en") -> Path:
    """Write ``text`` spoken by espeak-ng to the wav ``path`` (22.05 kHz mono); skip without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


class PulseServer:
    """A PulseAudio daemon with a null sink ``SINK`` whose monitor is the default source.

    While it runs, this process's environment points libpulse (and so the ALSA ``pulse`` device)
    at it, and PortAudio is re-initialised to see that device; ``stop`` undoes both.
    """

    def __init__(self) -> None:
        for tool in ("pulseaudio", "pactl", "paplay", "parec"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (apt-get install pulseaudio)")
        self.dir = Path(tempfile.mkdtemp(prefix="dmd-pulse-"))  # short: socket paths are limited
        self.env = {"PULSE_SERVER": f"unix:{self.dir}/native", "PULSE_RUNTIME_PATH": str(self.dir),
                    "PULSE_STATE_PATH": str(self.dir), "PULSE_COOKIE": str(self.dir / "cookie")}
        self._saved_env = {k: os.environ.get(k) for k in self.env}
        self._log = open(self.dir / "pulseaudio.log", "wb")
        self.process = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--system=false", "--exit-idle-time=-1",
             "--disallow-exit", "--use-pid-file=no", "--disable-shm=yes", "--log-target=stderr",
             "-L", f"module-native-protocol-unix socket={self.dir}/native auth-anonymous=1",
             "-L", f"module-null-sink sink_name={SINK}"],
            env={**os.environ, **self.env, "HOME": str(self.dir)}, stdout=self._log, stderr=self._log)
        self._reader: subprocess.Popen | None = None
        try:
            self._wait_ready()
            self.pactl("set-default-sink", SINK)
            self.pactl("set-default-source", f"{SINK}.monitor")
            self._keep_rendering()
        except Exception:
            self.stop()
            raise
        os.environ.update(self.env)
        _rescan_portaudio()

    @property
    def client_env(self) -> dict[str, str]:
        """The environment of a PulseAudio client (pactl, paplay, the app under test) of this server."""
        return {**os.environ, **self.env}

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with {self.process.returncode}: {self.log_tail()}")
            if subprocess.run(["pactl", "info"], env=self.client_env, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"pulseaudio did not answer within {_START_TIMEOUT_S} s: {self.log_tail()}")

    def _keep_rendering(self) -> None:
        """An idle null sink renders in 2 s blocks, so a capture opened now would get its first
        sound up to 2 s late. A permanent low-latency reader of the monitor (8 kHz u8 into a small
        file) makes it render every 20 ms; wait until it does."""
        sink_output = self.dir / "monitor.raw"
        self._reader = subprocess.Popen(
            ["parec", "--latency-msec=20", "--rate=8000", "--channels=1", "--format=u8", "--raw",
             "-d", f"{SINK}.monitor", str(sink_output)], env=self.client_env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not (sink_output.exists() and sink_output.stat().st_size > 0):
            if time.monotonic() > deadline or self._reader.poll() is not None:
                raise RuntimeError(f"the null sink's monitor gave no sound within {_START_TIMEOUT_S} s")
            time.sleep(0.02)

    def log_tail(self) -> str:
        lines = (self.dir / "pulseaudio.log").read_text(errors="replace").splitlines()
        return " | ".join(line for line in lines if line.startswith("E:")) or " | ".join(lines[-3:])

    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.client_env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, wav: Path) -> subprocess.Popen:
        """Start playing ``wav`` into the null sink, in real time; wait on the returned process."""
        return subprocess.Popen(["paplay", "--device", SINK, str(wav)], env=self.client_env, stderr=subprocess.PIPE)

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.kill()
            self._reader.wait()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _rescan_portaudio()
        shutil.rmtree(self.dir, ignore_errors=True)


def _rescan_portaudio() -> None:
    """PortAudio lists devices once, at initialisation: re-initialise it to see the server come or go."""
    try:
        import sounddevice
    except OSError:
        return
    sounddevice._terminate()
    sounddevice._initialize()


@pytest.fixture(scope="module")
def pulse_server():
    """A running PulseServer for the module's tests; skips when PulseAudio or PortAudio is missing."""
    try:
        import sounddevice
    except OSError:
        pytest.skip("the PortAudio library is missing (apt-get install libportaudio2)")
    try:
        server = PulseServer()
    except RuntimeError as e:
        pytest.skip(f"no PulseAudio server for the test: {e}")
    try:
        names = [d["name"] for d in sounddevice.query_devices() if d["max_input_channels"] > 0]
        if not {"pulse", "default"} & set(names):
            pytest.skip(f"PortAudio sees no 'pulse' input (inputs: {names}); install libasound2-plugins")
        yield server
    finally:
        server.stop()
