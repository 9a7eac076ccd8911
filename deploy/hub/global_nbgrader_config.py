"""nbgrader's settings for every account on the hub (students, instructors, the course service).

`make hub` writes this file, with @EXCHANGE@ replaced by the exchange folder, into the config dir
of each kind of account (<hub>/etc/jupyter-student, -instructor, -grader; on JUPYTER_CONFIG_PATH),
so two hubs sharing one Python environment keep their own exchange.
On a real server /etc/jupyter/ is the usual place.
The course's own settings (grading, late policy) stay in the course folder's nbgrader_config.py.
"""

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821

# One exchange for the hub, one folder per course in it (nbgrader's multi-course set-up).
c.Exchange.root = "@EXCHANGE@"
c.Exchange.path_includes_course = True
# Which courses a user is in comes from the hub's groups nbgrader-<course> and formgrade-<course>.
c.Authenticator.plugin_class = JupyterHubAuthPlugin

# Time stamps of submissions are written in UTC, with the zone in the text ("... UTC").
# A local zone here is written as its abbreviation, and nbgrader reads the summer-time ones
# it cannot resolve (CEST, EDT, BST) as UTC: every summer submission would move by hours
# (see nbgrader#1932 on zones).  Due dates carry their own zone instead: give them with an
# offset or a zone name, e.g. `2026-12-09 23:59:00 Europe/Berlin`.
c.Exchange.timezone = "UTC"
