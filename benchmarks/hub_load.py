"""30 students fetch and submit through the exchange of the local JupyterHub, at once (issue 14).

    sudo .venv/bin/python benchmarks/hub_load.py [--students 30] [--concurrency 10]

Sets up a hub of its own (deploy/hub/, folder /srv/gutcourse-hub-load, accounts gcl-studentNN,
sharing `make hub`'s students' venv), releases ps0 to the exchange as the grader account,
starts every student's server, and then, with at most ``--concurrency`` students at a time,
each student fetches ps0 through their server's Assignments API, saves a notebook of their
own (the released one with a cell naming them and a random nonce) and submits it.
The grader account then collects with `nbgrader collect`, and the script checks that every
submission was collected exactly once, with the bytes the student's server held when it
submitted.  Loopback only.  Prints the time of each phase; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ps0_orientation"
LOAD_ROOT = Path("/srv/gutcourse-hub-load")


def _hubctl():
    spec = importlib.util.spec_from_file_location("hubctl", REPO / "deploy" / "hub" / "hubctl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_user(user: str, cmd: list[str], cwd: str, env: dict) -> subprocess.CompletedProcess:
    return _hubctl().run_as(user, cmd, cwd=cwd, env=env, timeout=600)


def _call(url: str, token: str, method: str = "GET", body: dict | None = None, raw: bool = False):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    if raw:
        return status, payload
    try:
        return status, json.loads(payload) if payload else None
    except json.JSONDecodeError:
        return status, payload.decode("utf-8", "replace")


def start_server(hub, name: str, deadline_s: float = 600) -> str:
    """A token for ``name`` and their running server; returns the token."""
    status, token = hub.api(f"/users/{name}/tokens", "POST", {"note": "hub_load", "expires_in": 7200})
    assert status in (200, 201), (status, token)
    status, body = hub.api(f"/users/{name}/server", "POST", {})
    assert status in (201, 202, 400), (status, body)  # 400: already running
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status, model = hub.api(f"/users/{name}")
        server = (model or {}).get("servers", {}).get("") if status == 200 else None
        if server and server.get("ready"):
            return token["token"]
        time.sleep(1)
    raise RuntimeError(f"{name}'s server was not ready in {deadline_s:.0f} s")


def student_round(hub, name: str, token: str, course: str) -> tuple[str, str]:
    """Fetch, write a notebook of one's own, submit; returns (name, sha256 of what was submitted)."""
    base = f"{hub.url}/user/{name}"
    status, listing = _call(f"{base}/assignments/fetch", token, "POST",
                            {"course_id": course, "assignment_id": ASSIGNMENT})
    assert status == 200, f"{name} fetch: {status} {str(listing)[:300]}"
    path = f"{course}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    status, model = _call(f"{base}/api/contents/{path}?content=1", token)
    assert status == 200, f"{name} reading the fetched notebook: {status}"
    nb = model["content"]
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "id": f"load-{secrets.token_hex(4)}",
                        "source": f"submitted by {name}, nonce {secrets.token_hex(16)}"})
    status, saved = _call(f"{base}/api/contents/{path}", token, "PUT",
                          {"type": "notebook", "format": "json", "content": nb})
    assert status in (200, 201), f"{name} saving: {status} {str(saved)[:300]}"
    status, model = _call(f"{base}/api/contents/{path}?content=1&type=file&format=text", token)
    assert status == 200, f"{name} reading back: {status}"
    digest = hashlib.sha256(model["content"].encode("utf-8")).hexdigest()
    status, result = _call(f"{base}/assignments/submit", token, "POST",
                           {"course_id": course, "assignment_id": ASSIGNMENT})
    assert status == 200 and not (isinstance(result, dict) and result.get("success") is False), \
        f"{name} submit: {status} {str(result)[:300]}"
    return name, digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=10, help="students working at the same time")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("hub_load: run as root (the hub creates Unix users)", file=sys.stderr)
        return 2
    hubctl = _hubctl()
    names = [f"gcl-student{i:02d}" for i in range(1, args.students + 1)]
    t0 = time.monotonic()
    shutil.rmtree(LOAD_ROOT, ignore_errors=True)
    settings = hubctl.setup(root=LOAD_ROOT, student_names=names, instructor="gcl-instructor",
                            venv=hubctl.DEFAULT_ROOT / "venv")
    for name in names:  # every run starts from empty homes
        home = Path(pwd.getpwnam(name).pw_dir)
        for child in home.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    course, course_dir = settings["course_id"], Path(settings["course_dir"])
    venv_bin = str(Path(settings["venv"]) / "bin")
    # As the course service runs: nbgrader's hub settings, and the instructor's gutcourse
    # (the course's nbgrader_config.py names its collect class).
    grader_env = {"PATH": f"{venv_bin}:/usr/bin:/bin",
                  "JUPYTER_CONFIG_PATH": str(LOAD_ROOT / "etc" / "jupyter-grader"),
                  "PYTHONPATH": str(LOAD_ROOT / "instructor" / "src")}
    done = subprocess.run([sys.executable, "-m", "gutcourse.cli", "--course", str(course_dir), "release", ASSIGNMENT],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    released = _as_user(hubctl.GRADER, [f"{venv_bin}/nbgrader", "release_assignment", ASSIGNMENT],
                        str(course_dir), grader_env)
    assert released.returncode == 0, released.stdout + released.stderr
    setup_s = time.monotonic() - t0

    hub = hubctl.Hub(root=LOAD_ROOT, port=hubctl.free_port(), log_path=LOAD_ROOT / "state" / "jupyterhub.log")
    failures: list[str] = []
    try:
        t = time.monotonic()
        hub.start()
        ready_s = time.monotonic() - t
        t = time.monotonic()
        with cf.ThreadPoolExecutor(args.concurrency) as pool:
            tokens = dict(zip(names, pool.map(lambda n: start_server(hub, n), names)))
        spawn_s = time.monotonic() - t
        t = time.monotonic()
        digests: dict[str, str] = {}
        with cf.ThreadPoolExecutor(args.concurrency) as pool:
            futures = {pool.submit(student_round, hub, n, tokens[n], course): n for n in names}
            for future in cf.as_completed(futures):
                try:
                    name, digest = future.result()
                    digests[name] = digest
                except Exception as err:  # noqa: BLE001  (every student's failure is reported)
                    failures.append(f"{futures[future]}: {err}")
        work_s = time.monotonic() - t
    finally:
        hub.stop()

    t = time.monotonic()
    collected = _as_user(hubctl.GRADER, [f"{venv_bin}/nbgrader", "collect", ASSIGNMENT], str(course_dir), grader_env)
    collect_s = time.monotonic() - t
    if collected.returncode != 0:
        failures.append(f"nbgrader collect failed: {collected.stderr[-500:]}")
    submitted = course_dir / "coursework" / "submitted"
    found = sorted(p.name for p in submitted.iterdir()) if submitted.is_dir() else []
    if found != sorted(digests):
        failures.append(f"collected {len(found)} students, {len(digests)} submitted: "
                        f"missing {sorted(set(digests) - set(found))}, extra {sorted(set(found) - set(digests))}")
    inbound = LOAD_ROOT / "exchange" / course / "inbound"
    per_student = {n: [p for p in inbound.iterdir() if p.name.startswith(f"{n}+{ASSIGNMENT}+")] for n in names}
    for name, digest in sorted(digests.items()):
        if len(per_student[name]) != 1:
            failures.append(f"{name}: {len(per_student[name])} submissions in the exchange, not 1")
        nb = submitted / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        if not nb.is_file():
            failures.append(f"{name}: nothing collected")
        elif hashlib.sha256(nb.read_bytes()).hexdigest() != digest:
            failures.append(f"{name}: the collected notebook differs from what was submitted")
        elif per_student[name] and (nb.parent / "timestamp.txt").read_text() != \
                (per_student[name][0] / "timestamp.txt").read_text():
            failures.append(f"{name}: an honest submission's time stamp was changed by collect")
    total_s = time.monotonic() - t0
    print(f"students {args.students}, at most {args.concurrency} at a time, loopback hub")
    print(f"  set-up (users, course, release to the exchange) {setup_s:7.1f} s")
    print(f"  hub ready                                      {ready_s:7.1f} s")
    print(f"  every student's server started                 {spawn_s:7.1f} s")
    print(f"  fetch + save + submit, all students            {work_s:7.1f} s"
          f"  ({work_s / max(len(names), 1):.2f} s per student)")
    print(f"  nbgrader collect                               {collect_s:7.1f} s")
    print(f"  total                                          {total_s:7.1f} s")
    print(f"  collected exactly once, with the bytes submitted: {len(names)} of {len(names)}"
          if not failures else "  FAILED:\n    " + "\n    ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
