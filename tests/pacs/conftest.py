"""A real PACS for the PACS tests: Debian's Orthanc with the DICOMweb plugin, on loopback.

`orthanc` (session-scoped) starts one Orthanc on free ports with a temporary config and
storage folder (authentication on), uploads the sample studies through Orthanc's REST API,
and stops it at the end, also when a test fails. `disposable_orthanc` is a second, empty
server a test may stop and restart (the outage test). Without the `Orthanc` binary and the
plugin the PACS tests skip with the reason (.ci/run installs both on CI).
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rrg_desk.paths import samples_dir

ORTHANC_USER = "radiology"
ORTHANC_PASSWORD = "s3cret-Orthanc-pw"  # the tests grep logs and settings files for this
PLUGIN_CANDIDATES = (Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
                     Path("/usr/lib/orthanc/libOrthancDicomWeb.so.1.7"))
START_TIMEOUT_S = 30.0


def _orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc",) if Path(p).exists()), None)


def _dicomweb_plugin() -> Path | None:
    found = next((p for p in PLUGIN_CANDIDATES if p.exists()), None)
    if found:
        return found
    plugins = sorted(Path("/usr/lib/orthanc").glob("libOrthancDicomWeb.so*")) if Path("/usr/lib/orthanc").exists() else []
    return plugins[0] if plugins else None


def _die_with_parent() -> None:
    """In the child before exec: Linux kills Orthanc when pytest dies (even by SIGKILL or a
    crash), so no server outlives a broken test run."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux/glibc: the fixture's finally still stops the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OrthancServer:
    """One Orthanc process with its own config, storage and ports; start/stop/restart."""

    def __init__(self, folder: Path, binary: str, plugin: Path) -> None:
        self.folder = folder
        self.binary = binary
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = folder / "orthanc.log"
        self.config_path = folder / "orthanc.json"
        config = {
            "Name": "RRG-TEST-PACS",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "RRGTEST",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {ORTHANC_USER: ORTHANC_PASSWORD},
            "Plugins": [str(plugin)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StorageCompression": False,
            "HttpThreadsCount": 8,
            "ConcurrentJobs": 1,
            "SaveJobs": False,
        }
        self.config_path.write_text(json.dumps(config, indent=2))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return self.url + "/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (ORTHANC_USER, ORTHANC_PASSWORD)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([self.binary, str(self.config_path)], cwd=self.folder,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                # the plugin registers after the core; wait until QIDO answers
                if requests.get(self.dicomweb_url + "/studies", auth=self.auth, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self, crash: bool = False) -> None:
        """Shut down (SIGTERM: Orthanc takes ~3 s) or, with `crash`, SIGKILL at once."""
        if self.process is None:
            return
        if self.process.poll() is None:
            (self.process.kill if crash else self.process.terminate)()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def upload(self, path: Path) -> dict:
        """POST one DICOM file to Orthanc's REST API (how a modality's images would arrive)."""
        response = requests.post(self.url + "/instances", data=path.read_bytes(), auth=self.auth, timeout=30,
                                 headers={"Content-Type": "application/dicom"})
        response.raise_for_status()
        return response.json()

    def rest(self, path: str):
        response = requests.get(self.url + path, auth=self.auth, timeout=30)
        response.raise_for_status()
        return response.json()


def _require_orthanc() -> tuple[str, Path]:
    binary, plugin = _orthanc_binary(), _dicomweb_plugin()
    if binary is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run does this)")
    if plugin is None:
        pytest.skip("the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)")
    return binary, plugin


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator[OrthancServer]:
    """A running Orthanc holding the sample studies (shared by the whole PACS session)."""
    binary, plugin = _require_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), binary, plugin)
    try:
        server.start()
        for path in sorted(samples_dir().glob("*/*.dcm")):
            server.upload(path)
        yield server
    finally:
        server.stop()


@pytest.fixture
def disposable_orthanc(tmp_path_factory) -> Iterator[OrthancServer]:
    """An empty Orthanc of its own, for tests that stop and restart the server."""
    binary, plugin = _require_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc-disposable"), binary, plugin)
    try:
        server.start()
        yield server
    finally:
        server.stop(crash=True)  # its storage is thrown away: no need to wait for a clean exit
