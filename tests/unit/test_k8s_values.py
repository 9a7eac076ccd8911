"""deploy/k8s/ (Zero to JupyterHub values, the students' image) agrees with the rest of the repository.

No cluster runs here: these tests check that the values parse, name files that exist, carry the
same nbgrader settings, roles and student switches as the local hub (deploy/hub/), and that the
image is built without the course's sources, tests or docs.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
VALUES = K8S / "values.yaml"
DOCKERFILE = K8S / "Dockerfile"
LOCAL_HUB_CONFIG = REPO / "deploy" / "hub" / "jupyterhub_config.py"
HUBCTL = REPO / "deploy" / "hub" / "hubctl.py"
SIZING = REPO / "docs" / "deployment_sizing.md"

# A relative path into this repository: a top-level folder and what follows, or a top-level file.
REPO_PATH = re.compile(
    r"(?<![\w/.@-])("
    r"(?:deploy|docs|src|tests|benchmarks|notebooks|coursework|datasets)/[\w./-]*\w"
    r"|environment\.yml|nbgrader_config\.py|pyproject\.toml|constraints\.txt"
    r")"
)


def _values() -> dict:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def _course_id() -> str:
    match = re.search(r'course_id\s*=\s*"([^"]+)"', (REPO / "nbgrader_config.py").read_text(encoding="utf-8"))
    return match.group(1)


def _extra_files(values: dict):
    for section in ("hub", "singleuser"):
        for key, entry in ((values.get(section) or {}).get("extraFiles") or {}).items():
            yield f"{section}.extraFiles.{key}", entry


def _nbgrader_global(values: dict) -> str:
    for _, entry in _extra_files(values):
        if entry.get("mountPath", "").endswith("/nbgrader_config.py"):
            return entry["stringData"]
    pytest.fail("no extraFiles entry installs an nbgrader_config.py")


def _assignments(source: str) -> dict:
    """Top-level `target = value` of a config file, keyed by the target's dotted source text."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            found[ast.unparse(node.targets[0])] = node.value
    return found


def _text(node: ast.AST, names: dict) -> str:
    """A string constant or an f-string whose fields are names given in ``names``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value)
            else:
                parts.append(names[ast.unparse(value.value)])
        return "".join(parts)
    raise AssertionError(f"not a plain string: {ast.unparse(node)}")


def _local_roles() -> dict:
    """The roles deploy/hub/jupyterhub_config.py loads, read from its text (it needs a hub to run)."""
    names = {"course": _course_id()}
    roles_node = _assignments(LOCAL_HUB_CONFIG.read_text(encoding="utf-8"))["roles"]
    roles = {}
    for element in roles_node.elts:
        entry = {_text(k, names): v for k, v in zip(element.keys, element.values)}
        roles[_text(entry["name"], names)] = [_text(s, names) for s in entry["scopes"].elts]
    return roles


def test_values_parse_as_a_mapping_of_chart_sections():
    values = _values()
    assert isinstance(values, dict)
    assert {"hub", "singleuser", "cull", "scheduling"} <= set(values)


def test_every_repository_path_named_in_the_values_exists():
    named = set(REPO_PATH.findall(VALUES.read_text(encoding="utf-8")))
    assert "deploy/k8s/Dockerfile" in named, "values.yaml should say which Dockerfile builds the image"
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"values.yaml names files that are not in the repository: {missing}"


def test_every_file_the_dockerfile_copies_exists():
    copied = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied += [w for w in words[1:-1] if not w.startswith("--")]
    assert copied, "the Dockerfile copies nothing from the repository"
    missing = [p for p in copied if not (REPO / p).exists()]
    assert not missing, f"the Dockerfile copies files that are not in the repository: {missing}"


def test_every_extra_file_has_a_mount_path_and_content():
    entries = list(_extra_files(_values()))
    assert entries
    for name, entry in entries:
        assert str(entry.get("mountPath", "")).startswith("/"), f"{name} needs an absolute mountPath"
        assert ("stringData" in entry) != ("data" in entry), f"{name} needs exactly one of stringData or data"


def test_nbgrader_global_config_is_python_with_the_hub_settings():
    values = _values()
    source = _nbgrader_global(values)
    compile(source, "singleuser.extraFiles nbgrader_config.py", "exec")
    settings = _assignments(source)

    includes_course = settings.get("c.Exchange.path_includes_course")
    assert isinstance(includes_course, ast.Constant) and includes_course.value is True
    assert ast.unparse(settings["c.Authenticator.plugin_class"]) == "JupyterHubAuthPlugin"
    assert "from nbgrader.auth import JupyterHubAuthPlugin" in source
    assert ast.literal_eval(settings["c.Exchange.timezone"]) == "UTC"

    # The exchange root is where the shared volume is mounted in every student's pod.
    root = ast.literal_eval(settings["c.Exchange.root"])
    mounts = values["singleuser"]["storage"]["extraVolumeMounts"].values()
    assert root in {m["mountPath"] for m in mounts}


def test_roles_and_course_service_scopes_match_the_local_hub():
    course = _course_id()
    local = _local_roles()
    service_role = f"course-service-{course}"
    assert service_role in local

    hub = _values()["hub"]
    loaded = hub["loadRoles"]
    for name, scopes in local.items():
        if name == "trial-driver":  # the local trial's admin token; a real hub has none
            continue
        assert sorted(loaded[name]["scopes"]) == sorted(scopes), f"role {name} differs from the local hub"
    assert loaded[service_role]["services"] == [course]

    service = hub["services"][course]
    assert not service.get("admin"), "the course service must not get an admin token"


def test_student_server_token_scopes_match_the_local_hub():
    node = _assignments(LOCAL_HUB_CONFIG.read_text(encoding="utf-8"))["c.Spawner.server_token_scopes"]
    local = ast.literal_eval(node)
    assert _values()["hub"]["config"]["Spawner"]["server_token_scopes"] == local


def test_students_get_the_same_nbgrader_extensions_as_on_the_local_hub():
    constants = _assignments(HUBCTL.read_text(encoding="utf-8"))
    lab_plugins = ast.literal_eval(constants["LAB_PLUGINS"])
    server_extensions = ast.literal_eval(constants["SERVER_EXTENSIONS"])
    wanted = ast.literal_eval(constants["ROLES"])["student"]

    files = {entry["mountPath"]: entry for _, entry in _extra_files(_values())}
    config_dir = _values()["singleuser"]["extraEnv"]["JUPYTER_CONFIG_PATH"]
    server = files[f"{config_dir}/jupyter_server_config.json"]["data"]
    page = files[f"{config_dir}/labconfig/page_config.json"]["data"]

    assert server["ServerApp"]["jpserver_extensions"] == {
        ext: key in wanted for key, ext in server_extensions.items()}
    assert page["disabledExtensions"] == {
        plugin: key not in wanted for key, plugin in lab_plugins.items()}


def test_dockerfile_leaves_out_sources_tests_docs_and_git():
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] not in (["COPY"], ["ADD"]):
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            parts = Path(source).parts
            top = parts[0] if parts else "."  # "." is the whole build context
            assert top not in {"coursework", "tests", "docs", ".git", "."}, f"the image must not get {source}: {line}"


def test_sizing_covers_the_three_class_sizes():
    text = SIZING.read_text(encoding="utf-8")
    for size in (r"50", r"500", r"5,000|5000"):
        assert re.search(rf"(?<![\d,.])(?:{size})(?![\d,])", text), f"docs/deployment_sizing.md says nothing for {size}"
