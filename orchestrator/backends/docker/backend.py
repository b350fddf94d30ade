"""Workers as local Docker containers, one per worker, through the Docker SDK."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from orchestrator.apis.units import format_bytes
from orchestrator.backends.base import Backend, WorkerLaunch, WorkerProbe
from orchestrator.backends.docker.container_logs import LogFollower
from orchestrator.backends.gpus import devices_for, host_gpus
from orchestrator.backends.images.api_image import APP_DIR, ImageBuilder
from orchestrator.backends.images.base_image import WORKER_UID, default_tag
from orchestrator.errors import BackendError, InvalidRequest, WorkerStartError
from orchestrator.settings import Settings

LABEL = "cortex-tui"
#: The least memory the engine gives a container ("Minimum memory limit allowed is 6MB").
MIN_MEM_BYTES = 6 * 2**20
#: The least CPU: the engine turns nano_cpus into a CFS quota per 100 ms period, and the
#: kernel refuses a quota under 1 ms (runc: "cpu.cfs_quota_us: invalid argument").
MIN_NANO_CPUS = 10_000_000
_NO_GPU_RUNTIME = "could not select device driver"
_INSTALL_TOOLKIT = (
    "install the NVIDIA Container Toolkit on the Docker host (apt-get install"
    " nvidia-container-toolkit; nvidia-ctk runtime configure --runtime=docker; restart"
    " dockerd: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/), or set"
    " compute.gpu: 0 to run on CPU"
)


class DockerBackend(Backend):
    """Each worker is a container of the API's image, on the host network.

    Containers carry labels (home, api, job, worker), so a restarted orchestrator finds
    them again from the container id in each worker's handle; their output is copied into
    the worker's log file by one thread per container. An ended container is removed once
    its exit is read, unless ``docker_keep_containers`` is set.
    """

    name = "docker"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        try:
            import docker
        except ImportError as e:  # pragma: no cover - docker is a dependency
            raise BackendError("the docker backend needs the docker package") from e
        self._docker = docker
        # Ping with a fixed API version first: a client that cannot negotiate one leaks.
        probe = docker.from_env(version="1.24")
        try:
            probe.ping()
        except docker.errors.DockerException as e:
            raise BackendError(
                f"the docker backend cannot reach the Docker engine ({e}): is it running,"
                " and may this user use it? `docker info` should answer"
            ) from e
        finally:
            probe.close()
        self._client = docker.from_env(max_pool_size=64)
        self._api = self._client.api
        self._images = ImageBuilder(self._client, settings.builds_dir)
        self._image_of: dict[str, str] = {}
        self._followers: dict[str, LogFollower] = {}
        self._stopping: set[str] = set()
        self._lock = threading.Lock()
        self._gpus = host_gpus()
        self._home = str(settings.home.resolve())
        self._engine_cpus: int | None = None

    # --- images ------------------------------------------------------------------

    def base_image(self, api_spec: dict[str, Any]) -> str:
        """Return the base image of an API: predictor.image, the server's, or the offline one."""
        image = api_spec.get("predictor", {}).get("image")
        return str(image or self.settings.docker_base_image or default_tag())

    def prepare_api(self, api_spec: dict[str, Any], project_dir: Path) -> dict[str, Any]:
        """Build the API's image unless the engine already has it; say what was done."""
        build = self._images.ensure(api_spec["name"], project_dir, self.base_image(api_spec))
        self._image_of[str(project_dir)] = build.tag
        return {
            "image": build.tag,
            "image_built": build.built,
            "image_build_s": round(build.seconds, 2),
            "image_build_log": str(build.log_path) if build.log_path else None,
        }

    def active_builds(self) -> list[dict[str, Any]]:
        """Return the image builds in progress and their latest output line."""
        return [{"image": tag, "step": line} for tag, line in dict(self._images.progress).items()]

    def _image_for(self, launch: WorkerLaunch) -> str:
        tag = self._image_of.get(str(launch.project_dir))
        if tag is None:  # after a restart, or the image was removed: find or rebuild it
            tag = self.prepare_api(launch.api_spec, launch.project_dir)["image"]
        return tag

    def unused_images(self, in_use: list[tuple[str, dict[str, Any], Path]]) -> list[dict[str, Any]]:
        """Return the API images this home built (it has their build logs) that no version
        in ``in_use`` runs from. Other homes' and other tools' images are never listed, nor
        any image of an API whose in-use version's image cannot be named.

        Each one's ``bytes`` are those removing it frees: the layers no other image shares
        (an image's other tags count nothing; all of them, once).
        """
        keep: set[str] = set()
        unsure: set[str] = set()
        for api_name, spec, snapshot in in_use:
            tag = self._image_of.get(str(snapshot))
            if tag is None and snapshot.is_dir():
                tag = self._images.tag_for(api_name, snapshot, self.base_image(spec))
            if tag is None:
                unsure.add(api_name)
            else:
                keep.add(tag)
        try:
            images = self._client.images.list(filters={"label": f"{LABEL}.image=api"})
        except self._docker.errors.DockerException as e:
            raise BackendError(f"could not list the Docker engine's images: {e}") from e
        unused = []
        for image in images:
            tags = [
                tag
                for tag in image.tags
                if tag not in keep
                and self._images.build_log(tag) is not None
                and tag.rpartition(":")[0].split("/", 1)[-1] not in unsure
            ]
            if tags:
                unused.append((image, tags))
        own = self._own_bytes() if unused else {}
        listed = []
        for image, tags in unused:
            # Untagging frees nothing while another tag holds the image.
            frees = own.get(image.id, int(image.attrs.get("Size") or 0))
            frees = frees if len(tags) == len(image.tags) else 0
            listed += [{"image": tag, "bytes": 0 if i else frees} for i, tag in enumerate(tags)]
        return listed

    def _own_bytes(self) -> dict[str, int]:
        """Return, by image id, the bytes of each image's layers that no other image shares
        (the engine's ``Size - SharedSize``); none where the engine cannot say, so that an
        image's whole size (an upper bound) stands for it."""
        try:
            usage = self._api.df()
        except self._docker.errors.DockerException:
            return {}
        return {
            str(image["Id"]): int(image["Size"]) - int(image["SharedSize"])
            for image in usage.get("Images") or []
            if int(image.get("SharedSize", -1)) >= 0
        }

    def remove_image(self, image: str) -> str | None:
        """Untag (and, with its last tag, remove) an API image and its build log; say why
        not when a container still uses it."""
        try:
            self._client.images.remove(image, noprune=False)
        except self._docker.errors.ImageNotFound:
            pass
        except self._docker.errors.APIError as e:
            return str(e.explanation or e)
        if (log := self._images.build_log(image)) is not None:
            log.unlink(missing_ok=True)
        return None

    # --- workers -----------------------------------------------------------------

    def check_job(self, api_spec: dict[str, Any]) -> None:
        """Refuse a job whose workers ask for more CPUs than the Docker engine has, or for
        less memory or CPU than it can give a container: it would refuse each worker's."""
        compute = api_spec.get("compute", {})
        cpu, mem = compute.get("cpu"), compute.get("mem")
        have = self._cpus()
        if cpu and have is not None and float(cpu) > have:
            raise InvalidRequest(
                f"compute.cpu: each worker of this API asks for {float(cpu):g} CPUs, but the"
                f" Docker engine has only {have}; set compute.cpu to {have} or less (or leave"
                " it out for no limit) and deploy again"
            )
        if cpu and _nano_cpus(cpu) < MIN_NANO_CPUS:
            raise InvalidRequest(
                f"compute.cpu: each worker of this API asks for {float(cpu):g} CPUs, but Docker"
                f" needs at least {MIN_NANO_CPUS / 1e9:g} (a CPU quota of 1 ms per 100 ms);"
                f" set compute.cpu to {MIN_NANO_CPUS / 1e9:g} (10m) or more (or leave it out"
                " for no limit) and deploy again"
            )
        if mem and int(mem) < MIN_MEM_BYTES:
            raise InvalidRequest(
                f"compute.mem: each worker of this API asks for {_quantity(int(mem))}, but"
                f" Docker needs at least {format_bytes(MIN_MEM_BYTES)}; set compute.mem to"
                f" {format_bytes(MIN_MEM_BYTES)} or more (or leave it out for no limit) and"
                " deploy again"
            )

    def _cpus(self) -> int | None:
        """Return the engine's CPU count (read once), or None when it cannot be read."""
        if self._engine_cpus is None:
            try:
                self._engine_cpus = int(self._client.info()["NCPU"])
            except (self._docker.errors.DockerException, KeyError, TypeError, ValueError):
                return None  # the engine answers for itself when a worker starts
        return self._engine_cpus

    def start_worker(self, launch: WorkerLaunch) -> dict[str, Any]:
        """Create and start the worker's container, and follow its output into its log."""
        image = self._image_for(launch)
        options = self._container_options(launch)
        try:
            container = self._client.containers.create(image, **options)
        except self._docker.errors.DockerException as e:
            raise BackendError(f"could not create the worker container from {image}: {e}") from e
        self._start(container, launch)
        self._follow(container.id, launch.log_path)
        return {
            "container_id": container.id,
            "container": options["name"],
            "image": image,
            "log_path": str(launch.log_path),
            "mem_limit": launch.api_spec.get("compute", {}).get("mem"),
            "gpus": _describe_gpus(options.get("device_requests")),
        }

    def _container_options(self, launch: WorkerLaunch) -> dict[str, Any]:
        """Return the container's options: command, labels, hardening, limits and GPUs."""
        compute = launch.api_spec.get("compute", {})
        mem, cpu, gpu = compute.get("mem"), compute.get("cpu"), int(compute.get("gpu") or 0)
        options: dict[str, Any] = {
            "name": f"cortex-tui-{launch.worker_id}",
            "command": [
                *("python3", "-m", "runtime", "--transport", launch.transport),
                *("--worker", launch.worker_id, "--project", APP_DIR),
            ],
            "labels": {
                f"{LABEL}.home": self._home,
                f"{LABEL}.api": launch.api_name,
                f"{LABEL}.job": launch.job_id,
                f"{LABEL}.worker": launch.worker_id,
            },
            "environment": {**launch.env, "PYTHONUNBUFFERED": "1"},
            # Loopback reaches the orchestrator; no port is published.
            "network_mode": "host",
            "user": self._user(),
            "security_opt": ["no-new-privileges:true"],
            "cap_drop": ["ALL"],
            "init": True,  # forwards SIGTERM to the worker and reaps the predictor's children
            "shm_size": self.settings.docker_shm_size,
            "mounts": self._mounts(),
            "detach": True,
        }
        if cpu:
            options["nano_cpus"] = _nano_cpus(cpu)
        if mem:
            options["mem_limit"] = options["memswap_limit"] = int(mem)
        if gpu:
            options["device_requests"] = [self.device_request(launch.slot, gpu)]
        return options

    def _start(self, container: Any, launch: WorkerLaunch) -> None:
        """Start a created container; remove it, and say why, when it cannot start."""
        try:
            container.start()
        except self._docker.errors.APIError as e:
            self._remove(container.id)
            if _NO_GPU_RUNTIME in str(e):
                gpu = launch.api_spec.get("compute", {}).get("gpu")
                raise WorkerStartError(
                    f"worker {launch.worker_id.rsplit('-', 1)[-1]} could not start: the Docker"
                    f" engine has no NVIDIA container runtime, so it cannot give the worker the"
                    f" {gpu} GPU(s) of compute.gpu (docker said: {e.explanation}); to fix it,"
                    f" {_INSTALL_TOOLKIT}"
                ) from e
            raise BackendError(f"could not start the worker container: {e.explanation}") from e

    def device_request(self, slot: int, gpus: int) -> Any:
        """Return the GPU request of worker ``slot``: its own devices when the host has more."""
        types = self._docker.types
        if self._gpus and gpus < len(self._gpus):
            ids = devices_for(slot, gpus, self._gpus)
            return types.DeviceRequest(device_ids=ids, capabilities=[["gpu"]])
        return types.DeviceRequest(count=gpus, capabilities=[["gpu"]])

    def probe_worker(self, handle: dict[str, Any]) -> WorkerProbe:
        """Say whether the container runs; read, report and remove it once it ended."""
        cid = str(handle["container_id"])
        with self._lock:
            follower = self._followers.get(cid)
        if follower is not None and not follower.done.is_set():
            return WorkerProbe(alive=True)  # its output stream ends only when it stops
        try:
            state = self._api.inspect_container(cid)["State"]
        except self._docker.errors.NotFound:
            return WorkerProbe(
                alive=False,
                message=f"worker container {handle.get('container', cid[:12])} disappeared"
                " (removed outside cortex-tui?)",
            )
        except self._docker.errors.DockerException as e:
            raise BackendError(f"could not inspect worker container {cid[:12]}: {e}") from e
        if state.get("Running") or state.get("Status") == "created":
            if follower is None or follower.done.is_set():
                self._follow(cid, Path(handle["log_path"]))  # re-attach after a restart
            return WorkerProbe(alive=True)
        if follower is not None:
            follower.join(5.0)
        else:
            LogFollower(self._api, cid, Path(handle["log_path"])).copy(follow=False)
        probe = self._exit_probe(cid, state, handle.get("mem_limit"))
        with self._lock:
            self._followers.pop(cid, None)
            self._stopping.discard(cid)
        self._remove(cid)
        return probe

    def _exit_probe(self, cid: str, state: dict[str, Any], mem: int | None) -> WorkerProbe:
        """Return what an ended container's state says: an OOM kill, or its exit code.

        The engine's ``OOMKilled`` decides; only an engine that does not report it leaves
        a guess from exit 137 (SIGKILL) under a memory limit, which a ``docker kill`` or a
        host's OOM killer outside the container's limit also gives.
        """
        code = int(state.get("ExitCode") or 0)
        if "OOMKilled" in state:
            oom = bool(state["OOMKilled"])
        else:
            oom = code == 137 and bool(mem) and cid not in self._stopping
        if oom:
            limit = f"{format_bytes(mem)} by compute.mem" if mem else "its memory limit"
            return WorkerProbe(
                alive=False,
                exit_code=-9,
                oom=True,
                message=f"was killed for running out of memory (OOM): its container is limited"
                f" to {limit} (raise compute.mem)",
            )
        if 128 < code < 128 + 65:  # killed by a signal, as the process backend reports it
            code = -(code - 128)
        return WorkerProbe(alive=False, exit_code=code)

    def stop_worker(self, handle: dict[str, Any], grace_s: float) -> None:
        """SIGTERM the container, then SIGKILL it after ``grace_s``; never blocks."""
        cid = str(handle["container_id"])
        with self._lock:
            if cid in self._stopping:
                return
            self._stopping.add(cid)
        try:
            self._api.kill(cid, signal="SIGTERM")
        except self._docker.errors.DockerException:
            return  # already gone or not running: the probe reports it
        threading.Thread(
            target=self._kill_after, args=(cid, grace_s), name=f"stop-{cid[:12]}", daemon=True
        ).start()

    def _kill_after(self, cid: str, grace_s: float) -> None:
        follower = self._followers.get(cid)
        if follower is not None and follower.join(grace_s):
            return
        if follower is None:
            threading.Event().wait(grace_s)
        with contextlib.suppress(self._docker.errors.DockerException):
            self._api.kill(cid, signal="SIGKILL")

    def find_leftovers(self) -> list[dict[str, Any]]:
        """Return handles of this home's containers that still run."""
        found = self._api.containers(filters={"label": f"{LABEL}.home={self._home}"})
        return [
            {
                "backend": self.name,
                "container_id": c["Id"],
                "worker_id": c.get("Labels", {}).get(f"{LABEL}.worker"),
            }
            for c in found
        ]

    def discard_worker(self, handle: dict[str, Any]) -> None:
        """Kill and remove a container the store does not know."""
        try:
            self._api.remove_container(str(handle["container_id"]), force=True)
        except self._docker.errors.DockerException as e:
            raise BackendError(f"could not remove leftover container: {e}") from e

    def close(self) -> None:
        """Let go of the engine; running containers go on and are found again by label."""
        self._client.close()

    # --- helpers -----------------------------------------------------------------

    def _follow(self, cid: str, log_path: Path) -> None:
        with self._lock:
            self._followers[cid] = LogFollower(self._api, cid, log_path).start()

    def _remove(self, cid: str) -> None:
        if self.settings.docker_keep_containers:
            return
        try:
            self._api.remove_container(cid, force=True)
        except self._docker.errors.NotFound:
            pass
        except self._docker.errors.DockerException as e:
            raise BackendError(f"could not remove worker container {cid[:12]}: {e}") from e

    def _user(self) -> str:
        if self.settings.docker_user:
            return self.settings.docker_user
        uid = os.getuid()
        return f"{uid}:{os.getgid()}" if uid != 0 else f"{WORKER_UID}:{WORKER_UID}"

    def _mounts(self) -> list[Any]:
        mounts = []
        for entry in filter(None, (e.strip() for e in self.settings.docker_mounts.split(","))):
            parts = entry.split(":")
            read_only = parts[-1] == "ro"
            if parts[-1] in ("ro", "rw"):
                parts = parts[:-1]
            if not parts or not Path(parts[0]).is_absolute() or len(parts) > 2:
                raise InvalidRequest(
                    f"docker_mounts: {entry!r} is not SRC[:DST][:ro] with absolute paths"
                )
            source = parts[0]
            target = parts[1] if len(parts) == 2 else source
            mounts.append(
                self._docker.types.Mount(target, source, type="bind", read_only=read_only)
            )
        return mounts


def _nano_cpus(cpu: float) -> int:
    """Return compute.cpu as the container's ``nano_cpus``."""
    return int(float(cpu) * 1e9)


def _quantity(n: int) -> str:
    """Return a byte count as compute.mem would say it: ``1Mi``, ``1 byte``, ``500 bytes``."""
    text = format_bytes(n)
    return text if not text.isdigit() else f"{n} byte{'' if n == 1 else 's'}"


def _describe_gpus(requests: list[Any] | None) -> str | None:
    if not requests:
        return None
    request = requests[0]
    return ",".join(request["DeviceIDs"]) if request["DeviceIDs"] else f"count={request['Count']}"
