"""Test cells judged outside the student's kernel (issue 12).

While a notebook is graded, its test cells do not run in the student's kernel. The
referee runs them here, in the grader's process, from the source kept in the gradebook
(never from the submission). The referee's namespace holds what the notebook's locked
setup cells define, run here as well; any other name a test reads is fetched from the
kernel as plain data through :mod:`gutcourse.handout`, and a student's function becomes
a stand-in that sends the test's inputs to the kernel and gets the result back as data.

So the kernel sees the inputs a test gives the student's functions, and nothing else of
the test: no expected value, no comparison, no message. Whatever the student's code
does to ``checks``, numpy, pandas or the frames on its stack, it changes only its own
answers. The referee writes each test cell's outputs (its printed text and, when it
fails, the error) as nbgrader reads them, so feedback, the formgrader and the gradebook
all see the referee's verdict.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import ctypes
import functools
import io
import json
import logging
import re
import sys
import threading
import time
import traceback

from nbformat import NotebookNode

from .. import handout
from ._cellnames import cell_names

log = logging.getLogger(__name__)

#: The kernel's answer to one request may be at most this large (bytes on the wire).
MAX_REPLY = 64 << 20
#: Most brackets and braces, and most commas, a message from the kernel may hold. Parsed, JSON
#: like ``[],`` takes about 80 bytes for each 3 of text: 64 MB of it would be 3 GB of the grader's
#: memory. Within these a message parses into at most a few hundred MB; a hand-out holds at most
#: ``handout.MAX_ITEMS`` values, so a legitimate one stays well inside them.
MAX_CONTAINERS = 1_000_000
MAX_COMMAS = 3_000_000
#: Longest message a test cell's error output shows (the kernel's own errors are cut at 2,000 characters too).
MAX_MESSAGE = 2000
_BUILTINS = frozenset(dir(builtins))


#: One Python string literal on one line, as repr() writes a str: quotes, characters, escapes.
_STRING_REPR = re.compile(r"'(?:[^'\\\n]++|\\.)*+'|\"(?:[^\"\\\n]++|\\.)*+\"")


class _TooManyObjects(ValueError):
    pass


def _check_parse_size(text) -> None:
    """Refuse JSON text that would parse into more objects than :data:`MAX_CONTAINERS` / :data:`MAX_COMMAS`."""
    if not isinstance(text, (str, bytes)):
        text = bytes(text)
    brackets, braces, commas = ("[", "{", ",") if isinstance(text, str) else (b"[", b"{", b",")
    if text.count(brackets) + text.count(braces) > MAX_CONTAINERS or text.count(commas) > MAX_COMMAS:
        raise _TooManyObjects("the kernel's answer was too large to read")


class KernelGone(BaseException):
    """The kernel stopped answering while a test used it: the test cannot catch this."""


class GraderError(Exception):
    """The notebook's own cells cannot be judged here (the instructor's notebook must change)."""


class TooSlow(BaseException):
    """A student's function ran past the cell's time; the kernel was interrupted."""


# ----------------------------------------------------------------------------- output capture
class _ThreadStreams(io.TextIOBase):
    """sys.stdout / sys.stderr that send a referee thread's writes to its own buffer."""

    def __init__(self, real):
        self.real = real
        self.local = threading.local()

    def write(self, text):
        buffer = getattr(self.local, "buffer", None)
        if buffer is None:
            return self.real.write(text)
        if buffer.tell() < 1 << 20:
            buffer.write(text)
        return len(text)

    def flush(self):
        if getattr(self.local, "buffer", None) is None:
            self.real.flush()


_streams_lock = threading.Lock()


def _install_streams() -> tuple[_ThreadStreams, _ThreadStreams]:
    with _streams_lock:
        if not isinstance(sys.stdout, _ThreadStreams):
            sys.stdout = _ThreadStreams(sys.stdout)
        if not isinstance(sys.stderr, _ThreadStreams):
            sys.stderr = _ThreadStreams(sys.stderr)
    return sys.stdout, sys.stderr


# ----------------------------------------------------------------------------- the kernel link
class KernelLink:
    """A second, blocking client of the grading kernel, used only by the referee's thread."""

    def __init__(self, km, loop: asyncio.AbstractEventLoop, deadline):
        import zmq
        from jupyter_client.blocking import BlockingKernelClient

        class _Context(zmq.Context):
            def socket(self, socket_type, **kwargs):
                sock = super().socket(socket_type, **kwargs)
                sock.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY)
                # The kernel may send messages nobody asked for (a student's code holds the reply
                # socket's address): queue only a few, not ZeroMQ's default of 1000 of up to 64 MB each.
                sock.setsockopt(zmq.RCVHWM, 4)
                return sock

        self.km = km
        self.loop = loop
        self.deadline = deadline  # a function: seconds left for the cell being judged
        self.context = _Context()
        self.kc = BlockingKernelClient(context=self.context)
        self.kc.load_connection_info(km.get_connection_info())
        # Every message this client reads is parsed only after its size in objects is checked:
        # the kernel can send any JSON (as a reply, or unasked), and parsing happens in the grader.
        self.oversized = False
        unpack = self.kc.session.unpack

        def bounded_unpack(data, _unpack=unpack):
            try:
                _check_parse_size(data)
            except _TooManyObjects:
                self.oversized = True
                raise
            return _unpack(data)

        self.kc.session.unpack = bounded_unpack
        self.kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self.requests = 0
        self.dead = False
        #: requests go as messages of their own (True), through the execute path (False), not yet known (None)
        self.direct = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.context.destroy(linger=0)

    def _alive(self) -> bool:
        try:
            return bool(asyncio.run_coroutine_threadsafe(self.km.is_alive(), self.loop).result(10))
        except Exception:
            return False

    def _interrupt(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.km.interrupt_kernel(), self.loop).result(10)

    def _wait(self, msg_id: str, until: float):
        last_check = time.monotonic()
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            try:
                reply = self.kc.get_shell_msg(timeout=min(0.5, left))
            except Exception:  # queue.Empty
                reply = None
            if self.oversized:
                self.oversized = False
                raise handout.HandoutError("the kernel's answer was too large to read")
            parent = reply.get("parent_header") if isinstance(reply, dict) else None
            if isinstance(parent, dict) and parent.get("msg_id") == msg_id:
                return reply
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                if not self._alive():
                    self.dead = True
                    raise KernelGone("the kernel stopped while a test was using it")

    def _send(self, op: str, args: list) -> str:
        """Send one request; its message id."""
        if self.direct:
            msg = self.kc.session.msg(handout.REQUEST, {"op": op, "args": args})
            self.kc.shell_channel.send(msg)
            return msg["header"]["msg_id"]
        expression = f"__import__('gutcourse.handout').handout.{op}({', '.join(repr(a) for a in args)})"
        return self.kc.execute("", silent=True, store_history=False,
                               user_expressions={"h": expression}, allow_stdin=False)

    def _open_direct(self, grace: float) -> None:
        """Ask the kernel to take requests as messages of their own (``handout.serve``); else keep the execute path."""
        self.direct = False  # `serve` itself goes through the execute path
        with contextlib.suppress(TooSlow, Exception):  # whatever the student made of `serve`: keep the old path
            self.direct = self.ask("serve", grace=grace).get("ok") is True
        log.debug("requests to the kernel go %s", "directly" if self.direct else "through its execute path")

    def ask(self, op: str, *args, grace: float) -> dict:
        """Run ``gutcourse.handout.<op>(*args)`` in the kernel; its reply, parsed."""
        if self.dead:
            raise KernelGone("the kernel had stopped")
        if self.direct is None:
            self._open_direct(grace)
        self.requests += 1
        msg_id = self._send(op, list(args))
        reply = self._wait(msg_id, time.monotonic() + max(0.0, self.deadline()))
        if reply is None:
            self._interrupt()
            reply = self._wait(msg_id, time.monotonic() + grace)
            if reply is None:
                self.dead = True
                raise KernelGone("the kernel did not stop when interrupted")
            raise TooSlow("it ran past this cell's time limit and was interrupted")
        content = reply.get("content", {})
        direct_reply = reply.get("msg_type") == handout.REPLY
        if direct_reply:
            result = content if isinstance(content, dict) else {}
            text = result.get("text")
        else:
            if content.get("status") != "ok":
                # The empty cell itself failed: the student's code broke the kernel's execution.
                raise handout.HandoutError(f"the kernel refused the request ({str(content.get('ename'))[:80]})")
            result = (content.get("user_expressions") or {}).get("h") or {}
            text = (result.get("data") or {}).get("text/plain")
        if result.get("status") != "ok":
            ename = str(result.get("ename", "error"))[:80]
            if ename == "KeyboardInterrupt":
                raise TooSlow("it was interrupted")
            raise handout.HandoutError(f"reading it failed in the kernel ({ename}: {str(result.get('evalue'))[:200]})")
        if not isinstance(text, str):
            raise handout.HandoutError("the kernel's answer was not text")
        try:
            if not direct_reply:
                # A string's repr, as IPython shows a value; anything else is refused unparsed (a student's
                # own `__import__` made it "1+1+1...", which takes gigabytes to parse; red team round 9).
                if _STRING_REPR.fullmatch(text) is None:
                    raise ValueError
                text = ast.literal_eval(text)
                if not isinstance(text, str):
                    raise ValueError
            _check_parse_size(text)
            payload = json.loads(text)
        except _TooManyObjects as err:
            raise handout.HandoutError(str(err)) from None
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            raise handout.HandoutError("the kernel's answer was malformed") from None
        if not isinstance(payload, dict):
            raise handout.HandoutError("the kernel's answer was malformed")
        return payload


# ----------------------------------------------------------------------------- stand-ins
def _refuse_method(cls: str, name: str, *args, **kwargs):
    raise GraderError(f"the test called `{cls}.{name}` on the grader's copy of a model from the kernel: "
                      f"run it in the kernel with `checks.method(model, {name!r}, ...)`")


def _raise_like(info: dict):
    """An exception like the one the student's function raised (a builtin type where it was one)."""
    name = str(info.get("type", "Exception"))[:100]
    message = str(info.get("message", ""))
    cls = getattr(builtins, name, None)
    if not (info.get("builtin") is True and isinstance(cls, type) and issubclass(cls, Exception)):
        cls = type(name if name.isidentifier() else "Exception", (Exception,), {"__module__": "student"})
    try:
        err = cls(message)
    except Exception:
        err = Exception(message)
    return err


class StudentFunction:
    """A student's function: calling it sends the arguments to the kernel and returns the result as data."""

    def __init__(self, referee: "Referee", ref: str, name: str):
        self._referee = referee
        self._ref = ref
        self.__name__ = self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        return self._referee.call(self, args, kwargs)

    def _call_each(self, calls) -> list:
        """Every call of ``calls`` (``(args, kwargs)`` pairs) in one request: see gutcourse.checks.call_each."""
        return self._referee.call_each(self, calls)

    def _watch(self, probe: tuple, banned_modules, banned_quals, skip=()) -> list[str]:
        """The banned library functions that ran while the function ran on ``probe``, seen in the kernel."""
        refs = [s._ref for s in skip if isinstance(s, StudentFunction) and s._referee is self._referee]
        payload = json.dumps({"args": self._referee._send(list(probe)), "skip": refs,
                              "banned_modules": [str(b) for b in banned_modules],
                              "banned": [str(q) for q in banned_quals]}, allow_nan=False, separators=(",", ":"))
        reply = self._referee.link.ask("watch", self._ref, payload, grace=self._referee.grace)
        found = reply.get("ok")
        if "unreadable" in reply or type(found) is not list or not all(type(x) is str for x in found):
            raise handout.HandoutError(f"The grader could not watch what `{self.__name__}` calls: "
                                       f"{str(reply.get('unreadable', 'a malformed answer'))[:200]}.")
        return sorted(set(found))

    def _reach_graph(self, skip=()) -> dict:
        """What the function reaches, read in the kernel (see gutcourse.checks.library_calls)."""
        refs = [s._ref for s in skip if isinstance(s, StudentFunction) and s._referee is self._referee]
        reply = self._referee.link.ask("reach", self._ref, refs, grace=self._referee.grace)
        graph = reply.get("ok")
        if "unreadable" in reply or not _valid_graph(graph):
            raise handout.HandoutError(f"The grader could not follow what `{self.__name__}` calls: "
                                       f"{str(reply.get('unreadable', 'a malformed answer'))[:200]}.")
        return graph


def _valid_graph(graph) -> bool:
    """A reach graph as ``handout.reach_graph`` makes it: every field of its type, every edge to a node."""
    if type(graph) is not dict or type(graph.get("nodes")) is not list or not graph["nodes"]:
        return False
    nodes = graph["nodes"]
    n = len(nodes)
    if n > handout.MAX_NODES:
        return False
    for node in nodes:
        if type(node) is not dict or not all(type(node.get(k)) is str for k in ("module", "name", "qual", "kind")):
            return False
        if type(node.get("skip")) is not bool:
            return False
        kind = node["kind"]
        links = []
        if kind == "partial":
            links = [node.get("func")]
        elif kind == "module":
            if type(node.get("attrs")) is not dict:
                return False
            links = list(node["attrs"].values())
        elif kind == "function":
            if type(node.get("names")) is not list or type(node.get("edges")) is not dict:
                return False
            if not all(type(x) is str for x in node["names"]):
                return False
            links = list(node["edges"].values())
        elif kind != "other":
            return False
        if not all(type(j) is int and 0 <= j < n for j in links):
            return False
    return True


def _write_back(original, after) -> None:
    """Make ``original`` (trusted data a student's function was given) look as the function left it."""
    import numpy as np
    import pandas as pd

    try:
        if isinstance(original, pd.DataFrame) and isinstance(after, pd.DataFrame):
            if original.shape == after.shape and not original.equals(after):
                for i in range(original.shape[1]):
                    original.isetitem(i, after.iloc[:, i].set_axis(original.index))
        elif isinstance(original, pd.Series) and isinstance(after, pd.Series):
            if len(original) == len(after) and not original.equals(after):
                original.iloc[:] = after.to_numpy()
        elif isinstance(original, np.ndarray) and isinstance(after, np.ndarray):
            if original.shape == after.shape and original.flags.writeable:
                original[...] = after
        elif type(original) is list and type(after) is list:
            original[:] = after
        elif type(original) is dict and type(after) is dict:
            original.clear()
            original.update(after)
        elif type(original) is set and type(after) is set:
            original.clear()
            original.update(after)
    except Exception:  # a change the referee cannot mirror: later checks see the data as the test made it
        pass


# ----------------------------------------------------------------------------- the namespace
class Namespace(dict):
    """The referee's globals: trusted names first; any other name is the student's, fetched as data."""

    def __init__(self, referee: "Referee"):
        super().__init__()
        self._referee = referee
        self._fetched: set[str] = set()
        self.offline = False  # while setup cells run: no name is fetched from the kernel
        self["__builtins__"] = builtins
        self["__name__"] = "__main__"

    def forget_fetched(self) -> None:
        for name in self._fetched:
            self.pop(name, None)
        self._fetched.clear()

    def __missing__(self, name):
        if not isinstance(name, str) or name in _BUILTINS or name.startswith("__") or self.offline \
                or name in self._referee.trusted_bound:
            raise KeyError(name)  # a setup or test cell's name is the grader's, even where that cell has not run
        value = self._referee.fetch(name)
        self._fetched.add(name)
        dict.__setitem__(self, name, value)
        return value

    def __contains__(self, name):
        if dict.__contains__(self, name):
            return True
        try:
            self[name]
        except KeyError:
            return False
        return True

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __setitem__(self, name, value):
        self._fetched.discard(name)
        super().__setitem__(name, value)


# ----------------------------------------------------------------------------- the referee
class Referee:
    """Runs one notebook's setup and test cells in this process, asking the kernel for the student's answers."""

    def __init__(self, trusted: dict[str, dict], order: list[str] | None = None):
        #: grade id -> {"source": ..., "role": "setup" | "test"} from the gradebook
        self.trusted = trusted
        #: the setup cells in the order of the instructor's notebook (``order``, read from the course's
        #: source notebook, never from the submission); None when that order is not known
        self.setup_order = [g for g in order if trusted.get(g, {}).get("role") == "setup"] if order else None
        self.position = {g: i for i, g in enumerate(order)} if order else {}
        self.done: set[str] = set()
        #: every name a setup or test cell binds: never fetched from the student's kernel, even before its
        #: cell has run (a student who moves a test above the one defining its helpers must not supply them)
        self.trusted_bound = frozenset().union(*(
            (cell_names(_strip_magics(cell["source"])) or (frozenset(), frozenset()))[0]
            for cell in trusted.values() if cell.get("role") in ("setup", "test")))
        #: what the referee saw that an instructor should look at (reported with the grade)
        self.notes: list[str] = []
        #: why no test of this notebook can be judged here (a locked cell the referee cannot run as Python)
        self.unjudgeable = next((f"locked cell {gid} holds `{line}`, which the grader cannot run as Python"
                                 for gid, cell in trusted.items()
                                 for line in [_unsupported_magic(cell.get("source", ""))] if line), None)
        self.ns = Namespace(self)
        #: kernel reference -> this referee's copy of an object the kernel keeps (one copy per object)
        self._objects: dict = {}
        self._decoding: dict = {}  # kernel reference -> copy, within the hand-out being read
        self.link: KernelLink | None = None
        self.grace = 5.0
        self.setup_errors: list[str] = []
        #: what the setup cells made (the course data), by id: a student's function never changes those.
        #: The objects are held, so a test's own object can never take over the id of one that was freed.
        self.setup_objects: dict[int, object] = {}
        pyplot = sys.modules.get("matplotlib.pyplot")
        self._figures_before = set(pyplot.get_fignums()) if pyplot is not None else set()

    def close(self) -> None:
        """Close the figures this notebook's setup and test cells made here (a grader judges many notebooks)."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            for number in set(pyplot.get_fignums()) - self._figures_before:
                pyplot.close(number)
        handout._opaque_types.clear()  # type names one notebook invented do not crowd out the next one's

    # -- what a cell is -------------------------------------------------------------------
    def role(self, cell) -> str | None:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        entry = self.trusted.get(meta.get("grade_id"))
        if entry is None or cell.get("cell_type") != "code":
            return None
        return entry["role"]

    # -- kernel requests (from the referee's thread) ------------------------------------------
    def fetch(self, name: str):
        if self.link is None:
            raise KeyError(name)
        try:
            reply = self.link.ask("fetch", name, grace=self.grace)
        except handout.HandoutError as err:
            raise handout.HandoutError(f"The grader could not read `{name}` from your notebook: {err}.") from None
        if reply.get("missing") is True:
            raise KeyError(name)
        return self._value(reply, f"`{name}`")

    def _value(self, reply: dict, what: str):
        if "unreadable" in reply:
            raise handout.HandoutError(f"The grader could not read {what} from your notebook: "
                                       f"{str(reply['unreadable'])[:300]}.")
        if "ok" not in reply:
            raise handout.HandoutError(f"The grader got no value for {what} from your notebook.")
        self._decoding = {}
        try:
            return handout.decode(reply["ok"], function=lambda ref, name: StudentFunction(self, ref, name),
                                  adopt=self._adopt)
        except handout.HandoutError as err:
            raise handout.HandoutError(f"The grader could not read {what} from your notebook: {err}.") from None

    def _adopt(self, ref: str | None, obj):
        """A model or object from the kernel (kept there under ``ref``), as this referee's copy of it.

        One kernel object is one copy (so ``is`` in a test means what it means in the kernel); when
        the kernel's object has changed, the copy is brought up to date in place. A model's computing
        methods are refused on the copy: a test runs them in the kernel with ``checks.method``, so a
        student's settings (and any function among its parameters) cost the student's kernel, never
        the grader. A model that came without a reference is the student's all the same: it goes
        back to the kernel as data.
        """
        if ref is not None and ref in self._decoding:
            # The same object again in one hand-out: the copy made first stands (updating it in place
            # with a later entry could make it contain itself).
            return self._decoding[ref]
        fp = handout.fingerprint(obj)
        known = self._objects.get(ref) if ref is not None else None
        if known is not None and type(known) is type(obj):
            if ref is not None:
                self._decoding[ref] = known
            if known.__dict__["_handout_origin"][2] != fp:
                known.__dict__.clear()
                known.__dict__.update(obj.__dict__)
                self._guard(known, ref, fp)
            return known
        if ref is not None:
            self._decoding[ref] = obj
            if len(self._objects) < 10_000:
                self._objects[ref] = obj
        self._guard(obj, ref, fp)
        return obj

    def _guard(self, obj, ref, fp) -> None:
        obj.__dict__["_handout_origin"] = (self, ref, fp)
        for name in handout.COMPUTING_METHODS:
            if callable(getattr(type(obj), name, None)):
                obj.__dict__[name] = functools.partial(_refuse_method, type(obj).__name__, name)

    def _send(self, value):
        def refuse(v):
            raise handout.HandoutError("a test passed a function to student code")

        refs: dict = {}
        data = handout.encode(value, refs)
        # Only the student's own functions and objects may travel back to the kernel, as the references
        # they came with.
        for key, obj in refs.items():
            if isinstance(obj, StudentFunction) and obj._referee is self:
                continue
            origin = handout._origin(obj)
            if origin is None or origin[0] is not self:
                refuse(obj)
        return _replace_refs(data, refs) if refs else data  # most hand-outs carry no function

    def method(self, obj, name: str, args: tuple, kwargs: dict):
        """``obj.name(*args, **kwargs)`` run in the kernel (``obj`` from the kernel, or a model sent as data)."""
        what = f"`{type(obj).__name__}.{name}`"
        payload = json.dumps({"obj": self._send(obj), "name": str(name), "args": self._send(list(args)),
                              "kwargs": self._send(dict(kwargs))}, allow_nan=False, separators=(",", ":"))
        reply = self.link.ask("method", payload, grace=self.grace)
        self._copy_back(args, reply.get("args"), what)
        if isinstance(reply.get("raised"), dict):
            raise _raise_like(reply["raised"])
        return self._value(reply, f"what {what} returned")

    def call(self, function: StudentFunction, args: tuple, kwargs: dict):
        what = f"`{function.__name__}`"
        payload = json.dumps({"args": self._send(list(args)), "kwargs": self._send(dict(kwargs))},
                             allow_nan=False, separators=(",", ":"))
        reply = self.link.ask("call", function._ref, payload, grace=self.grace)
        self._copy_back(args, reply.get("args"), what)
        if isinstance(reply.get("raised"), dict):
            raise _raise_like(reply["raised"])
        return self._value(reply, f"what {what} returned")

    def _copy_back(self, args: tuple, states, what: str) -> None:
        """What a call did to its arguments in the kernel, done to the test's own copies."""
        if not isinstance(states, list) or len(states) != len(args):
            return
        for original, state in zip(args, states):
            if not (isinstance(state, dict) and "ok" in state):
                continue
            try:
                if self._send(original) == state["ok"]:
                    continue  # as the test gave it: nothing to copy back or to report
            except (handout.HandoutError, TypeError, ValueError):
                pass
            if handout._is_estimator(original):
                # A model the test made: only a recording model takes anything back (its record); the
                # student's code never sets a parameter or a fitted value of the test's own model.
                self._take_record(original, state["ok"])
                continue
            note = f"{what} changed an argument a test gave it, in place; a test that reads that argument again sees the change"
            if note not in self.notes:
                self.notes.append(note)
            if self.setup_objects.get(id(original)) is original:
                continue  # the course data the tests compute from stay as the setup cells made them
            try:
                _write_back(original, self._value(state, what))
            except handout.HandoutError:
                pass

    def _take_record(self, original, data) -> None:
        restore = getattr(type(original), "_handout_restore", None)
        if restore is None or type(original).__module__ not in handout._OWN_MODELS \
                or not (type(data) is dict and data.get("t") == "estimator" and "state" in data):
            return
        try:
            record = handout.decode(data["state"])  # plain data: a list of arrays
            if type(record) is list:
                original._handout_restore(record)
        except (handout.HandoutError, TypeError, ValueError):
            pass  # the test then sees no record, and says so

    def call_each(self, function: StudentFunction, calls: list) -> list:
        """``[function(*args, **kwargs) for args, kwargs in calls]`` in one request to the kernel."""
        what = f"`{function.__name__}`"
        calls = [(tuple(args), dict(kwargs)) for args, kwargs in calls]
        payload = json.dumps({"calls": self._send([[list(args), kwargs] for args, kwargs in calls]),
                              "seconds": max(0.0, self.link.deadline())},
                             allow_nan=False, separators=(",", ":"))
        reply = self.link.ask("call_each", function._ref, payload, grace=self.grace)
        after = reply.get("args")
        if isinstance(after, list) and len(after) <= len(calls):
            for (args, _), states in zip(calls, after):
                self._copy_back(args, states, what)
        raised = reply.get("raised")
        if isinstance(raised, dict):
            if raised.get("type") == "KeyboardInterrupt" and raised.get("builtin") is True:
                raise TooSlow("it ran past this cell's time limit and was stopped between calls")
            raise _raise_like(raised)
        results = self._value(reply, f"what {what} returned")
        if not isinstance(results, list) or len(results) != len(calls):
            raise handout.HandoutError(f"The grader got {what}'s results for the wrong number of calls.")
        return results

    # -- running cells -----------------------------------------------------------------------
    def run_setup(self, grade_id: str) -> None:
        """The kernel has run a locked setup cell; run its trusted source here too, if order demands it now.

        When the instructor's order is known, setup cells run here only in that order, as the
        tests need them (:meth:`run_test`): a student who moves a locked cell, up or down,
        changes nothing here. Otherwise each runs when the kernel reaches it.
        """
        if self.setup_order is None and grade_id not in self.done \
                and self.trusted.get(grade_id, {}).get("role") == "setup":
            self._run_setup(grade_id)

    def _catch_up(self, end: int) -> None:
        """Run, in the instructor's order, every setup cell before position ``end`` not yet run."""
        for gid in self.setup_order:
            if self.position[gid] >= end:
                break
            if gid not in self.done:
                self._run_setup(gid)

    def _run_setup(self, grade_id: str) -> None:
        self.done.add(grade_id)
        source = _strip_magics(self.trusted[grade_id]["source"])
        out, err = _install_streams()
        out.local.buffer = err.local.buffer = io.StringIO()
        self.ns.offline = True
        try:
            exec(_compiled(source, f"<setup cell {grade_id}>"), self.ns)
        except NameError:
            pass  # a locked cell that shows the student's results (a figure): the tests do not need it here
        except BaseException as error:  # noqa: BLE001  (reported, and later tests fail on what is missing)
            self.setup_errors.append(f"setup cell {grade_id}: {type(error).__name__}: {error}")
        finally:
            self.ns.offline = False
            out.local.buffer = err.local.buffer = None
            self.setup_objects = {id(v): v for v in self.ns.values()}

    def run_test(self, grade_id: str) -> list[NotebookNode]:
        """Judge one test cell; its outputs as nbgrader would record them from a kernel."""
        if self.unjudgeable:  # failed closed: skipping the line could let a name come from the student
            return [_error_output(GraderError(self.unjudgeable), "")]
        if self.setup_order is not None and grade_id in self.position:
            self._catch_up(self.position[grade_id])  # the setup cells before it, wherever the student put them
        source = _strip_magics(self.trusted[grade_id]["source"])
        self.ns.forget_fetched()
        out, err = _install_streams()
        stdout, stderr = io.StringIO(), io.StringIO()
        out.local.buffer, err.local.buffer = stdout, stderr
        outputs: list[NotebookNode] = []
        result = None
        failure: BaseException | None = None
        filename = f"<test cell {grade_id}>"
        try:
            body, last = _compiled_test(source, filename)
            exec(body, self.ns)
            if last is not None:
                result = eval(last, self.ns)
        except BaseException as error:  # noqa: BLE001  (the verdict)
            failure = error
        finally:
            out.local.buffer = err.local.buffer = None
            self.ns.forget_fetched()
        if stdout.getvalue():
            outputs.append(NotebookNode(output_type="stream", name="stdout", text=stdout.getvalue()))
        if stderr.getvalue():
            outputs.append(NotebookNode(output_type="stream", name="stderr", text=stderr.getvalue()))
        if failure is not None:
            outputs.append(_error_output(failure, filename))
        elif result is not None:
            outputs.append(NotebookNode(output_type="execute_result", execution_count=None, metadata={},
                                        data={"text/plain": repr(result)[:10000]}))
        return outputs


@functools.lru_cache(maxsize=512)
def _compiled(source: str, filename: str):
    """A setup cell's code (a grader judges the same cells in every notebook: compiled once per process)."""
    return compile(source, filename, "exec")


@functools.lru_cache(maxsize=512)
def _compiled_test(source: str, filename: str):
    """A test cell's code, and its last line's if that is an expression (its value is shown, as in a kernel)."""
    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
    return compile(tree, filename, "exec"), last


def _replace_refs(data, refs):
    """Encoded data with the referee's own stand-ins turned back into the kernel's references."""
    if isinstance(data, dict):
        if data.get("t") == "function" and data.get("ref") in refs:
            obj = refs[data["ref"]]
            ref = obj._ref if isinstance(obj, StudentFunction) else handout._origin(obj)[1]
            return {"t": "function", "ref": ref, "name": data.get("name", "")}
        return {k: _replace_refs(v, refs) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace_refs(v, refs) for v in data]
    return data


def _strip_magics(source: str) -> str:
    """Cell source without IPython's line magics and shell escapes (the referee runs plain Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


#: Magics that only set up the display or extensions: skipping them changes no name a test reads.
_HARMLESS_MAGICS = ("%matplotlib", "%config", "%load_ext", "%reload_ext", "%autoreload")


def _unsupported_magic(source: str) -> str | None:
    """The first magic or shell line whose skipping could change what a cell binds (``%time LIMIT = 10``)."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(("%", "!")) and not stripped.split(" ")[0] in _HARMLESS_MAGICS:
            return stripped[:80]
    return None


def _error_output(error: BaseException, filename: str) -> NotebookNode:
    ename = type(error).__name__
    if isinstance(error, KernelGone):
        ename, evalue = "KernelStopped", str(error)
    elif isinstance(error, TooSlow):
        ename, evalue = "CellTimeoutError", f"A function of yours was stopped: {error}."
    else:
        evalue = str(error)
    if len(evalue) > MAX_MESSAGE:  # a student's exception message, say, is not copied whole into the notebook
        evalue = evalue[:MAX_MESSAGE] + f" ... ({len(evalue) - MAX_MESSAGE:,} more characters not shown)"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
    lines = [f"{'-' * 75}", f"{ename:<40}Traceback (most recent call last)"]
    lines += [f"Cell In[test], line {f.lineno}" for f in frames[-3:]]
    lines.append(f"{ename}: {evalue}")
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=lines)


def trusted_cells(db_url: str, assignment: str, notebook: str) -> dict[str, dict]:
    """The notebook's locked setup cells and test cells, as the gradebook keeps them."""
    from nbgrader.api import Gradebook

    cells: dict[str, dict] = {}
    with Gradebook(db_url) as gb:
        nb = gb.find_notebook(notebook, assignment)
        tests = {c.name for c in nb.grade_cells if c.cell_type == "code"}
        solutions = {c.name for c in nb.solution_cells}
        for cell in nb.source_cells:
            if cell.cell_type != "code" or cell.name in solutions:
                continue
            if cell.name in tests:
                cells[cell.name] = {"source": cell.source, "role": "test"}
            elif cell.locked:
                cells[cell.name] = {"source": cell.source, "role": "setup"}
    return cells


def trusted_order(config, assignment: str, notebook: str) -> list[str] | None:
    """The grade ids of the instructor's notebook in order (source, else release folder); None if neither is there.

    Never the submission's order: a student can move a locked cell below the tests that read it.
    """
    from ._course import course_path

    for step in ("source", "release"):
        try:
            path = course_path(config, step, assignment, notebook=notebook)
            if path.is_file():
                return list(_grade_ids(str(path), path.stat().st_mtime_ns))
        except Exception:  # noqa: BLE001  (an unreadable notebook: try the next, else the order is unknown)
            continue
    return None


@functools.lru_cache(maxsize=64)
def _grade_ids(path: str, mtime_ns: int) -> tuple[str, ...]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return tuple(g for g in ((c.get("metadata", {}).get("nbgrader") or {}).get("grade_id") for c in nb.cells) if g)


async def judge(referee: Referee, grade_id: str, loop_timeout: float) -> list[NotebookNode]:
    """Run a test cell in a thread of its own (its calls into the kernel block) and wait for it."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    outputs: list = []

    def work():
        started, asked = time.perf_counter(), referee.link.requests if referee.link else 0
        try:
            outputs.extend(referee.run_test(grade_id))
            log.debug("judged %s in %.3f s with %d requests to the kernel", grade_id, time.perf_counter() - started,
                      (referee.link.requests if referee.link else 0) - asked)
        finally:
            loop.call_soon_threadsafe(done.set)

    thread = threading.Thread(target=work, name=f"referee-{grade_id}", daemon=True)
    thread.start()
    try:
        await asyncio.wait_for(done.wait(), loop_timeout)
    except asyncio.TimeoutError:
        # The referee's own work on the student's data ran too long: stop it where it is.
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(TooSlow))
        try:
            await asyncio.wait_for(done.wait(), 10)
        except asyncio.TimeoutError:
            return [_error_output(TooSlow("the grader could not finish this check"), "")]
    return outputs
