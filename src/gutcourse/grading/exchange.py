"""A stricter ``nbgrader collect`` for the filesystem exchange on a shared machine or hub.

nbgrader's exchange trusts what a student's own process writes, and a student's server
is that process.  On the course's hub a student could (docs/security.md, "The exchange"):

- put a folder named ``<another student>+<assignment>+...`` in ``inbound/`` and have it
  collected as the other student's work (nbgrader only logs "cheating attempt?");
- write any time into ``timestamp.txt`` and the folder's name, or submit on time and change
  the submitted files after the due date (they stay the student's, in a folder of mode 0777),
  and be graded as on time;
- put symbolic links in a submission, which ``collect`` follows as the grader account,
  copying the gradebook, the course's sources or anything else the grader can read into
  ``submitted/``, where the student's code then runs beside it;
- leave out ``submission_secret.txt``, which stops ``release_feedback`` for the whole class.

:class:`StrictCollect` collects the same submissions nbgrader would, except that:

- a folder not owned by the student it names is not collected (when ``check_owner`` is on);
- symbolic links, devices, pipes and sockets are not copied, nor files another account owns;
- a submission without ``submission_secret.txt`` is not collected;
- a submission's time is checked against the inode change times of its folder and files,
  which no user can set: when anything in it changed later than ``timestamp_tolerance``
  seconds after the time it claims, the latest change counts as its time (and is written
  to the collected ``timestamp.txt``), so lateness follows what the student really did.

Each refusal is logged as an error naming the folder and the reason.  Use it with::

    c.ExchangeFactory.collect = "gutcourse.grading.exchange.StrictCollect"
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import stat
from collections import defaultdict

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import check_mode, ignore_patterns, parse_utc
from traitlets import Float

try:
    import pwd
except ImportError:  # pragma: no cover  (Windows: no owners to check)
    pwd = None

__all__ = ["StrictCollect", "inspect_submission"]

SECRET = "submission_secret.txt"
TIMESTAMP = "timestamp.txt"


def _owner(uid: int) -> str:
    if pwd is None:
        return str(uid)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def inspect_submission(path: str, student: str | None, claimed: dt.datetime | None, *,
                       check_owner: bool = True, tolerance: float = 300.0) -> dict:
    """What :class:`StrictCollect` thinks of one submission folder in ``inbound/``.

    Returns ``{"refused": reason or None, "skipped": [(relative path, why)], "time": datetime,
    "changed_late": bool}``; ``time`` is naive UTC, like nbgrader's.
    """
    top = os.lstat(path)
    result = {"refused": None, "skipped": [], "time": claimed, "changed_late": False}
    if not stat.S_ISDIR(top.st_mode):
        result["refused"] = "not a folder"
        return result
    owner_uid = top.st_uid
    if check_owner and student is not None and _owner(owner_uid) != student:
        result["refused"] = f"it names {student} but belongs to {_owner(owner_uid)}"
        return result
    if not os.path.isfile(os.path.join(path, SECRET)) or os.path.islink(os.path.join(path, SECRET)):
        result["refused"] = f"it has no {SECRET} (nbgrader's submit always writes one)"
        return result
    latest = top.st_ctime
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            rel = os.path.relpath(full, path)
            if stat.S_ISLNK(info.st_mode):
                result["skipped"].append((rel, f"a symbolic link (to {os.readlink(full)})"))
            elif not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                result["skipped"].append((rel, "not a regular file"))
            elif check_owner and info.st_uid != owner_uid:
                result["skipped"].append((rel, f"owned by {_owner(info.st_uid)}, not by the student"))
            else:
                latest = max(latest, info.st_ctime)
        # never descend into a linked folder
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    changed = dt.datetime.fromtimestamp(latest, dt.timezone.utc).replace(tzinfo=None)
    if claimed is None or abs((changed - claimed).total_seconds()) > tolerance:
        result["time"] = changed
        result["changed_late"] = claimed is not None and changed > claimed
    return result


class StrictCollect(ExchangeCollect):
    """nbgrader's collect, without trusting what students wrote into the exchange (module docstring)."""

    timestamp_tolerance = Float(
        300.0,
        help="Seconds a submission's files may have changed after (or before) the time it claims "
             "before the time of the latest change counts instead.",
    ).tag(config=True)

    def init_src(self):
        if self.coursedir.course_id == '':
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, 'inbound')
        if not os.path.isdir(self.inbound_path):
            self.fail("Course not found: {}".format(self.inbound_path))
        if not check_mode(self.inbound_path, read=True, execute=True):
            self.fail("You don't have read permissions for the directory: {}".format(self.inbound_path))
        student_id = self.coursedir.student_id if self.coursedir.student_id else '*'
        pattern = os.path.join(self.inbound_path, '{}+{}+*'.format(student_id, self.coursedir.assignment_id))
        self.inspected = {}
        by_student = defaultdict(list)
        for folder in glob.glob(pattern):
            try:
                record = self._path_to_record(folder)
            except Exception as err:  # a malformed name is one refused folder, not a failed collect
                self.log.error("not collected: %s: %s", folder, err)
                continue
            report = inspect_submission(folder, record['username'], record['timestamp'],
                                        check_owner=self.check_owner and pwd is not None,
                                        tolerance=self.timestamp_tolerance)
            if report["refused"]:
                self.log.error("not collected: %s: %s", folder, report["refused"])
                continue
            if report["changed_late"]:
                self.log.error("%s: changed at %s UTC, after the time it claims (%s UTC); "
                               "that change counts as its time", folder, report["time"], record['timestamp'])
            record['timestamp'] = report["time"]
            self.inspected[record['filename']] = report
            by_student[record['username']].append(record)

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for records in by_student.values():
            records = self._sort_by_timestamp(records)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in records if r['timestamp'] <= self.duedate]
                records = on_time or records
            self.src_records.append(records[0])

    def do_copy(self, src, dest, log=None):
        """Copy regular files only: links, devices and other accounts' files stay behind."""
        report = self.inspected.get(os.path.basename(src))
        skipped = {rel for rel, _ in report["skipped"]} if report else set()
        for rel, why in (report["skipped"] if report else []):
            self.log.error("not collected from %s: %s: %s", src, rel, why)
        size = self.get_size(src)  # nbgrader's limit on a submission's size (links not counted)
        if size > 1000 * self.coursedir.max_dir_size:
            raise RuntimeError(f"Directory size is too big. Size is {size}, maximum size is "
                               f"{1000 * self.coursedir.max_dir_size}")
        filtered = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                   max_file_size=self.coursedir.max_file_size, log=self.log)

        def ignore(folder, names):
            out = set(filtered(folder, names))
            for name in names:
                full = os.path.join(folder, name)
                if os.path.relpath(full, src) in skipped or os.path.islink(full):
                    out.add(name)
            return out

        shutil.copytree(src, dest, symlinks=True, ignore=ignore)
        if report and report["time"] is not None:
            stamped = report["time"].replace(tzinfo=dt.timezone.utc)
            claimed = None
            try:
                with open(os.path.join(dest, TIMESTAMP), encoding="utf-8") as fh:
                    claimed = parse_utc(fh.read().strip())
            except (OSError, ValueError):
                pass
            if claimed != report["time"]:
                with open(os.path.join(dest, TIMESTAMP), "w", encoding="utf-8") as fh:
                    fh.write(stamped.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
