"""JupyterHub configuration for the course on one machine: nbgrader's multi-course set-up.

`make hub` (deploy/hub/hubctl.py) writes hub.json and starts JupyterHub with this file.
To take it to a real server: keep the groups, roles and the course service as they are,
and replace the parts marked LOCAL TRIAL (the shared password, 127.0.0.1, the admin token)
with your authenticator (LDAP, OAuth with your LMS) and your network settings.
"""

import json
import os
from pathlib import Path

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

HUB = Path(os.environ.get("GUTCOURSE_HUB_ROOT", "/srv/gutcourse-hub"))
settings = json.loads((HUB / "hub.json").read_text(encoding="utf-8"))
course = settings["course_id"]
grader = settings["grader"]
instructors = settings["instructors"]
students = settings["students"]
venv = Path(settings["venv"])

# LOCAL TRIAL: loopback only.
c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ.get('GUTCOURSE_HUB_PORT', '8000')}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("GUTCOURSE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('GUTCOURSE_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.JupyterHub.db_url = f"sqlite:///{HUB / 'state' / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(HUB / "state" / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(HUB / "state" / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the servers it started

# LOCAL TRIAL: one shared password for every account (JupyterHub 5's SharedPasswordAuthenticator).
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["GUTCOURSE_HUB_PASSWORD"]
c.Authenticator.allowed_users = set(instructors + students)

# Each user's server runs as their Unix user, from the students' venv (learner install only).
c.Spawner.cmd = [str(venv / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
# A class logging in at once starts many servers together: give each time to start on a busy machine.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 300


def _extensions(spawner):
    """nbgrader's extensions by kind of account: Assignments for students; Courses as well for instructors."""
    kind = "instructor" if spawner.user.name in instructors else "student"
    return str(HUB / "etc" / f"jupyter-{kind}")


c.Spawner.environment = {"JUPYTER_CONFIG_PATH": _extensions}
# The server's own token: enough to tell nbgrader which courses its user is in, nothing more.
c.Spawner.server_token_scopes = [
    "users:activity!user", "access:servers!server", "read:users:name!user", "read:users:groups!user",
]

# nbgrader's groups: formgrade-<course> reaches the formgrader, nbgrader-<course> the course's assignments.
c.JupyterHub.load_groups = {
    f"formgrade-{course}": {"users": instructors + [grader]},
    f"nbgrader-{course}": {"users": students + instructors},
}
roles = [
    {"name": f"formgrade-{course}", "groups": [f"formgrade-{course}"],
     "scopes": [f"access:services!service={course}"]},
    {"name": f"nbgrader-{course}", "groups": [f"nbgrader-{course}"],
     "scopes": ["list:services", f"read:services!service={course}"]},
    # The course service (the formgrader) lists the course's students and adds new ones to its group.
    # nbgrader's docs give it an admin's token; these scopes are all it uses.
    {"name": f"course-service-{course}", "services": [course],
     "scopes": ["list:users", "read:users", "list:groups", "read:groups", f"groups!group=nbgrader-{course}"]},
]

# JupyterHub 5 gives a service it starts ten tries of one second each to answer, then stops
# (JupyterHub.start_service); the course service, a JupyterLab with nbgrader, can need longer on
# a busy machine.  Each try here waits up to 30 s instead: at most five minutes in all.
from jupyterhub.objects import Server as _Server  # noqa: E402

_wait_up = _Server.wait_up


def _patient_wait_up(self, timeout=10, http=False, ssl_context=None, extra_path=""):
    return _wait_up(self, timeout=max(timeout, 30), http=http, ssl_context=ssl_context, extra_path=extra_path)


_Server.wait_up = _patient_wait_up

# The course as a hub service: one server for the course's graders, run as the grader account
# in the course folder, with the formgrader and create-assignment switched on.
c.JupyterHub.services = [{
    "name": course,
    "url": f"http://127.0.0.1:{os.environ.get('GUTCOURSE_HUB_SERVICE_PORT', '9999')}",
    "command": [str(venv / "bin" / "jupyterhub-singleuser")],
    "user": grader,
    "cwd": settings["course_dir"],
    "oauth_no_confirm": True,
    "environment": {
        "JUPYTERHUB_DEFAULT_URL": "/lab",
        "JUPYTER_CONFIG_PATH": str(HUB / "etc" / "jupyter-grader"),
        # The instructor's gutcourse (grading tools), readable by the grader account only.
        "PYTHONPATH": str(HUB / "instructor" / "src"),
    },
}]

# LOCAL TRIAL: a token for the scripts that drive this hub (tests, the load script).
admin_token = os.environ.get("GUTCOURSE_HUB_ADMIN_TOKEN")
if admin_token:
    c.JupyterHub.services.append({"name": "trial-driver", "api_token": admin_token})
    roles.append({"name": "trial-driver", "services": ["trial-driver"], "scopes": ["admin:users", "admin:servers",
                  "tokens", "read:users", "list:users"]})
c.JupyterHub.load_roles = roles
