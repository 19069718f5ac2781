"""The app image: tagged by its sources; pushed to the stack's registry and referenced by digest, or
loaded into each host's own image store, never pulled."""
import shlex

import pulumi
import pytest

from components import orchestrators
from components.apps.app_image import AppImage, pushed_digest, same_everywhere
from components.nodes.registry import Registry
from tests.unit.conftest import APP_DIGEST, APP_IMAGE_ID, HOST_KEY, _script_action


def test_pushed_digest_picks_the_registry_the_image_was_pushed_to():
    lines = "a/b@sha256:1\n127.0.0.1:5000/phoenix/sample-app@sha256:2\n"
    assert pushed_digest(lines, "127.0.0.1:5000/phoenix/sample-app") == "sha256:2"


def pushed_image() -> AppImage:
    return AppImage("img", {"base_image": "local/python-base:bookworm", "nodes": [],
                            "registry": Registry(push="127.0.0.1:5000", pull="172.28.0.2:5000")})


@pulumi.runtime.test
def test_nodes_pull_the_pushed_digest_from_the_registry_address_they_reach(mocks):
    image = pushed_image()

    def check(ref):
        build = mocks.of("command:local:Command")["img-build"]
        assert "--build-arg BASE_IMAGE=local/python-base:bookworm" in build["create"]
        tag = build["triggers"][0]
        assert f"docker push -q 127.0.0.1:5000/phoenix/sample-app:{tag}" in build["create"]
        assert ref == f"172.28.0.2:5000/phoenix/sample-app:{tag}@{APP_DIGEST}"
    return image.ref.apply(check)


@pulumi.runtime.test
def test_destroy_removes_the_pushed_tag_and_nothing_else(mocks):
    image = pushed_image()

    def check(_):
        build = mocks.of("command:local:Command")["img-build"]
        tag = build["triggers"][0]
        assert build["delete"].startswith(f"docker image rm 127.0.0.1:5000/phoenix/sample-app:{tag} ")
        assert "local/python-base" not in build["delete"]
    return image.ref.apply(check)


# --- no registry (SSH hosts, VMs): the archive into each node's own image store ---------------------

def host_nodes():
    from components.nodes.node import Node, Ssh
    return [Node(name=n, role=r, address=f"10.0.0.{i}", docker_host="", public_address=f"10.0.0.{i}",
                 connection=Ssh(host=f"10.0.0.{i}", user="root", port=22, private_key=pulumi.Output.secret("K"),
                                host_key=HOST_KEY))
            for i, (n, r) in enumerate([("m0", "manager"), ("w1", "worker")])]


def loaded(mocks):
    """(node -> (action of the piped command, action of the kept image's create, of its delete)), triggers."""
    local, remote = mocks.of("command:local:Command"), mocks.of("command:remote:Command")
    out = {}
    for node in ("m0", "w1"):
        pipe = local[f"img-load-{node}"]["create"]
        held = remote[f"img-on-{node}"]
        out[node] = (_script_action(shlex.split(pipe.split(" | ", 1)[1])[-1]), _script_action(held["create"]),
                     _script_action(held["delete"]), held["triggers"])
    return out


@pulumi.runtime.test
def test_swarm_hosts_load_the_archive_and_services_name_the_image_by_its_id(mocks):
    loader = orchestrators.get("swarm").image_loader
    image = AppImage("img", {"base_image": "b", "registry": None, "nodes": host_nodes(), "loader": loader})

    def check(ref):
        # An image ID is never resolved against a registry: no node asks Docker Hub for it.
        assert ref == APP_IMAGE_ID
        for node, (piped, held, delete, triggers) in loaded(mocks).items():
            assert piped == ("load", []), node
            assert held == ("has-image", [APP_IMAGE_ID]) and delete == ("remove-image", [APP_IMAGE_ID])
            assert APP_IMAGE_ID in triggers, "a new image must replace the record, removing the old image"
    return image.ref.apply(check)


@pulumi.runtime.test
def test_k3s_hosts_import_the_archive_under_its_name(mocks):
    loader = orchestrators.get("k3s").image_loader
    image = AppImage("img", {"base_image": "b", "registry": None, "nodes": host_nodes(), "loader": loader})

    def check(ref):
        assert ref.startswith("phoenix/sample-app:")
        for node, (piped, held, delete, _) in loaded(mocks).items():
            assert piped == ("import", [ref]), node
            assert held == ("has-image", [ref]) and delete == ("remove-image", [ref])
    return image.ref.apply(check)


def test_nodes_that_loaded_different_images_are_refused():
    with pytest.raises(ValueError, match="different references on m0, w1"):
        same_everywhere(["sha256:a\n", "sha256:b"], ["m0", "w1"])
    assert same_everywhere(["sha256:a\n", "sha256:a"], ["m0", "w1"]) == "sha256:a"
