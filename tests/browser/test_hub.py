"""The course on a real multi-user JupyterHub, end to end, in a browser (issue 14).

The hub is the one `make hub` runs (deploy/hub/), started by this test on 127.0.0.1 with
its own folder (/srv/gutcourse-hub-test) and accounts (gct-*), sharing `make hub`'s
students' venv.  Each user drives the hub in a browser context of their own:

- the instructor releases ps0 from the formgrader (the course service);
- two students log in, fetch it in the Assignments tab, answer (one right, one with a known
  wrong answer), Validate and submit; the due date passes between the two submissions;
- the instructor collects from the formgrader, grades with `gutcourse grade` as root,
  writes feedback with `gutcourse feedback` and releases it from the formgrader;
- each student fetches their feedback and sees their own result, without hidden tests.

And what must not work: a student opening the formgrader, reading the other student's home,
listing the exchange's inbound folder or the other's feedback.
Needs root (Unix users; each server runs as its user), Debian's chromium and node/npm.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from .conftest import ARTIFACTS, REPO, unavailable

pytestmark = [pytest.mark.xdist_group("hub")]

ASSIGNMENT = "ps0_orientation"
TEST_ROOT = Path("/srv/gutcourse-hub-test")
INSTRUCTOR = "gct-instructor"
RIGHT, WRONG = "gct-student1", "gct-student2"
WRONG_ANSWER = "convert_multiply"  # from ps0's bank: multiplies by 10 to convert mg/L to mg/dL
UI_MS = 120_000


def _hubctl():
    spec = importlib.util.spec_from_file_location("hubctl", REPO / "deploy" / "hub" / "hubctl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_user(user: str, *cmd: str) -> subprocess.CompletedProcess:
    """Run a command as ``user`` (no sudo needed: we are root)."""
    return _hubctl().run_as(user, list(cmd), cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=60)


@pytest.fixture(scope="module")
def hub():
    if os.geteuid() != 0:
        unavailable("the hub test needs root: it creates Unix users and runs each server as its user")
    if shutil.which("npm") is None and not (REPO / "deploy" / "hub" / "node_modules").is_dir():
        unavailable("npm is needed to install JupyterHub's proxy (configurable-http-proxy)")
    hubctl = _hubctl()
    _stop_stale(TEST_ROOT)
    shutil.rmtree(TEST_ROOT, ignore_errors=True)
    started = time.monotonic()
    settings = hubctl.setup(root=TEST_ROOT, student_names=[RIGHT, WRONG], instructor=INSTRUCTOR,
                            venv=hubctl.DEFAULT_ROOT / "venv")
    for user in (INSTRUCTOR, RIGHT, WRONG):  # a rerun starts from empty homes
        home = Path(pwd.getpwnam(user).pw_dir)
        for child in home.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    setup_s = time.monotonic() - started
    # The course's late policy as it is, but without its 15 minutes' grace: the test cannot wait that long.
    config = Path(settings["course_dir"]) / "nbgrader_config.py"
    config.write_text(config.read_text(encoding="utf-8")
                      + "\nc.LatePolicy.grace_minutes = 0  # test_hub.py: no grace, so seconds late count\n",
                      encoding="utf-8")
    log = ARTIFACTS.parent / "hub" / "jupyterhub.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    instance = hubctl.Hub(root=TEST_ROOT, port=hubctl.free_port(), log_path=log)
    started = time.monotonic()
    instance.start()
    instance.timings = {"setup_s": setup_s, "ready_s": time.monotonic() - started}
    instance.course = Path(settings["course_dir"])
    try:
        yield instance
    finally:
        instance.stop()
        (log.parent / "timings.json").write_text(json.dumps(instance.timings, indent=2) + "\n")
    # Nothing the hub started outlives it: no process of its users, and no course service of this
    # hub's (the grader account may run another hub's, e.g. `make hub`).
    for user in (INSTRUCTOR, RIGHT, WRONG):
        left = subprocess.run(["pgrep", "-u", user, "-a"], capture_output=True, text=True).stdout
        assert not left.strip(), f"processes of {user} outlived the hub:\n{left}"
    ours = _running_in(TEST_ROOT)
    assert not ours, f"the course service outlived the hub: pids {ours}"


def _running_in(root: Path) -> list[int]:
    """Live processes of the hub in ``root``: working in it (the hub, the course service) or started
    with it as their hub folder (the proxy)."""
    found = []
    marker = f"GUTCOURSE_HUB_ROOT={root}\0".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd").removesuffix(" (deleted)")
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                zombie = fh.read().rsplit(")", 1)[1].split()[0] == "Z"
            with open(f"/proc/{entry}/environ", "rb") as fh:
                named = marker in fh.read()
        except (OSError, IndexError):
            continue
        if not zombie and (named or cwd == str(root) or cwd.startswith(str(root) + "/")):
            found.append(int(entry))
    return found


def _stop_stale(root: Path) -> None:
    """A run that crashed can leave a course service behind: stop it before starting again."""
    import signal

    for pid in _running_in(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _gutcourse(hub, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gutcourse.cli", "--course", str(hub.course), *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"gutcourse {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _login(new_page, hub, user: str, next_path: str = ""):
    page = new_page()
    target = f"{hub.url}/hub/login" + (f"?next={next_path}" if next_path else "")
    page.goto(target)
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    return page


def _open_lab(page, hub, user: str) -> None:
    """Wait for the user's JupyterLab (the hub spawns the server after login)."""
    page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=UI_MS)
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Nbgrader").wait_for(timeout=UI_MS)


def _assignments_panel(page):
    """Open the Assignments tab from the Nbgrader menu; returns the panel."""
    from ._lab import menu

    menu(page, "Nbgrader", "Assignment List")
    panel = page.locator("#released_assignments_list").locator("xpath=ancestor::div[contains(@class,'lm-Widget')][1]")
    page.locator("#released_assignments_list").wait_for(timeout=UI_MS)
    return panel


def _row(page, list_id: str, text: str):
    return page.locator(f"#{list_id} .list_item:not(.nested_list_item)", has_text=text).first


def _put_notebook(page, hub, user: str, path: str, nb) -> None:
    """Save a notebook into the user's server with the Jupyter contents API, as Lab's Save does."""
    xsrf = next((c["value"] for c in page.context.cookies() if c["name"] == "_xsrf"), "")
    response = page.request.put(f"{hub.url}/user/{user}/api/contents/{path}",
                                headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
                                data=json.dumps({"type": "notebook", "format": "json",
                                                 "content": json.loads(nbformat.writes(nb))}))
    assert response.status in (200, 201), f"saving {path} as {user}: {response.status} {response.text()[:300]}"


def _answers(hub, wrong: bool):
    from gutcourse.grading._notebooks import fill_answers
    from gutcourse.grading.bank import load_bank

    coursework = hub.course / "coursework"
    released = nbformat.read(str(coursework / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    source = nbformat.read(str(coursework / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    entry = next(m for m in load_bank(ASSIGNMENT) if m.id == WRONG_ANSWER)
    return fill_answers(released, source, entry.replace if wrong else None), entry


def _formgrader_action(page, css: str, done_text: str) -> None:
    row = page.locator("table.table tbody tr", has_text=ASSIGNMENT)
    row.locator(f"{css} a").click()
    page.locator("#success-modal, #error-modal").wait_for(timeout=UI_MS)
    if page.locator("#error-modal").count():
        raise AssertionError(f"formgrader: {page.locator('#error-modal').inner_text()}")
    assert done_text in page.locator("#success-modal").inner_text()
    page.locator("#success-modal").get_by_role("button", name="OK").click()
    page.locator("#success-modal").wait_for(state="detached", timeout=UI_MS)


def _student_works(new_page, hub, user: str, wrong: bool):
    """Log in, fetch ps0 in the Assignments tab, answer, Validate, submit; returns the page."""
    page = _login(new_page, hub, user)
    _open_lab(page, hub, user)
    _assignments_panel(page)
    released = _row(page, "released_assignments_list", ASSIGNMENT)
    released.get_by_role("button", name="Fetch").click()
    fetched = _row(page, "fetched_assignments_list", ASSIGNMENT)
    fetched.wait_for(timeout=UI_MS)
    nb, entry = _answers(hub, wrong)
    path = f"gut-immunity/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    _put_notebook(page, hub, user, path, nb)
    # Validate from the Assignments tab: expand the assignment, press the notebook's Validate.
    fetched.locator("a.assignment-notebooks-link").click()
    validate = page.locator("#fetched_assignments_list").get_by_role("button", name="Validate")
    validate.first.click()
    message = page.locator("#validation-message")
    message.wait_for(timeout=UI_MS)
    verdict = message.get_attribute("class") + ": " + message.inner_text()
    page.locator(".jp-Dialog").get_by_role("button").last.click()
    message.wait_for(state="detached", timeout=UI_MS)
    assert ("validation-failed" if wrong else "validation-success") in verdict, verdict
    fetched.get_by_role("button", name="Submit").click()
    _row(page, "submitted_assignments_list", ASSIGNMENT).wait_for(timeout=UI_MS)
    return page, entry, verdict


def test_course_on_jupyterhub(hub, new_page):
    started = time.monotonic()
    course = hub.course
    # The instructor generates the student version (as root, like grading); files stay the grader's.
    _gutcourse(hub, "release", ASSIGNMENT)
    assert (course / "coursework" / "release" / ASSIGNMENT).stat().st_uid == pwd.getpwnam("grader-gut-immunity").pw_uid

    # Before any release the course's folders in the exchange are the grader's: no student can
    # make them first (and hand out a notebook of their own, or receive everyone's submissions).
    grader_uid = pwd.getpwnam("grader-gut-immunity").pw_uid
    for sub in ("", "outbound", "inbound", "feedback"):
        assert (hub.root / "exchange" / "gut-immunity" / sub).stat().st_uid == grader_uid, sub
    # The checkout this runs from holds the solutions: closed to students (setup closes it).
    solution = REPO / "coursework" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert _as_user(WRONG, "cat", str(solution)).returncode != 0, "a student read the checkout's solutions"
    assert _as_user(WRONG, "ls", str(hub.root / "instructor" / "src")).returncode != 0

    # --- the instructor releases ps0 to the exchange from the formgrader (the course service)
    teacher = _login(new_page, hub, INSTRUCTOR, next_path="/services/gut-immunity/formgrader")
    teacher.locator("table.table tbody tr", has_text=ASSIGNMENT).wait_for(timeout=UI_MS)
    _formgrader_action(teacher, ".release", "Successfully released")
    outbound = hub.root / "exchange" / "gut-immunity" / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert outbound.is_file()

    # --- student 1 answers right and submits on time
    page1, _, verdict1 = _student_works(new_page, hub, RIGHT, wrong=False)

    # --- the due date passes: the instructor sets it, with its zone, between the two submissions.
    # Written in UTC+01:00 to show the zone is honoured (nbgrader stores due dates in UTC).
    due = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=2)
    zone = dt.timezone(dt.timedelta(hours=1))
    local = due.astimezone(zone)
    row = teacher.locator("table.table tbody tr", has_text=ASSIGNMENT)
    row.locator(".edit a").click()
    teacher.locator("input.modal-duedate").fill(local.strftime("%Y-%m-%dT%H:%M:%S"))
    teacher.locator("input.modal-timezone").fill("+0100")
    teacher.locator("button.save").click()
    teacher.locator("input.modal-duedate").wait_for(state="detached", timeout=UI_MS)
    time.sleep(max(0.0, (due - dt.datetime.now(dt.timezone.utc)).total_seconds() + 1))

    # --- student 2 answers one question wrong and submits late
    page2, entry, verdict2 = _student_works(new_page, hub, WRONG, wrong=True)

    # --- what a student must not reach
    response = page2.goto(f"{hub.url}/services/gut-immunity/formgrader")
    assert response.status == 403, f"a student asking for the formgrader got {response.status} at {page2.url}"
    assert page2.locator("table.table").count() == 0, "a student opened the formgrader"
    for api in ("formgrader/api/assignments", "api/contents"):  # nor its API, nor the course's files
        answer = page2.request.get(f"{hub.url}/services/gut-immunity/{api}", max_redirects=0)
        assert answer.status in (302, 403), f"a student asking the course service for {api}: {answer.status}"
    inbound = hub.root / "exchange" / "gut-immunity" / "inbound"
    assert _as_user(WRONG, "ls", str(inbound)).returncode != 0, "a student listed the exchange's inbound folder"
    other_home = Path(pwd.getpwnam(RIGHT).pw_dir)
    assert _as_user(WRONG, "ls", str(other_home)).returncode != 0, "a student listed another student's home"
    assert _as_user(WRONG, "cat", str(other_home / "gut-immunity" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")).returncode != 0
    assert _as_user(WRONG, "ls", str(course)).returncode != 0, "a student listed the course folder"

    # --- the instructor collects from the formgrader, grades as root, writes and releases feedback
    _formgrader_action(teacher, ".collect", "Successfully collected")
    submitted = course / "coursework" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == sorted([RIGHT, WRONG])
    graded = _gutcourse(hub, "grade", ASSIGNMENT)
    assert "2 graded" in graded, graded
    _gutcourse(hub, "feedback", ASSIGNMENT)
    teacher.reload()
    teacher.locator("table.table tbody tr", has_text=ASSIGNMENT).wait_for(timeout=UI_MS)
    _formgrader_action(teacher, ".release-feedback", "Successfully released feedback")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'coursework' / 'gradebook.db'}") as gb:
        found = {user: gb.find_submission(ASSIGNMENT, user) for user in (RIGHT, WRONG)}
        max_auto = found[RIGHT].max_code_score
        max_total = found[RIGHT].max_score
        scores = {user: {"auto": s.code_score, "score": s.score, "late_s": s.total_seconds_late,
                         "penalty": s.late_submission_penalty} for user, s in found.items()}
    # Autograded points: all for the right answers, all but the wrong answer's for the other.
    assert scores[RIGHT]["auto"] == max_auto and scores[RIGHT]["late_s"] == 0, scores
    assert scores[WRONG]["auto"] == pytest.approx(max_auto - entry.points_lost), scores
    # The late one is flagged and loses 10% of what it earned (one started day, the course's policy).
    assert scores[WRONG]["late_s"] > 0, f"the late submission was not flagged late: {scores}"
    assert scores[RIGHT]["penalty"] == 0, scores
    assert scores[WRONG]["penalty"] == pytest.approx(0.10 * scores[WRONG]["score"]), scores

    # --- grades out to the LMS: the exported score is the final one, late penalty applied
    _gutcourse(hub, "export", ASSIGNMENT, "--to", "csv")
    exported = (course / "coursework" / "exports" / f"{ASSIGNMENT}-csv.csv").read_text(encoding="utf-8")
    for user in (RIGHT, WRONG):
        final = scores[user]["score"] - scores[user]["penalty"]
        line = next(row for row in exported.splitlines() if row.startswith(user + ","))
        assert f"{final:g}" in line.split(","), (user, line, final)

    # --- each student fetches their feedback and sees their own result, no hidden tests
    from learner_install.needles import needles

    hidden = [line for line, where in needles().items() if where == f"hidden test in {ASSIGNMENT}.ipynb"]
    assert hidden, "ps0's source has no hidden tests to look for"
    for page, user in ((page1, RIGHT), (page2, WRONG)):
        page.goto(f"{hub.url}/user/{user}/lab")
        _open_lab(page, hub, user)
        _assignments_panel(page)
        submitted_row = _row(page, "submitted_assignments_list", ASSIGNMENT)
        submitted_row.get_by_role("button", name="Fetch Feedback").click()
        submitted_row.get_by_text("view feedback").wait_for(timeout=UI_MS)
        feedback_dir = Path(pwd.getpwnam(user).pw_dir) / "gut-immunity" / ASSIGNMENT / "feedback"
        html = next(feedback_dir.rglob(f"{ASSIGNMENT}.html")).read_text(encoding="utf-8")
        final = scores[user]["score"] - scores[user]["penalty"]
        assert f"{ASSIGNMENT} (Score: {final:.1f} / {max_total:.1f})" in _text(html), \
            f"{user}'s feedback does not show their score {final} / {max_total}"
        if scores[user]["penalty"]:
            assert f"Late submission penalty (Score: -{scores[user]['penalty']:.1f})" in _text(html)
        shown = re.sub(r"[ \t]+", " ", _text(html))
        leaked = [line for line in hidden if line in shown]
        assert not leaked, f"{user}'s feedback shows hidden tests: {leaked[:3]}"
    other = hub.root / "exchange" / "gut-immunity" / "feedback"
    assert _as_user(WRONG, "ls", str(other)).returncode != 0, "a student listed everyone's feedback"
    hub.timings["end_to_end_s"] = time.monotonic() - started
    hub.timings["validate"] = {RIGHT: verdict1[:200], WRONG: verdict2[:200]}


def _text(html: str) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    import html as html_lib

    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_make_hub_prints_its_url_and_logins_and_ctrl_c_stops_everything():
    """`make hub` itself (set-up, then the hub in the foreground), in a hub folder of its own."""
    import signal
    import urllib.request

    import psutil

    if os.geteuid() != 0:
        unavailable("the hub needs root")
    hubctl = _hubctl()
    root = Path("/srv/gutcourse-hub-test-run")
    _stop_stale(root)
    shutil.rmtree(root, ignore_errors=True)
    port = hubctl.free_port()
    # The hub folder of its own, sharing the students' venv `make hub-env` built.
    env = dict(os.environ, GUTCOURSE_HUB_ROOT=str(root), GUTCOURSE_HUB_VENV=str(hubctl.DEFAULT_ROOT / "venv"))
    started = time.monotonic()
    proc = subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO), "hub", f"HUB_PORT={port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops"):
                break
        ready_s = time.monotonic() - started
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text and "shared password" in text, text
        assert "gc-instructor" in text and "gc-student1" in text and "/services/gut-immunity/formgrader" in text, text
        password = re.search(r"shared password (\S+)", text).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/api/", timeout=30) as response:
            assert response.status == 200
        started_by_it = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()[:3]) for p in started_by_it)
        assert "jupyterhub" in names and "configurable-http-proxy" in names, names
        # Ctrl-C in a terminal: SIGINT to the foreground process group (make and hubctl.py).
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            _stop_stale(root)  # the hub runs in a session of its own
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for p in started_by_it if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.5)
    assert not alive, f"processes outlived Ctrl-C: {[p.cmdline()[:3] for p in alive]}"
    assert len(password) >= 8
    (ARTIFACTS.parent / "hub").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / "hub" / "make_hub_ready_s.txt").write_text(f"{ready_s:.1f}\n")
